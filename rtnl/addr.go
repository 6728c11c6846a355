package rtnl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Addr is an interface address.
type Addr struct {
	Index             int
	Dev               string
	Prefix            netip.Prefix  // the local address and its prefix length
	Broadcast         netip.Addr    // IPv4 broadcast, if one is set
	Label             string        // IPv4 label (usually the device name)
	Scope             uint8         // RT_SCOPE_* (0 universe/global, 253 link, 254 host)
	Flags             uint32        // IFA_F_* (permanent, tentative, ...)
	ValidLifetime     time.Duration // 0 = forever
	PreferredLifetime time.Duration // 0 = forever
}

// AddrOptions are the optional settings of AddAddr and ReplaceAddr; a nil
// *AddrOptions or zero fields mean a permanent address (forever).
type AddrOptions struct {
	ValidLifetime     time.Duration // 0: forever
	PreferredLifetime time.Duration // 0: forever, or ValidLifetime when that is set
	// NoDAD skips duplicate address detection of an IPv6 address
	// (IFA_F_NODAD, ip's nodad): it is usable at once instead of
	// tentative. No effect on IPv4.
	NoDAD bool
	// NoPrefixRoute adds no route for the address's prefix
	// (IFA_F_NOPREFIXROUTE, ip's noprefixroute).
	NoPrefixRoute bool
	// Broadcast is the IPv4 broadcast address (ip's brd ADDR); zero:
	// none. BroadcastFromPrefix sets it to the prefix's last address
	// (ip's brd +).
	Broadcast           netip.Addr
	BroadcastFromPrefix bool
	// Label is the IPv4 address label (ip's label L): the device's name,
	// or the name followed by ':' and anything; "": the device's name.
	Label string
}

// broadcastOf is the last address of p's prefix (brd +).
func broadcastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	host := len(b)*8 - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		n := host
		if n > 8 {
			n = 8
		}
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

const infinityLifetime = 0xFFFFFFFF

func lifetime(secs uint32) time.Duration {
	if secs == infinityLifetime {
		return 0
	}
	return time.Duration(secs) * time.Second
}

func decodeAddr(data []byte) (Addr, error) {
	var m rtnetlink.AddressMessage
	if err := m.UnmarshalBinary(data); err != nil {
		return Addr{}, err
	}
	a := Addr{Index: int(m.Index), Scope: m.Scope, Flags: uint32(m.Flags)}
	if at := m.Attributes; at != nil {
		ip := at.Local
		if ip == nil {
			ip = at.Address
		}
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			return Addr{}, fmt.Errorf("bad address %v", ip)
		}
		a.Prefix = netip.PrefixFrom(addr, int(m.PrefixLength))
		if b, ok := netip.AddrFromSlice(at.Broadcast); ok {
			a.Broadcast = b
		}
		a.Label = at.Label
		if at.Flags != 0 {
			a.Flags = at.Flags
		}
		a.ValidLifetime = lifetime(at.CacheInfo.Valid)
		a.PreferredLifetime = lifetime(at.CacheInfo.Preferred)
		if at.CacheInfo == (rtnetlink.CacheInfo{}) {
			a.ValidLifetime, a.PreferredLifetime = 0, 0
		}
	}
	return a, nil
}

// Addrs lists the addresses (IPv4 and IPv6) of dev, or of every link when
// dev is "", in the kernel's order.
func (c *Conn) Addrs(ctx context.Context, dev string) ([]Addr, error) {
	if dev == "" {
		return c.QueryAddrs(ctx, AddrQuery{})
	}
	l, err := c.LinkByName(ctx, dev)
	if err != nil {
		return nil, err
	}
	return c.QueryAddrs(ctx, AddrQuery{Index: l.Index, Names: map[int]string{l.Index: dev}})
}

// AddrQuery selects the addresses QueryAddrs lists.
type AddrQuery struct {
	// Index is the link whose addresses are listed; 0: every link.
	Index int
	// Names maps link indexes to the names that go to Addr.Dev, for a
	// caller that has just listed the links; nil: QueryAddrs lists the
	// links itself (one more dump). A missing index leaves Dev "".
	Names map[int]string
}

// QueryAddrs lists the addresses (IPv4 and IPv6) that q selects, in the
// kernel's order.
func (c *Conn) QueryAddrs(ctx context.Context, q AddrQuery) ([]Addr, error) {
	names := q.Names
	if names == nil {
		var err error
		if names, err = c.linkNames(ctx); err != nil {
			return nil, err
		}
	}
	msgs, err := c.dump(ctx, "list addrs", unix.RTM_GETADDR, unix.RTM_NEWADDR, &rtnetlink.AddressMessage{})
	if err != nil {
		return nil, err
	}
	var addrs []Addr
	for _, nm := range msgs {
		a, err := decodeAddr(nm.Data)
		if err != nil {
			return nil, &Error{Op: "list addrs", Object: names[q.Index], Err: fmt.Errorf("decode: %w", err)}
		}
		if q.Index != 0 && a.Index != q.Index {
			continue
		}
		a.Dev = names[a.Index]
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// checkPrefix refuses prefixes that are not a plain IPv4 or IPv6 address
// with a prefix length.
func checkPrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("invalid prefix %v: %w", p, unix.EINVAL)
	}
	if p.Addr().Is4In6() {
		return fmt.Errorf("IPv4-mapped IPv6 address %v: %w", p, unix.EINVAL)
	}
	if p.Addr().Zone() != "" {
		return fmt.Errorf("address with zone %v: %w", p, unix.EINVAL)
	}
	return nil
}

