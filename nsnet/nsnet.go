package nsnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/nsbox/nsbox/internal/abi"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
	"golang.org/x/sys/unix"
)

// Config says how a sandbox is attached. Its zero value is not usable:
// Bridge is required, and exactly one of DHCP or Addr.
type Config struct {
	// Bridge is the bridge that the host end of the veth joins.
	Bridge string
	// BridgeNS is the namespace that holds Bridge; nil means the caller's.
	BridgeNS *netns.Handle
	// Checked is what CheckBridge returned for this Bridge: Attach then
	// reuses its connection and index. nil: Attach dials and checks itself.
	Checked *Bridge
	// IfName is the sandbox end's name inside the child; "" means "eth0".
	IfName string
	// DHCP obtains the address from a DHCP server on the bridge.
	DHCP bool
	// DHCPTimeout bounds the wait for a lease; 0 means 10 s.
	DHCPTimeout time.Duration
	// Hostname is sent to the DHCP server (option 12) when set.
	Hostname string
	// LeaseTime is the lease time asked of the DHCP server; 0 means
	// DefaultLeaseTime. The client renews at half of what the server grants,
	// so a short lease costs a renewal a minute and bounds what a sandbox
	// killed with SIGKILL (which cannot release) keeps from the pool.
	LeaseTime time.Duration
	// LeaseFile, with DHCP, keeps the lease in this file too (package
	// dhcpclient's format; removed when the lease is released), so that
	// another process can release it if this one dies (package pool).
	LeaseFile string
	// DNS are the sandbox's DNS servers; with DHCP, when empty, the lease's.
	DNS []netip.Addr
	// Addr is a static address with its prefix length.
	Addr netip.Prefix
	// Gateway, when valid, becomes the default route; it must be inside Addr.
	Gateway netip.Addr
	// Logf receives DHCP diagnostics; nil discards them.
	Logf func(format string, args ...any)
}

// DefaultIfName is the sandbox end's name when Config.IfName is empty.
const DefaultIfName = abi.DefaultIfName

// HostIfNameFormat formats the host end's name from the child's pid (see
// HostIfName); the C fast path of run uses the same format.
const HostIfNameFormat = abi.HostIfNameFormat

// HostIfNameTries is how many names Attach tries for the host end (see
// HostIfNameTry) before it gives up with EEXIST.
const HostIfNameTries = abi.HostIfNameTries

// DefaultLeaseTime is the lease time a sandbox asks for (Config.LeaseTime):
// 2 min, the shortest that dnsmasq and nsbox's own server grant.
const DefaultLeaseTime = 2 * time.Minute

// ifName returns the sandbox interface name, with its default.
func (c *Config) ifName() string {
	if c.IfName == "" {
		return DefaultIfName
	}
	return c.IfName
}

// Validate checks c without touching the system.
func (c *Config) Validate() error {
	if c.Bridge == "" {
		return errors.New("nsnet: no bridge given")
	}
	if err := rtnl.ValidateLinkName(c.Bridge); err != nil {
		return fmt.Errorf("nsnet: bridge: %w", err)
	}
	if err := rtnl.ValidateLinkName(c.ifName()); err != nil {
		return fmt.Errorf("nsnet: interface: %w", err)
	}
	switch {
	case c.DHCP && c.Addr.IsValid():
		return errors.New("nsnet: DHCP and a static address are exclusive")
	case !c.DHCP && !c.Addr.IsValid():
		return errors.New("nsnet: need DHCP or a static address")
	case c.DHCP && c.Gateway.IsValid():
		return errors.New("nsnet: a gateway goes with a static address (DHCP gives its own)")
	}
	if c.Addr.IsValid() {
		if c.Addr.Bits() == 0 {
			return fmt.Errorf("nsnet: address %s: a prefix length of 0 covers every address", c.Addr)
		}
		if why := unusable(c.Addr.Addr()); why != "" {
			return fmt.Errorf("nsnet: address %s is %s", c.Addr, why)
		}
		if c.Addr.Addr() == c.Addr.Masked().Addr() && c.Addr.Bits() < c.Addr.Addr().BitLen()-1 {
			return fmt.Errorf("nsnet: address %s is the network address of its subnet", c.Addr)
		}
		if c.Addr.Addr().Is4() && c.Addr.Bits() < 31 && c.Addr.Addr() == broadcast(c.Addr) {
			return fmt.Errorf("nsnet: address %s is the broadcast address of its subnet", c.Addr)
		}
		if c.Gateway.IsValid() {
			if why := unusable(c.Gateway); why != "" {
				return fmt.Errorf("nsnet: gateway %s is %s", c.Gateway, why)
			}
			if !c.Addr.Contains(c.Gateway) {
				return fmt.Errorf("nsnet: gateway %s is outside %s", c.Gateway, c.Addr.Masked())
			}
			if c.Gateway == c.Addr.Addr() {
				return fmt.Errorf("nsnet: gateway %s is the sandbox's own address", c.Gateway)
			}
		}
	}
	return nil
}

