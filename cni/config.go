package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/nsbox/nsbox/rtnl"
)

// Default locations. Tests and unusual hosts override them per network
// with the ipam object's "dataDir" and "socketDir".
const (
	// DefaultDataDir holds nsbox-range allocations (one folder per
	// network, laid out as host-local lays them out) and the keeper's
	// persisted DHCP leases (under dhcp/).
	DefaultDataDir = "/var/lib/nsbox/cni"
	// DefaultSocketDir holds the lease keeper's socket, lock and pid file.
	DefaultSocketDir = "/run/nsbox"
	// DefaultBridge is the bridge used when the config names none.
	DefaultBridge = "nsbox0"
)

// NetConf is the plugin's network configuration: the common fields of the
// CNI spec (name, cniVersion, type, ipam, dns, prevResult, runtimeConfig...)
// and nsbox's own.
type NetConf struct {
	types.PluginConf
	// Bridge is created in the runtime's namespace when missing;
	// "" means DefaultBridge.
	Bridge string `json:"bridge"`
	// IsGateway gives the bridge the gateway address of each subnet.
	IsGateway bool `json:"isGateway"`
	// IsDefaultGateway adds a default route via the gateway inside the
	// container; it implies IsGateway.
	IsDefaultGateway bool `json:"isDefaultGateway"`
	// IPMasq masquerades traffic from the bridge's subnets leaving them
	// (package nat: table "ip nsbox" of the runtime's namespace); it
	// implies IsGateway except with nsbox-dhcp, whose server's segment
	// already gives the bridge its address.
	IPMasq bool `json:"ipMasq"`
	// MTU of the bridge and both veth ends; 0 keeps the kernel's.
	MTU int `json:"mtu"`
	// HairpinMode lets a container reach itself through the bridge.
	HairpinMode bool `json:"hairpinMode"`
	// PromiscMode puts the bridge into promiscuous mode.
	PromiscMode bool `json:"promiscMode"`
	// Vlan, when not 0, turns on VLAN filtering on the bridge and makes
	// the host end an untagged member (PVID) of that VLAN.
	Vlan int `json:"vlan"`
	// Log is a file that receives one line per operation; "" logs nothing.
	Log string `json:"log"`

	// RawIPAM is the ipam object as given, passed on unchanged to a
	// delegated IPAM plugin.
	RawIPAM json.RawMessage `json:"-"`
	// IPAMConf is the ipam object decoded for nsbox's own IPAM types.
	IPAMConf IPAMConf `json:"-"`
}

// IPAMConf is the "ipam" object of nsbox-range and nsbox-dhcp. Other types
// are delegated and their fields are not read here.
type IPAMConf struct {
	Type string `json:"type"`

	// nsbox-range, as host-local: either Ranges (sets of ranges, one
	// address from each set) or the single-range shorthand.
	Ranges     [][]Range      `json:"ranges"`
	Subnet     string         `json:"subnet"`
	RangeStart string         `json:"rangeStart"`
	RangeEnd   string         `json:"rangeEnd"`
	Gateway    string         `json:"gateway"`
	Routes     []*types.Route `json:"routes"`

	// DataDir overrides DefaultDataDir.
	DataDir string `json:"dataDir"`

	// nsbox-dhcp: SocketDir overrides DefaultSocketDir; Timeout bounds
	// the wait for a lease (a Go duration, default 10s); Hostname is sent
	// as option 12.
	SocketDir string `json:"socketDir"`
	Timeout   string `json:"timeout"`
	Hostname  string `json:"hostname"`
}

// Range is one host-local range.
type Range struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart"`
	RangeEnd   string `json:"rangeEnd"`
	Gateway    string `json:"gateway"`
}

// The IPAM types nsbox implements itself.
const (
	IPAMRange = "nsbox-range"
	IPAMDHCP  = "nsbox-dhcp"
)

