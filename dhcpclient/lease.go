package dhcpclient

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/nsbox/nsbox/internal/atomicfile"
)

// Infinite is the lease time of a lease that never expires (option 51 set
// to 0xffffffff). Such a lease has no T1, T2 or Expiry.
const Infinite time.Duration = -1

// Route is one classless static route (option 121). A zero Gateway means
// the destination is on the link.
type Route struct {
	Dst     netip.Prefix `json:"dst"`
	Gateway netip.Addr   `json:"gateway,omitempty"`
}

// Lease is what the client holds after a DHCPACK: the address, the
// configuration to apply, and the timers. Times are absolute.
type Lease struct {
	Interface string        `json:"interface"`
	Netns     string        `json:"netns,omitempty"` // the named namespace, "" for the caller's
	Addr      netip.Prefix  `json:"-"`               // address with the subnet's prefix length
	Router    netip.Addr    `json:"-"`               // option 3 (first router), zero if none
	Routes    []Route       `json:"routes,omitempty"`
	DNS       []netip.Addr  `json:"dns"`
	Domain    string        `json:"domain,omitempty"`
	MTU       int           `json:"mtu,omitempty"`
	Server    netip.Addr    `json:"server"`   // server identifier (option 54)
	ClientID  []byte        `json:"-"`        // option 61 sent
	LeaseTime time.Duration `json:"-"`        // option 51, or Infinite
	T1, T2    time.Duration `json:"-"`        // options 58/59 or 0.5 and 0.875 of LeaseTime
	Acquired  time.Time     `json:"acquired"` // when the REQUEST that got the ACK was sent
}

// Infinite reports whether the lease never expires.
func (l *Lease) Infinite() bool { return l.LeaseTime == Infinite }

// Expiry is when the lease ends (zero time for an infinite lease).
func (l *Lease) Expiry() time.Time {
	if l.Infinite() {
		return time.Time{}
	}
	return l.Acquired.Add(l.LeaseTime)
}

// RenewAt is T1 as an absolute time (zero for an infinite lease).
func (l *Lease) RenewAt() time.Time {
	if l.Infinite() {
		return time.Time{}
	}
	return l.Acquired.Add(l.T1)
}

// RebindAt is T2 as an absolute time (zero for an infinite lease).
func (l *Lease) RebindAt() time.Time {
	if l.Infinite() {
		return time.Time{}
	}
	return l.Acquired.Add(l.T2)
}

// Remaining is the valid lifetime left at now (Infinite for an infinite
// lease, zero when expired).
func (l *Lease) Remaining(now time.Time) time.Duration {
	if l.Infinite() {
		return Infinite
	}
	if d := l.Expiry().Sub(now); d > 0 {
		return d
	}
	return 0
}

// leaseJSON is the wire form of Lease, for -j and the lease file. Durations
// are whole seconds; an infinite lease has lease, t1 and t2 of -1 and no
// expiry.
type leaseJSON struct {
	Interface string       `json:"interface"`
	Netns     string       `json:"netns,omitempty"`
	Address   netip.Addr   `json:"address"`
	Prefix    int          `json:"prefix"`
	Router    *netip.Addr  `json:"router,omitempty"`
	Routes    []Route      `json:"routes,omitempty"`
	DNS       []netip.Addr `json:"dns"`
	Domain    string       `json:"domain,omitempty"`
	MTU       int          `json:"mtu,omitempty"`
	Server    netip.Addr   `json:"server"`
	ClientID  string       `json:"client_id,omitempty"`
	Lease     int64        `json:"lease"`
	T1        int64        `json:"t1"`
	T2        int64        `json:"t2"`
	Acquired  time.Time    `json:"acquired"`
	Expiry    *time.Time   `json:"expiry,omitempty"`
}

func seconds(d time.Duration) int64 {
	if d == Infinite {
		return -1
	}
	return int64(d / time.Second)
}

func fromSeconds(s int64) time.Duration {
	if s < 0 {
		return Infinite
	}
	return time.Duration(s) * time.Second
}