// unusable says why a is no address for a sandbox's interface or gateway,
// or "" if it is one: loopback (rtnl gives it host scope), multicast,
// unspecified, 0.0.0.0/8 ("this network") or 240.0.0.0/4 (reserved, with
// the limited broadcast).
func unusable(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsMulticast():
		return "a multicast address"
	case a.IsUnspecified():
		return "the unspecified address"
	case a.Is4() && a.As4()[0] == 0:
		return "in 0.0.0.0/8 (this network)"
	case a.Is4() && a.As4()[0] >= 240:
		return "in 240.0.0.0/4 (reserved)"
	}
	return ""
}

// broadcast returns the IPv4 broadcast address of p's subnet.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= ^uint32(0) >> p.Bits()
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// HostIfName is the name of the host end of the veth for child pid, the
// first that Attach tries.
func HostIfName(pid int) string {
	return HostIfNameTry(pid, 0)
}

// HostIfNameTry is the name of the host end of the veth for child pid at
// try number try (0 to HostIfNameTries-1): Attach takes the next when a
// link already has the name, as the host end of a dead sandbox of the same
// pid does until the kernel has destroyed that sandbox's namespace, and
// never deletes that link. The C fast path of run tries the same names.
func HostIfNameTry(pid, try int) string {
	if try == 0 {
		return fmt.Sprintf(HostIfNameFormat, pid)
	}
	return fmt.Sprintf(abi.HostIfNameNextFormat, pid, try)
}

// Bridge is a bridge that CheckBridge found: a netlink connection in its
// namespace and its index. Given as Config.Checked, Attach reuses both (no
// second connection, no lookup by name), so a sandbox's network costs one
// lookup of the bridge. Close it once no Attach needs it any more.
type Bridge struct {
	conn  *rtnl.Conn
	name  string
	index int
}

// Close closes the bridge's connection. It is safe on a nil Bridge.
func (b *Bridge) Close() error {
	if b == nil || b.conn == nil {
		return nil
	}
	err := b.conn.Close()
	b.conn = nil
	return err
}

// CheckBridge verifies that the bridge of c exists and is a bridge, so that
// a caller can refuse before spawning anything, and returns it for Attach
// (set Config.Checked to it).
func CheckBridge(ctx context.Context, c *Config) (*Bridge, error) {
	conn, err := rtnl.Dial(c.BridgeNS)
	if err != nil {
		return nil, fmt.Errorf("nsnet: check bridge %s: %w", c.Bridge, err)
	}
	index, err := checkBridge(ctx, conn, c.Bridge)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &Bridge{conn: conn, name: c.Bridge, index: index}, nil
}

// checkBridge returns the index of the bridge name.
func checkBridge(ctx context.Context, conn *rtnl.Conn, name string) (int, error) {
	l, err := conn.LinkByName(ctx, name)
	if err != nil {
		if errors.Is(err, unix.ENODEV) {
			return 0, fmt.Errorf("nsnet: bridge %s does not exist (create it with nsbox bridge add %s)", name, name)
		}
		return 0, fmt.Errorf("nsnet: bridge %s: %w", name, err)
	}
	if l.Kind != "bridge" {
		kind := l.Kind
		if kind == "" {
			kind = "a device without a kind"
		}
		return 0, fmt.Errorf("nsnet: %s is not a bridge (it is %s)", name, kind)
	}
	return l.Index, nil
}

