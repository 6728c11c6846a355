package rtnl

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"

	"github.com/nsbox/nsbox/netns"
)

// ErrNotImplemented is returned by operations that are not implemented yet.
var ErrNotImplemented = errors.New("not implemented")

// Error is the one error shape of this package, e.g.
// "rtnl: add veth veth0: file exists". Err is the cause (a unix.Errno when
// the kernel refused); Message is the kernel's extended-ack text, if any.
type Error struct {
	Op      string // the operation, e.g. "add veth", "set mtu", "list links"
	Object  string // the object, e.g. a device name or a prefix
	Err     error  // the cause
	Message string // the kernel's extended acknowledgement message, or ""
}

func (e *Error) Error() string {
	s := "rtnl: " + e.Op
	if e.Object != "" {
		s += " " + e.Object
	}
	s += ": " + e.Err.Error()
	if e.Message != "" {
		s += " (" + e.Message + ")"
	}
	return s
}

// Unwrap returns the cause, so errors.Is(err, unix.ENODEV) works.
func (e *Error) Unwrap() error { return e.Err }

// Conn is a route netlink connection opened inside one network namespace.
type Conn struct {
	c *rtnetlink.Conn
}

// Dial opens a connection inside the namespace ns; a nil ns means the
// caller's namespace. The socket is opened in ns by file descriptor; no
// thread of the caller changes namespace.
func Dial(ns *netns.Handle) (*Conn, error) {
	return nil, &Error{Op: "dial", Err: ErrNotImplemented}
}

// Close closes the connection.
func (c *Conn) Close() error {
	if c == nil || c.c == nil {
		return nil
	}
	return c.c.Close()
}

// Netlink returns the underlying rtnetlink connection, for packages on top
// (bridge) that need requests this package does not wrap.
func (c *Conn) Netlink() *rtnetlink.Conn { return c.c }

// Link is a network interface as RTM_GETLINK describes it.
type Link struct {
	Index        int
	Name         string
	Kind         string // "veth", "bridge", "dummy", ... ("" for physical and loopback)
	MTU          uint32
	Flags        net.Flags
	OperState    string // "UP", "DOWN", "UNKNOWN", ... as ip prints it
	HardwareAddr net.HardwareAddr
	MasterIndex  int    // 0: no master
	Master       string // the master's name; filled in by Links
}

// Addr is an interface address.
type Addr struct {
	Index             int
	Dev               string
	Prefix            netip.Prefix // the local address and its prefix length
	Scope             uint8
	Flags             uint32
	ValidLifetime     time.Duration // 0 = forever
	PreferredLifetime time.Duration // 0 = forever
}

// AddrOptions are the optional settings of AddAddr and ReplaceAddr; a nil
// *AddrOptions or zero fields mean a permanent address (forever).
type AddrOptions struct {
	ValidLifetime     time.Duration // 0: forever
	PreferredLifetime time.Duration // 0: forever (or ValidLifetime if that is set)
}

// Route is a route of the main table (unless Table says otherwise).
type Route struct {
	Dst      netip.Prefix // the destination; the zero Prefix means default
	Gateway  netip.Addr   // zero: a device route
	Src      netip.Addr   // preferred source; zero: none
	Dev      string       // output device; "" for a gateway-only route
	Metric   uint32       // priority; 0 is the kernel default
	Table    uint32       // 0 means main (254)
	Protocol uint8        // 0 means boot (3) for additions, as ip does
	Scope    uint8        // 0 (universe) for gateway routes; device routes get link when zero
	Family   int          // unix.AF_INET or AF_INET6; 0 means from Dst/Gateway
}

func notImpl(op, obj string) error { return &Error{Op: op, Object: obj, Err: ErrNotImplemented} }

// ValidateLinkName refuses names the kernel would refuse or that would
// confuse the CLI: empty, over 15 bytes, containing '/', ':' or white space,
// "." or "..".
func ValidateLinkName(name string) error { return nil }

// Links lists every link of the namespace, with Master filled in.
func (c *Conn) Links(ctx context.Context) ([]Link, error) { return nil, notImpl("list links", "") }

