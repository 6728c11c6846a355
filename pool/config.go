package pool

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nsbox/nsbox/internal/poolwire"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// SocketDir is where pools serve their sockets, NAME.sock.
const SocketDir = poolwire.SocketDir

// SocketPath returns the socket of the pool called name.
func SocketPath(name string) string { return filepath.Join(SocketDir, name+poolwire.SocketSuffix) }

// Config says what a pool keeps ready. Bridge, Size and exactly one of DHCP
// and Range are required.
type Config struct {
	// Name is the pool's name; with a Name the pool serves other processes
	// on SocketPath(Name). "" serves this process only (Claim).
	Name string
	// Bridge is the bridge every namespace's veth joins.
	Bridge string
	// BridgeNS is the namespace that holds Bridge; nil means the caller's.
	// The pool keeps its own handle.
	BridgeNS *netns.Handle
	// Size is how many namespaces are kept ready (in use ones not counted).
	Size int
	// DHCP leases each namespace's address from a DHCP server on Bridge.
	DHCP bool
	// Range gives static addresses instead, one per namespace.
	Range Range
	// Gateway is the default route of range addresses; invalid means the
	// bridge's own address in the range's subnet, if it has one.
	Gateway netip.Addr
	// DNS servers for the namespaces' resolv.conf; empty means the lease's.
	DNS []netip.Addr
	// NAT masquerades the bridge's subnets (package nat) while the pool runs.
	NAT bool
	// IfName is the namespaces' interface; "" means "eth0".
	IfName string
	// DHCPTimeout bounds each lease; 0 means 10 s.
	DHCPTimeout time.Duration
	// RefillDelay holds refills (and the destruction of released
	// namespaces) back until this long after the last claim or release,
	// so that wiring does not compete with the sandboxes being started or
	// still running; refills start at once all the same when a claim
	// waits, or when no more than a quarter of Size is ready while no more
	// namespaces are in use than there are CPUs. 0 means
	// DefaultRefillDelay, less than 0 refills at once.
	RefillDelay time.Duration
	// Workers is how many namespaces are wired at once; 0 means Size,
	// at least 8 and at most 64.
	Workers int
	// Logf receives diagnostics; nil discards them.
	Logf func(format string, args ...any)
}

// DefaultRefillDelay is Config.RefillDelay's default.
const DefaultRefillDelay = 20 * time.Millisecond

// Range is a span of static IPv4 addresses with their prefix length, as
// FROM-TO/PREFIX.
type Range struct {
	From, To netip.Addr
	Bits     int
}

// IsValid reports whether r was set.
func (r Range) IsValid() bool { return r.From.IsValid() }

// String renders FROM-TO/PREFIX.
func (r Range) String() string {
	if !r.IsValid() {
		return ""
	}
	return r.From.String() + "-" + r.To.String() + "/" + strconv.Itoa(r.Bits)
}

// Prefix returns the subnet of the range.
func (r Range) Prefix() netip.Prefix { return netip.PrefixFrom(r.From, r.Bits).Masked() }

// ParseRange parses FROM-TO/PREFIX, such as 10.0.0.10-10.0.0.200/24.
func ParseRange(s string) (Range, error) {
	bad := func(why string) (Range, error) {
		return Range{}, fmt.Errorf("range %q: %s (want FROM-TO/PREFIX, such as 10.0.0.10-10.0.0.200/24)", s, why)
	}
	span, bits, ok := strings.Cut(s, "/")
	if !ok {
		return bad("no prefix length")
	}
	from, to, ok := strings.Cut(span, "-")
	if !ok {
		return bad("no '-'")
	}
	var r Range
	var err error
	if r.From, err = netip.ParseAddr(from); err != nil || !r.From.Is4() {
		return bad("FROM is not an IPv4 address")
	}
	if r.To, err = netip.ParseAddr(to); err != nil || !r.To.Is4() {
		return bad("TO is not an IPv4 address")
	}
	if r.Bits, err = strconv.Atoi(bits); err != nil || r.Bits < 1 || r.Bits > 30 {
		return bad("the prefix length is not 1 to 30")
	}
	if r.To.Less(r.From) {
		return bad("TO comes before FROM")
	}
	p := r.Prefix()
	if !p.Contains(r.To) {
		return bad("FROM and TO are in different subnets")
	}
	if r.From == p.Addr() {
		return bad("FROM is the subnet's network address")
	}
	if bcast := lastAddr(p); r.To == bcast {
		return bad("TO is the subnet's broadcast address")
	}
	return r, nil
}

// lastAddr is the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Count returns how many addresses the range spans.
func (r Range) Count() int {
	f, t := r.From.As4(), r.To.As4()
	u := func(b [4]byte) uint32 { return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) }
	return int(u(t)-u(f)) + 1
}

// ValidateName checks a pool name: 1 to 64 bytes of letters, digits, '.',
// '_' and '-', not starting with '.'.
func ValidateName(name string) error {
	if !poolwire.ValidName(name) {
		return fmt.Errorf("pool name %q: want 1 to %d letters, digits, '.', '_' or '-', not starting with '.'", name, poolwire.NameMax)
	}
	return nil
}

// validate checks c without touching the system.
func (c *Config) validate() error {
	if c.Name != "" {
		if err := ValidateName(c.Name); err != nil {
			return err
		}
	}
	if c.Bridge == "" {
		return errors.New("no bridge given")
	}
	if err := rtnl.ValidateLinkName(c.Bridge); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	if c.IfName != "" {
		if err := rtnl.ValidateLinkName(c.IfName); err != nil {
			return fmt.Errorf("interface: %w", err)
		}
	}
	if c.Size < 1 {
		return fmt.Errorf("size %d: want at least 1", c.Size)
	}
	if c.DHCP == c.Range.IsValid() {
		return errors.New("need exactly one of DHCP and a range")
	}
	if c.Range.IsValid() {
		if n := c.Range.Count(); n < c.Size {
			return fmt.Errorf("range %s holds %d addresses, fewer than the size %d", c.Range, n, c.Size)
		}
		if c.Gateway.IsValid() && !c.Range.Prefix().Contains(c.Gateway) {
			return fmt.Errorf("gateway %s is outside %s", c.Gateway, c.Range.Prefix())
		}
	} else if c.Gateway.IsValid() {
		return errors.New("a gateway goes with a range (DHCP gives its own)")
	}
	for _, d := range c.DNS {
		if !d.IsValid() {
			return errors.New("invalid DNS server")
		}
	}
	return nil
}