// Attachment is the network of one sandbox: its veth and, with DHCP, the
// client that keeps its lease. Close undoes it.
type Attachment struct {
	hostConn   *rtnl.Conn
	sharedConn bool // hostConn is a Bridge's: not closed here
	hostIf     string
	ifName     string
	lease      leaseHolder
	// Addr is the sandbox's address, static or leased.
	Addr netip.Prefix
	// Gateway is its default route's gateway, if any.
	Gateway netip.Addr
	// DNS are the sandbox's DNS servers: Config.DNS, else the lease's.
	DNS []netip.Addr
	// Domain is the lease's domain name (option 15), if any.
	Domain string
	// MAC is the sandbox end's hardware address (read while waiting for
	// its carrier), for whoever needs it next (the DHCP client, a pool's
	// neighbour entries) without another lookup.
	MAC net.HardwareAddr
}

// ResolvConf is the resolv.conf of the sandbox: its DNS servers and search
// domain, or a comment saying that there are none.
func (a *Attachment) ResolvConf() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by nsbox for the sandbox's %s\n", a.ifName)
	if a.Domain != "" {
		fmt.Fprintf(&b, "search %s\n", a.Domain)
	}
	for _, d := range a.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", d)
	}
	if len(a.DNS) == 0 {
		b.WriteString("# no DNS servers given\n")
	}
	return []byte(b.String())
}

// leaseHolder is the DHCP side of an attachment (see dhcp.go).
type leaseHolder interface {
	// close stops renewing and releases the lease.
	close(ctx context.Context) error
}

// Attach wires the network of the child pid (whose network namespace must be
// new and empty) as c says, and returns once the address is configured. On
// failure nothing is left: the veth is deleted and no lease is kept.
func Attach(ctx context.Context, c *Config, pid int) (a *Attachment, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	child, err := netns.OpenPid(pid)
	if err != nil {
		return nil, fmt.Errorf("nsnet: open netns of pid %d: %w", pid, err)
	}
	defer child.Close()
	return attachNS(ctx, c, child, func(try int) string { return HostIfNameTry(pid, try) }, HostIfNameTries)
}

// AttachNS is Attach for a network namespace given by a handle (which must
// be new and empty, and which the caller keeps open as long as it needs
// it), with hostIf as the name of the veth's host end. The pool package
// wires namespaces that no process has entered yet this way.
func AttachNS(ctx context.Context, c *Config, child *netns.Handle, hostIf string) (a *Attachment, err error) {
	return attachNS(ctx, c, child, func(int) string { return hostIf }, 1)
}

// attachNS is AttachNS with the host end named hostIf(0), or, while that
// name is taken (EEXIST), hostIf(1) and so on up to tries names.
func attachNS(ctx context.Context, c *Config, child *netns.Handle, hostIf func(try int) string, tries int) (a *Attachment, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	a = &Attachment{ifName: c.ifName()}
	defer func() {
		if err != nil {
			_ = a.Close(context.WithoutCancel(ctx))
			a = nil
		}
	}()
	var brIndex int
	if b := c.Checked; b != nil && b.conn != nil && b.name == c.Bridge {
		// CheckBridge's connection and index: no second dial, no lookup.
		a.hostConn, a.sharedConn, brIndex = b.conn, true, b.index
	} else {
		hostConn, err := rtnl.Dial(c.BridgeNS)
		if err != nil {
			return nil, fmt.Errorf("nsnet: dial bridge namespace: %w", err)
		}
		a.hostConn = hostConn
		if brIndex, err = checkBridge(ctx, hostConn, c.Bridge); err != nil {
			return a, err
		}
	}
	hostConn := a.hostConn
	for try := 0; ; try++ {
		name := hostIf(try)
		err := hostConn.AddVeth(ctx, name, a.ifName, child)
		if err == nil {
			a.hostIf = name
			break
		}
		// Nothing was created: the link that has the name is a stranger's
		// (a dead sandbox's whose namespace the kernel has not destroyed
		// yet, or a live one's) and is never deleted; take the next name.
		if !errors.Is(err, unix.EEXIST) || try+1 >= tries {
			return a, fmt.Errorf("nsnet: veth %s: %w", a.ifName, err)
		}
	}
	up := true
	if err := hostConn.SetLink(ctx, a.hostIf, rtnl.LinkSettings{MasterIndex: brIndex, Up: &up}); err != nil {
		return a, fmt.Errorf("nsnet: join %s to bridge %s: %w", a.hostIf, c.Bridge, err)
	}
	in, err := rtnl.Dial(child)
	if err != nil {
		return a, fmt.Errorf("nsnet: dial the sandbox's namespace: %w", err)
	}
	defer in.Close()
	if err := in.SetUp(ctx, "lo"); err != nil {
		return a, fmt.Errorf("nsnet: loopback up: %w", err)
	}
	if err := in.SetUp(ctx, a.ifName); err != nil {
		return a, fmt.Errorf("nsnet: %s up: %w", a.ifName, err)
	}
	if a.MAC, err = waitRunning(ctx, in, a.ifName, hostConn, a.hostIf); err != nil {
		return a, fmt.Errorf("nsnet: %s: %w", a.ifName, err)
	}
	if c.DHCP {
		return a, a.leaseDHCP(ctx, c, child)
	}
	// An IPv6 address is added without duplicate address detection: the
	// sandbox's link is new and its own, and a tentative address would
	// leave the payload's first packets without a source (EADDRNOTAVAIL)
	// for about a second.
	if err := in.AddAddr(ctx, a.ifName, c.Addr, &rtnl.AddrOptions{NoDAD: c.Addr.Addr().Is6()}); err != nil {
		return a, fmt.Errorf("nsnet: address %s: %w", c.Addr, err)
	}
	a.Addr, a.DNS = c.Addr, c.DNS
	if c.Gateway.IsValid() {
		if err := in.AddRoute(ctx, rtnl.Route{Gateway: c.Gateway, Dev: a.ifName}); err != nil {
			return a, fmt.Errorf("nsnet: default route via %s: %w", c.Gateway, err)
		}
		a.Gateway = c.Gateway
	}
	return a, nil
}