// LinkByName returns the link called name (a direct RTM_GETLINK by name).
func (c *Conn) LinkByName(ctx context.Context, name string) (Link, error) {
	return Link{}, notImpl("get link", name)
}

// LinkByIndex returns the link with the given index.
func (c *Conn) LinkByIndex(ctx context.Context, index int) (Link, error) {
	return Link{}, notImpl("get link", "")
}

// AddVeth creates the veth pair name/peer; a non-nil peerNS creates the peer
// directly inside that namespace, in the same request.
func (c *Conn) AddVeth(ctx context.Context, name, peer string, peerNS *netns.Handle) error {
	return notImpl("add veth", name)
}

// AddBridge creates a bridge.
func (c *Conn) AddBridge(ctx context.Context, name string) error { return notImpl("add bridge", name) }

// AddDummy creates a dummy link.
func (c *Conn) AddDummy(ctx context.Context, name string) error { return notImpl("add dummy", name) }

// SetUp sets the link up (IFF_UP).
func (c *Conn) SetUp(ctx context.Context, name string) error { return notImpl("set up", name) }

// SetDown sets the link down.
func (c *Conn) SetDown(ctx context.Context, name string) error { return notImpl("set down", name) }

// SetMTU sets the link's MTU.
func (c *Conn) SetMTU(ctx context.Context, name string, mtu uint32) error {
	return notImpl("set mtu", name)
}

// SetName renames the link.
func (c *Conn) SetName(ctx context.Context, name, newName string) error {
	return notImpl("set name", name)
}

// SetHardwareAddr sets the link's MAC address.
func (c *Conn) SetHardwareAddr(ctx context.Context, name string, mac net.HardwareAddr) error {
	return notImpl("set address", name)
}

// SetMaster enslaves the link to master (a bridge).
func (c *Conn) SetMaster(ctx context.Context, name, master string) error {
	return notImpl("set master", name)
}

// SetNoMaster frees the link from its master.
func (c *Conn) SetNoMaster(ctx context.Context, name string) error {
	return notImpl("set nomaster", name)
}

// SetNetNS moves the link into the namespace ns (by file descriptor).
func (c *Conn) SetNetNS(ctx context.Context, name string, ns *netns.Handle) error {
	return notImpl("set netns", name)
}

// DeleteLink deletes the link (both ends, for a veth).
func (c *Conn) DeleteLink(ctx context.Context, name string) error {
	return notImpl("delete link", name)
}

// Addrs lists the addresses of dev, or of every link when dev is "".
func (c *Conn) Addrs(ctx context.Context, dev string) ([]Addr, error) {
	return nil, notImpl("list addrs", dev)
}

// AddAddr adds the address p (address and prefix length) to dev.
func (c *Conn) AddAddr(ctx context.Context, dev string, p netip.Prefix, o *AddrOptions) error {
	return notImpl("add addr", p.String())
}

// ReplaceAddr adds p to dev or updates it if present.
func (c *Conn) ReplaceAddr(ctx context.Context, dev string, p netip.Prefix, o *AddrOptions) error {
	return notImpl("replace addr", p.String())
}

// DelAddr removes the address p from dev.
func (c *Conn) DelAddr(ctx context.Context, dev string, p netip.Prefix) error {
	return notImpl("delete addr", p.String())
}

// FlushAddrs removes every address of dev.
func (c *Conn) FlushAddrs(ctx context.Context, dev string) error { return notImpl("flush addrs", dev) }

// Routes lists the routes of the main table, IPv4 and IPv6.
func (c *Conn) Routes(ctx context.Context) ([]Route, error) { return nil, notImpl("list routes", "") }

// AddRoute adds r; it fails with EEXIST if an identical route exists.
func (c *Conn) AddRoute(ctx context.Context, r Route) error { return notImpl("add route", "") }

// ReplaceRoute adds r or replaces the route with the same key.
func (c *Conn) ReplaceRoute(ctx context.Context, r Route) error { return notImpl("replace route", "") }

// DelRoute deletes the route matching r.
func (c *Conn) DelRoute(ctx context.Context, r Route) error { return notImpl("delete route", "") }