// ParseConfig decodes and checks a network configuration (the plugin's
// stdin). A JSON error is a CNI error with code 6 (decoding failure); a
// value that cannot work is code 7 (invalid network config).
func ParseConfig(b []byte) (*NetConf, error) {
	n := &NetConf{}
	if err := json.Unmarshal(b, n); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decode network config: "+err.Error(), "")
	}
	var raw struct {
		IPAM json.RawMessage `json:"ipam"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decode network config: "+err.Error(), "")
	}
	n.RawIPAM = raw.IPAM
	if len(raw.IPAM) > 0 && string(raw.IPAM) != "null" {
		if err := json.Unmarshal(raw.IPAM, &n.IPAMConf); err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "decode ipam: "+err.Error(), "")
		}
	}
	if n.RawPrevResult != nil {
		if err := version.ParsePrevResult(&n.PluginConf); err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "decode prevResult: "+err.Error(), "")
		}
	}
	if err := n.validate(); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	return n, nil
}

func (n *NetConf) validate() error {
	if n.Bridge == "" {
		n.Bridge = DefaultBridge
	}
	if err := rtnl.ValidateLinkName(n.Bridge); err != nil {
		return fmt.Errorf("bridge %q: %w", n.Bridge, err)
	}
	if n.IsDefaultGateway || (n.IPMasq && n.IPAMConf.Type != IPAMDHCP) {
		// The masquerade is of the bridge's subnets (package nat), so
		// the bridge needs its address in the subnet.
		n.IsGateway = true
	}
	if n.MTU < 0 || n.MTU > 65535 || (n.MTU > 0 && n.MTU < 68) {
		return fmt.Errorf("mtu %d: need 68 to 65535 (or 0 for the default)", n.MTU)
	}
	if n.Vlan < 0 || n.Vlan > 4094 {
		return fmt.Errorf("vlan %d: need 1 to 4094 (or 0 for none)", n.Vlan)
	}
	switch n.IPAMConf.Type {
	case "":
		return fmt.Errorf("ipam: no type (use %q, %q or an IPAM plugin such as host-local)", IPAMRange, IPAMDHCP)
	case IPAMRange:
		if _, err := n.IPAMConf.rangeSets(); err != nil {
			return err
		}
	case IPAMDHCP:
		if _, err := n.IPAMConf.timeout(); err != nil {
			return err
		}
	default:
		if strings.ContainsAny(n.IPAMConf.Type, "/\\") || n.IPAMConf.Type == "." || n.IPAMConf.Type == ".." {
			return fmt.Errorf("ipam: type %q is not a plugin name", n.IPAMConf.Type)
		}
	}
	return nil
}

func (c *IPAMConf) dataDir() string {
	if c.DataDir != "" {
		return c.DataDir
	}
	return DefaultDataDir
}

func (c *IPAMConf) socketDir() string {
	if c.SocketDir != "" {
		return c.SocketDir
	}
	return DefaultSocketDir
}

func (c *IPAMConf) timeout() (time.Duration, error) {
	if c.Timeout == "" {
		return 10 * time.Second, nil
	}
	d, err := time.ParseDuration(c.Timeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("ipam: timeout %q: need a positive Go duration such as 5s", c.Timeout)
	}
	return d, nil
}

// span is a checked range: every address from start to end inclusive, in
// subnet, with its gateway (zero when none).
type span struct {
	subnet     netip.Prefix
	start, end netip.Addr
	gateway    netip.Addr
}

// rangeSets checks the ranges as host-local does and fills in defaults:
// start is the subnet's first host, end its last (the IPv4 broadcast
// excluded), the gateway its first host.
func (c *IPAMConf) rangeSets() ([][]span, error) {
	sets := c.Ranges
	if c.Subnet != "" {
		if len(sets) > 0 {
			return nil, fmt.Errorf("ipam: give either ranges or subnet, not both")
		}
		sets = [][]Range{{{Subnet: c.Subnet, RangeStart: c.RangeStart, RangeEnd: c.RangeEnd, Gateway: c.Gateway}}}
	}
	if len(sets) == 0 {
		return nil, fmt.Errorf("ipam: %s needs ranges or a subnet", IPAMRange)
	}
	var out [][]span
	var all []netip.Prefix
	for i, set := range sets {
		if len(set) == 0 {
			return nil, fmt.Errorf("ipam: ranges[%d] is empty", i)
		}
		var ss []span
		for j, r := range set {
			s, err := r.check()
			if err != nil {
				return nil, fmt.Errorf("ipam: ranges[%d][%d]: %w", i, j, err)
			}
			if j > 0 && s.subnet.Addr().Is4() != ss[0].subnet.Addr().Is4() {
				return nil, fmt.Errorf("ipam: ranges[%d] mixes IPv4 and IPv6", i)
			}
			for _, p := range all {
				if p.Overlaps(s.subnet) && p != s.subnet {
					return nil, fmt.Errorf("ipam: subnet %s overlaps %s", s.subnet, p)
				}
			}
			all = append(all, s.subnet)
			ss = append(ss, s)
		}
		out = append(out, ss)
	}
	return out, nil
}

func (r Range) check() (span, error) {
	p, err := netip.ParsePrefix(r.Subnet)
	if err != nil {
		return span{}, fmt.Errorf("subnet %q: %w", r.Subnet, err)
	}
	p = p.Masked()
	bits := p.Addr().BitLen()
	if p.Bits() > bits-2 {
		return span{}, fmt.Errorf("subnet %s is too small (need /%d or larger)", p, bits-2)
	}
	s := span{subnet: p, start: p.Addr().Next()}
	s.end = lastAddr(p)
	if p.Addr().Is4() {
		s.end = s.end.Prev() // the broadcast address
	}
	if r.RangeStart != "" {
		a, err := netip.ParseAddr(r.RangeStart)
		if err != nil || !p.Contains(a) {
			return span{}, fmt.Errorf("rangeStart %q is not an address in %s", r.RangeStart, p)
		}
		s.start = a
	}
	if r.RangeEnd != "" {
		a, err := netip.ParseAddr(r.RangeEnd)
		if err != nil || !p.Contains(a) {
			return span{}, fmt.Errorf("rangeEnd %q is not an address in %s", r.RangeEnd, p)
		}
		s.end = a
	}
	if s.end.Less(s.start) {
		return span{}, fmt.Errorf("rangeEnd %s is before rangeStart %s", s.end, s.start)
	}
	if r.Gateway != "" {
		a, err := netip.ParseAddr(r.Gateway)
		if err != nil || !p.Contains(a) {
			return span{}, fmt.Errorf("gateway %q is not an address in %s", r.Gateway, p)
		}
		s.gateway = a
	} else {
		s.gateway = p.Addr().Next()
	}
	return s, nil
}

// contains reports whether a is in the span.
func (s span) contains(a netip.Addr) bool {
	return !a.Less(s.start) && !s.end.Less(a)
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