// Detach releases the lease (if any) and lets go of the sandbox without
// deleting its veth: once the sandbox's processes are gone, the kernel
// destroys its network namespace and removes the veth pair with it, batching
// the work of many sandboxes (an explicit delete costs an RCU grace period,
// tens of milliseconds, under the global rtnl lock). The removal is
// asynchronous: the host end disappears shortly after the namespace's last
// user. Use Close while the sandbox may still be running.
func (a *Attachment) Detach(ctx context.Context) error {
	if a == nil {
		return nil
	}
	a.hostIf = ""
	return a.Close(ctx)
}

// Close releases the lease (if any) and deletes the veth pair. It is safe to
// call more than once; a veth that the kernel already removed (its namespace
// died with the payload) is not an error.
func (a *Attachment) Close(ctx context.Context) error {
	if a == nil || a.hostConn == nil {
		return nil
	}
	var errs []error
	if a.lease != nil {
		if err := a.lease.close(ctx); err != nil {
			errs = append(errs, err)
		}
		a.lease = nil
	}
	if a.hostIf != "" {
		if err := a.hostConn.DeleteLink(ctx, a.hostIf); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("nsnet: delete %s: %w", a.hostIf, err))
		}
		a.hostIf = ""
	}
	if !a.sharedConn {
		if err := a.hostConn.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	a.hostConn = nil
	return errors.Join(errs...)
}

// waitRunning waits (at most abi.LinkRunningWait, polling every
// abi.LinkRunningPoll, the same bounds as run's C fast path) until both ends
// of the veth report IFF_RUNNING. The kernel's link watcher turns a veth's carrier on (and
// gives it a working queue, and its bridge port a forwarding state) only
// when it gets the rtnl lock; until then whatever the sandbox sends first
// (a DHCPDISCOVER, a SYN) is dropped and costs a retransmission, 1 s.
// Under load (many namespaces made and torn down at once) the watcher lags
// for tens of milliseconds. It returns the sandbox end's MAC, from its first
// lookup, which must succeed; the waits themselves are best effort.
func waitRunning(ctx context.Context, in *rtnl.Conn, dev string, host *rtnl.Conn, hostDev string) (net.HardwareAddr, error) {
	first, err := in.LinkByName(ctx, dev)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(abi.LinkRunningWait)
	wait := func(c *rtnl.Conn, dev string, l rtnl.Link) {
		for l.RawFlags&unix.IFF_RUNNING == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(abi.LinkRunningPoll)
			var err error
			if l, err = c.LinkByName(ctx, dev); err != nil {
				return
			}
		}
	}
	wait(in, dev, first)
	if time.Now().Before(deadline) && ctx.Err() == nil {
		if l, err := host.LinkByName(ctx, hostDev); err == nil {
			wait(host, hostDev, l)
		}
	}
	return first.HardwareAddr, nil
}