// MarshalJSON writes the lease with the keys address, prefix, router, dns,
// server, lease, t1, t2 (seconds) and expiry.
func (l Lease) MarshalJSON() ([]byte, error) {
	w := leaseJSON{
		Interface: l.Interface, Netns: l.Netns, Address: l.Addr.Addr(), Prefix: l.Addr.Bits(),
		Routes: l.Routes, DNS: l.DNS, Domain: l.Domain, MTU: l.MTU, Server: l.Server,
		Lease: seconds(l.LeaseTime), T1: seconds(l.T1), T2: seconds(l.T2), Acquired: l.Acquired,
	}
	if w.DNS == nil {
		w.DNS = []netip.Addr{}
	}
	if l.Router.IsValid() {
		r := l.Router
		w.Router = &r
	}
	if len(l.ClientID) > 0 {
		w.ClientID = fmt.Sprintf("%x", l.ClientID)
	}
	if !l.Infinite() {
		e := l.Expiry()
		w.Expiry = &e
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Lease) UnmarshalJSON(b []byte) error {
	var w leaseJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	p, err := w.Address.Prefix(w.Prefix)
	if err != nil || !w.Address.Is4() {
		return fmt.Errorf("lease address %s/%d: invalid", w.Address, w.Prefix)
	}
	*l = Lease{
		Interface: w.Interface, Netns: w.Netns, Addr: netip.PrefixFrom(w.Address, p.Bits()),
		Routes: w.Routes, DNS: w.DNS, Domain: w.Domain, MTU: w.MTU, Server: w.Server,
		LeaseTime: fromSeconds(w.Lease), T1: fromSeconds(w.T1), T2: fromSeconds(w.T2), Acquired: w.Acquired,
	}
	if w.Router != nil {
		l.Router = *w.Router
	}
	if w.ClientID != "" {
		if _, err := fmt.Sscanf(w.ClientID, "%x", &l.ClientID); err != nil {
			return fmt.Errorf("lease client_id %q: %w", w.ClientID, err)
		}
	}
	return nil
}

// maxReplySize bounds the DHCP payload accepted (larger is refused as
// oversized; RFC 2131 messages fit an Ethernet frame).
const maxReplySize = 1500

// RejectError says why a reply was ignored or refused; the client logs it
// and goes on waiting.
type RejectError struct{ Reason string }

func (e *RejectError) Error() string { return "reply rejected: " + e.Reason }

func reject(format string, a ...any) error {
	return &RejectError{Reason: fmt.Sprintf(format, a...)}
}

// ip4 reads a 4-byte option value; ok is false if absent, err if malformed.
func ip4(m *dhcpv4.DHCPv4, code dhcpv4.OptionCode) (netip.Addr, bool, error) {
	v := m.Options.Get(code)
	if v == nil {
		return netip.Addr{}, false, nil
	}
	if len(v) != 4 {
		return netip.Addr{}, true, reject("option %d: length %d, want 4", code.Code(), len(v))
	}
	return netip.AddrFrom4([4]byte(v)), true, nil
}

// ip4list reads a list of addresses (a multiple of 4 bytes, at least one).
func ip4list(m *dhcpv4.DHCPv4, code dhcpv4.OptionCode) ([]netip.Addr, error) {
	v := m.Options.Get(code)
	if v == nil {
		return nil, nil
	}
	if len(v) == 0 || len(v)%4 != 0 {
		return nil, reject("option %d: length %d, want a multiple of 4", code.Code(), len(v))
	}
	out := make([]netip.Addr, 0, len(v)/4)
	for i := 0; i < len(v); i += 4 {
		out = append(out, netip.AddrFrom4([4]byte(v[i:i+4])))
	}
	return out, nil
}

// u32 reads a 4-byte unsigned option.
func u32(m *dhcpv4.DHCPv4, code dhcpv4.OptionCode) (uint32, bool, error) {
	v := m.Options.Get(code)
	if v == nil {
		return 0, false, nil
	}
	if len(v) != 4 {
		return 0, true, reject("option %d: length %d, want 4", code.Code(), len(v))
	}
	return binary.BigEndian.Uint32(v), true, nil
}

// maskBits checks that a subnet mask is contiguous and usable.
func maskBits(v []byte) (int, error) {
	if len(v) != 4 {
		return 0, reject("subnet mask: length %d, want 4", len(v))
	}
	m := binary.BigEndian.Uint32(v)
	ones := bits.LeadingZeros32(^m)
	if m<<ones != 0 {
		return 0, reject("subnet mask %s: not contiguous", net.IP(v))
	}
	if ones == 0 || ones > 30 {
		return 0, reject("subnet mask %s: /%d leaves no usable host address", net.IP(v), ones)
	}
	return ones, nil
}

// classfulBits is the historical mask of a, used when a server sends no
// subnet mask (RFC 2131 leaves it to the client).
func classfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}