func addrMessage(index int, p netip.Prefix) *rtnetlink.AddressMessage {
	ip := net.IP(p.Addr().AsSlice())
	fam := uint8(unix.AF_INET)
	if p.Addr().Is6() {
		fam = unix.AF_INET6
	}
	var scope uint8
	if p.Addr().Is4() && p.Addr().As4()[0] == 127 {
		scope = unix.RT_SCOPE_HOST // as ip does for 127.0.0.0/8
	}
	return &rtnetlink.AddressMessage{
		Family:       fam,
		PrefixLength: uint8(p.Bits()),
		Scope:        scope,
		Index:        uint32(index),
		Attributes:   &rtnetlink.AddressAttributes{Address: ip, Local: ip},
	}
}

// cacheInfoAttr encodes IFA_CACHEINFO with the lifetimes of o.
func cacheInfoAttr(o *AddrOptions) []byte {
	if o == nil || (o.ValidLifetime == 0 && o.PreferredLifetime == 0) {
		return nil
	}
	secs := func(d time.Duration) uint32 {
		if d <= 0 {
			return infinityLifetime
		}
		s := (d + time.Second - 1) / time.Second
		if s >= infinityLifetime {
			return infinityLifetime - 1
		}
		return uint32(s)
	}
	valid := secs(o.ValidLifetime)
	pref := valid
	if o.PreferredLifetime > 0 {
		pref = secs(o.PreferredLifetime)
		if pref > valid {
			pref = valid
		}
	}
	b := make([]byte, 4+16)
	binary.NativeEndian.PutUint16(b[0:2], uint16(len(b)))
	binary.NativeEndian.PutUint16(b[2:4], unix.IFA_CACHEINFO)
	binary.NativeEndian.PutUint32(b[4:8], pref)
	binary.NativeEndian.PutUint32(b[8:12], valid)
	return b
}

func (c *Conn) changeAddr(ctx context.Context, op, dev string, p netip.Prefix, o *AddrOptions, typ uint16, flags netlink.HeaderFlags) error {
	obj := p.String() + " dev " + dev
	if err := checkPrefix(p); err != nil {
		return &Error{Op: op, Object: obj, Err: err}
	}
	if err := ValidateLinkName(dev); err != nil {
		return &Error{Op: op, Object: obj, Err: errors.Unwrap(err)}
	}
	index, err := c.linkIndex(ctx, dev)
	if err != nil {
		return &Error{Op: op, Object: obj, Err: errors.Unwrap(err)}
	}
	m := addrMessage(index, p)
	if o != nil {
		var f uint32
		if o.NoDAD && p.Addr().Is6() {
			f |= unix.IFA_F_NODAD
		}
		if o.NoPrefixRoute {
			f |= unix.IFA_F_NOPREFIXROUTE
		}
		if f != 0 {
			m.Flags |= uint8(f & 0xff)
			m.Attributes.Flags = f
		}
		if p.Addr().Is4() {
			switch {
			case o.BroadcastFromPrefix:
				m.Attributes.Broadcast = net.IP(broadcastOf(p).AsSlice())
			case o.Broadcast.IsValid():
				if !o.Broadcast.Is4() {
					return &Error{Op: op, Object: obj, Err: fmt.Errorf("broadcast %s is not IPv4: %w", o.Broadcast, unix.EINVAL)}
				}
				m.Attributes.Broadcast = net.IP(o.Broadcast.AsSlice())
			}
			if o.Label != "" {
				if o.Label != dev && !strings.HasPrefix(o.Label, dev+":") {
					return &Error{Op: op, Object: obj, Err: fmt.Errorf("label %q must be the device name or start with %q: %w", o.Label, dev+":", unix.EINVAL)}
				}
				m.Attributes.Label = o.Label
			}
		}
	}
	return c.ack(ctx, op, obj, typ, flags, m, cacheInfoAttr(o))
}

// AddAddr adds the address p (address and prefix length) to dev. An
// address that is already there fails with an error wrapping unix.EEXIST.
func (c *Conn) AddAddr(ctx context.Context, dev string, p netip.Prefix, o *AddrOptions) error {
	return c.changeAddr(ctx, "add addr", dev, p, o, unix.RTM_NEWADDR, netlink.Create|netlink.Excl)
}

// ReplaceAddr adds p to dev or updates it (its lifetimes) if present.
func (c *Conn) ReplaceAddr(ctx context.Context, dev string, p netip.Prefix, o *AddrOptions) error {
	return c.changeAddr(ctx, "replace addr", dev, p, o, unix.RTM_NEWADDR, netlink.Create|netlink.Replace)
}

// DelAddr removes the address p from dev; a missing address fails with an
// error wrapping unix.EADDRNOTAVAIL.
func (c *Conn) DelAddr(ctx context.Context, dev string, p netip.Prefix) error {
	return c.changeAddr(ctx, "delete addr", dev, p, nil, unix.RTM_DELADDR, 0)
}

// FlushAddrs removes every address (IPv4 and IPv6) of dev.
func (c *Conn) FlushAddrs(ctx context.Context, dev string) error {
	// Deleting a primary IPv4 address may delete its secondaries too, and
	// the kernel may add an IPv6 link-local meanwhile: a few bounded rounds.
	for round := 0; round < 5; round++ {
		addrs, err := c.Addrs(ctx, dev)
		if err != nil {
			return &Error{Op: "flush addrs", Object: dev, Err: errors.Unwrap(err)}
		}
		if len(addrs) == 0 {
			return nil
		}
		for _, a := range addrs {
			err := c.ack(ctx, "flush addrs", dev, unix.RTM_DELADDR, 0, addrMessage(a.Index, a.Prefix), nil)
			if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return err
			}
		}
	}
	return &Error{Op: "flush addrs", Object: dev, Err: errors.New("addresses keep appearing")}
}