// parseLease checks an OFFER or ACK and extracts the lease. Every check that
// fails returns a *RejectError naming the problem; nothing in m is trusted
// before it passes. acquired is the time the request was sent.
func parseLease(m *dhcpv4.DHCPv4, acquired time.Time) (*Lease, error) {
	yi, ok := netip.AddrFromSlice(m.YourIPAddr.To4())
	if !ok || !yi.IsGlobalUnicast() {
		return nil, reject("yiaddr %s: not a usable unicast address", m.YourIPAddr)
	}
	l := &Lease{Acquired: acquired}
	sid, ok, err := ip4(m, dhcpv4.OptionServerIdentifier)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, reject("no server identifier (option 54)")
	case sid.IsUnspecified() || sid == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return nil, reject("server identifier %s: not a server address", sid)
	}
	l.Server = sid

	prefixLen := classfulBits(yi)
	if v := m.Options.Get(dhcpv4.OptionSubnetMask); v != nil {
		if prefixLen, err = maskBits(v); err != nil {
			return nil, err
		}
	}
	l.Addr = netip.PrefixFrom(yi, prefixLen)
	subnet := l.Addr.Masked()
	if yi == subnet.Addr() {
		return nil, reject("yiaddr %s: the network address of %s", yi, subnet)
	}
	if yi == lastAddr(subnet) {
		return nil, reject("yiaddr %s: the broadcast address of %s", yi, subnet)
	}

	secs, ok, err := u32(m, dhcpv4.OptionIPAddressLeaseTime)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, reject("no lease time (option 51)")
	case secs == 0:
		return nil, reject("lease time 0")
	case secs == 0xffffffff:
		l.LeaseTime, l.T1, l.T2 = Infinite, Infinite, Infinite
	default:
		l.LeaseTime = time.Duration(secs) * time.Second
		l.T1, l.T2 = l.LeaseTime/2, l.LeaseTime/8*7 // no overflow near 2^32 s
		t1, ok1, err1 := u32(m, dhcpv4.OptionRenewTimeValue)
		t2, ok2, err2 := u32(m, dhcpv4.OptionRebindingTimeValue)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		// Server-supplied timers are used only when consistent (T1 < T2 < lease).
		if ok2 && t2 > 0 && t2 < secs {
			l.T2 = time.Duration(t2) * time.Second
		}
		if ok1 && t1 > 0 && time.Duration(t1)*time.Second < l.T2 {
			l.T1 = time.Duration(t1) * time.Second
		}
		if l.T1 >= l.T2 {
			l.T1 = l.T2 / 2
		}
	}

	routers, err := ip4list(m, dhcpv4.OptionRouter)
	if err != nil {
		return nil, err
	}
	if len(routers) > 0 {
		r := routers[0]
		if !subnet.Contains(r) || r == yi || r == subnet.Addr() || r == lastAddr(subnet) {
			return nil, reject("router %s: not a host of subnet %s", r, subnet)
		}
		l.Router = r
	}
	if v := m.Options.Get(dhcpv4.OptionClasslessStaticRoute); v != nil {
		routes, err := parseClassless(v)
		if err != nil {
			return nil, err
		}
		for _, rt := range routes {
			if rt.Gateway.IsValid() && !subnet.Contains(rt.Gateway) {
				return nil, reject("classless route %s via %s: gateway not in subnet %s", rt.Dst, rt.Gateway, subnet)
			}
		}
		l.Routes = routes
	}
	if l.DNS, err = ip4list(m, dhcpv4.OptionDomainNameServer); err != nil {
		return nil, err
	}
	if v := m.Options.Get(dhcpv4.OptionInterfaceMTU); v != nil {
		if len(v) != 2 {
			return nil, reject("interface mtu: length %d, want 2", len(v))
		}
		mtu := int(binary.BigEndian.Uint16(v))
		if mtu < 576 {
			return nil, reject("interface mtu %d: below 576", mtu)
		}
		l.MTU = mtu
	}
	if d := m.DomainName(); d != "" {
		for _, c := range d {
			if c <= ' ' || c > '~' || c == ';' || c == '#' {
				return nil, reject("domain name %q: bad character", d)
			}
		}
		l.Domain = d
	}
	return l, nil
}

// DefaultMinLeaseTime is the floor of the lease timers (WithMinLeaseTime).
// A server that hands out 1 s leases (or a T1 of 1 s) would make the client
// renew, and rewrite its lease and DNS files, every second; such timers are
// raised (as udhcpc and dhcpcd raise theirs) instead of failing the lease:
// the lease to at least this, T1 to half of it, T2 to three quarters.
const DefaultMinLeaseTime = 60 * time.Second

// clampTimers raises a finite lease's timers to the floor min (see
// DefaultMinLeaseTime), keeping T1 < T2 < LeaseTime. It reports whether
// anything changed.
func clampTimers(l *Lease, min time.Duration) bool {
	if l.Infinite() || min <= 0 {
		return false
	}
	old := *l
	l.LeaseTime = max(l.LeaseTime, min)
	l.T1 = max(l.T1, min/2)
	l.T2 = max(l.T2, min/4*3)
	if l.T2 >= l.LeaseTime {
		l.T2 = l.LeaseTime / 8 * 7
	}
	if l.T1 >= l.T2 {
		l.T1 = l.T2 / 2
	}
	return old.LeaseTime != l.LeaseTime || old.T1 != l.T1 || old.T2 != l.T2
}

// parseClassless decodes option 121 strictly (RFC 3442).
func parseClassless(v []byte) ([]Route, error) {
	var out []Route
	for len(v) > 0 {
		w := int(v[0])
		if w > 32 {
			return nil, reject("classless route: prefix length %d", w)
		}
		n := (w + 7) / 8
		if len(v) < 1+n+4 {
			return nil, reject("classless route: truncated")
		}
		var dst [4]byte
		copy(dst[:], v[1:1+n])
		gw := netip.AddrFrom4([4]byte(v[1+n : 1+n+4]))
		p := netip.PrefixFrom(netip.AddrFrom4(dst), w)
		if p.Masked() != p {
			return nil, reject("classless route %s: host bits set", p)
		}
		r := Route{Dst: p}
		if !gw.IsUnspecified() {
			r.Gateway = gw
		}
		out = append(out, r)
		v = v[1+n+4:]
	}
	return out, nil
}

// lastAddr returns the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// DefaultLeaseDir holds the lease files when no path is given.
const DefaultLeaseDir = "/var/lib/nsbox/dhcp"

// DefaultLeaseFile is the lease file of interface dev in the named
// namespace ns ("" for the caller's namespace).
func DefaultLeaseFile(ns, dev string) string {
	if ns == "" {
		ns = "host"
	} else {
		ns = "netns-" + ns
	}
	return filepath.Join(DefaultLeaseDir, ns+"-"+dev+".lease")
}

// LoadLease reads a lease file; a missing file gives (nil, nil).
func LoadLease(path string) (*Lease, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dhcpclient: load lease %s: %w", path, err)
	}
	var l Lease
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("dhcpclient: load lease %s: %w", path, err)
	}
	return &l, nil
}

// SaveLease writes l to path atomically (temporary file and rename).
func SaveLease(path string, l *Lease) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("dhcpclient: save lease %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("dhcpclient: save lease: %w", err)
	}
	return nil
}
