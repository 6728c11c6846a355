package rtnl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Route is a route of the main table (unless Table says otherwise).
type Route struct {
	Dst      netip.Prefix // the destination; the zero Prefix means default
	Gateway  netip.Addr   // zero: a device route
	Src      netip.Addr   // preferred source; zero: none
	Dev      string       // output device; "" for a gateway-only route
	Metric   uint32       // priority; 0 is the kernel default
	Table    uint32       // 0 means main (254)
	Protocol uint8        // RTPROT_*; 0 means boot (3) for additions, as ip does
	Scope    uint8        // RT_SCOPE_*; for additions 0 lets it be chosen as ip does
	Family   int          // unix.AF_INET or AF_INET6; 0 means from Dst/Gateway
	Type     uint8        // RTN_*; 0 means unicast
	Flags    uint32       // RTNH_F_* of a listed route (linkdown, onlink, ...)
	Pref     uint8        // IPv6 router preference of a listed route (0 medium, 1 high, 3 low)

	// From is RTA_SRC (the source prefix a route applies to; route get
	// answers with it when asked "from"); zero: none.
	From netip.Prefix
	// UID is RTA_UID of a route get answer; nil: absent.
	UID *uint32
	// HasMetric says the kernel's description carried RTA_PRIORITY (ip
	// then prints the metric, even 0).
	HasMetric bool
}

// RouteQuery selects the routes QueryRoutes and FlushRoutes dump; its zero
// value is what Routes lists (IPv4 and IPv6 of the main table).
type RouteQuery struct {
	Family int    // unix.AF_INET or AF_INET6; 0: both
	Table  uint32 // 0: main
	// AllTables lists every table (ip route show table all); Table is
	// then ignored.
	AllTables bool
}

// RouteGet is a route lookup (ip route get): the kernel answers with the
// route a packet to Dst would take.
type RouteGet struct {
	Dst  netip.Addr
	From netip.Addr // the packet's source; zero: any
	Dev  string     // the output device; "": any
}

// String renders r like the start of an `ip route` line.
func (r Route) String() string {
	s := "default"
	if r.Dst.IsValid() && r.Dst.Bits() > 0 {
		s = r.Dst.String()
	}
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	return s
}

func (r Route) family() int {
	switch {
	case r.Family != 0:
		return r.Family
	case r.Dst.IsValid() && r.Dst.Addr().Is6():
		return unix.AF_INET6
	case r.Gateway.IsValid() && r.Gateway.Is6():
		return unix.AF_INET6
	}
	return unix.AF_INET
}

func decodeRoute(data []byte) (Route, *rtnetlink.RouteMessage, error) {
	var m rtnetlink.RouteMessage
	if err := m.UnmarshalBinary(data); err != nil {
		return Route{}, nil, err
	}
	a := m.Attributes
	r := Route{
		Metric:   a.Priority,
		Table:    uint32(m.Table),
		Protocol: m.Protocol,
		Scope:    m.Scope,
		Family:   int(m.Family),
		Type:     m.Type,
		Flags:    m.Flags,
	}
	if a.Pref != nil {
		r.Pref = *a.Pref
	}
	if a.Table != 0 {
		r.Table = a.Table
	}
	if ip, ok := netip.AddrFromSlice(a.Dst); ok {
		r.Dst = netip.PrefixFrom(ip, int(m.DstLength))
	} else if m.DstLength == 0 {
		r.Dst = netip.Prefix{}
	}
	if ip, ok := netip.AddrFromSlice(a.Gateway); ok {
		r.Gateway = ip
	}
	if ip, ok := netip.AddrFromSlice(a.Src); ok {
		r.Src = ip
	}
	if len(data) > unix.SizeofRtMsg {
		if ad, err := netlink.NewAttributeDecoder(data[unix.SizeofRtMsg:]); err == nil {
			for ad.Next() {
				switch ad.Type() {
				case unix.RTA_PRIORITY:
					r.HasMetric = true
				case unix.RTA_UID:
					if len(ad.Bytes()) == 4 {
						v := ad.Uint32()
						r.UID = &v
					}
				case unix.RTA_SRC:
					if ip, ok := netip.AddrFromSlice(ad.Bytes()); ok {
						r.From = netip.PrefixFrom(ip, int(m.SrcLength))
					}
				}
			}
		}
	}
	return r, &m, nil
}

// Routes lists the unicast routes of the main table, IPv4 then IPv6, in
// the kernel's order, with Dev filled in.
func (c *Conn) Routes(ctx context.Context) ([]Route, error) {
	return c.QueryRoutes(ctx, RouteQuery{})
}

// QueryRoutes lists the routes q selects (never the cloned ones of the
// route cache), in the kernel's order, with Dev filled in.
func (c *Conn) QueryRoutes(ctx context.Context, q RouteQuery) ([]Route, error) {
	routes, _, err := c.queryRoutes(ctx, "list routes", q)
	return routes, err
}

func (c *Conn) queryRoutes(ctx context.Context, op string, q RouteQuery) ([]Route, [][]byte, error) {
	names, err := c.linkNames(ctx)
	if err != nil {
		return nil, nil, err
	}
	msgs, err := c.dump(ctx, op, unix.RTM_GETROUTE, unix.RTM_NEWROUTE, &rtnetlink.RouteMessage{Family: uint8(q.Family)})
	if err != nil {
		return nil, nil, err
	}
	table := q.Table
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	var routes []Route
	var raw [][]byte
	for _, nm := range msgs {
		r, m, err := decodeRoute(nm.Data)
		if err != nil {
			return nil, nil, &Error{Op: op, Err: fmt.Errorf("decode: %w", err)}
		}
		if (!q.AllTables && r.Table != table) || m.Flags&unix.RTM_F_CLONED != 0 {
			continue
		}
		if q.Family != 0 && r.Family != q.Family {
			continue
		}
		if m.Attributes.OutIface != 0 {
			r.Dev = names[int(m.Attributes.OutIface)]
		}
		routes = append(routes, r)
		raw = append(raw, nm.Data)
	}
	return routes, raw, nil
}

// FlushRoutes deletes every route q selects for which keep (nil: every
// route) says true, each with the request the kernel described it with,
// in rounds until none is left (as ip route flush). It returns how many
// were deleted.
func (c *Conn) FlushRoutes(ctx context.Context, q RouteQuery, match func(Route) bool) (int, error) {
	total := 0
	for round := 0; round < 10; round++ {
		routes, raw, err := c.queryRoutes(ctx, "flush routes", q)
		if err != nil {
			return total, err
		}
		n := 0
		for i, r := range routes {
			if match != nil && !match(r) {
				continue
			}
			_, err := c.exchange(unix.RTM_DELROUTE, netlink.Request|netlink.Acknowledge, raw[i], nil)
			if err != nil && !errors.Is(err, unix.ESRCH) {
				return total, wrap("flush routes", r.String(), err)
			}
			n++
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
	return total, &Error{Op: "flush routes", Err: errors.New("routes keep appearing")}
}

// GetRoute asks the kernel which route a packet to g.Dst would take (ip
// route get). The answer has Dev filled in, and Flags holds RTM_F_CLONED
// and the RTCF_* cache flags for IPv4.
func (c *Conn) GetRoute(ctx context.Context, g RouteGet) (Route, error) {
	obj := g.Dst.String()
	if !g.Dst.IsValid() || g.Dst.Zone() != "" || g.Dst.Is4In6() {
		return Route{}, &Error{Op: "get route", Object: obj, Err: unix.EINVAL}
	}
	fam := uint8(unix.AF_INET)
	if g.Dst.Is6() {
		fam = unix.AF_INET6
	}
	m := &rtnetlink.RouteMessage{Family: fam, DstLength: uint8(g.Dst.BitLen())}
	m.Attributes.Dst = net.IP(g.Dst.AsSlice())
	if g.From.IsValid() {
		if g.From.Is6() != g.Dst.Is6() {
			return Route{}, &Error{Op: "get route", Object: obj, Err: fmt.Errorf("source %s of another family: %w", g.From, unix.EINVAL)}
		}
		m.SrcLength = uint8(g.From.BitLen())
		m.Attributes.Src = nil
	}
	if g.Dev != "" {
		l, err := c.LinkByName(ctx, g.Dev)
		if err != nil {
			return Route{}, &Error{Op: "get route", Object: obj, Err: errors.Unwrap(err)}
		}
		m.Attributes.OutIface = uint32(l.Index)
	}
	var extra []byte
	if g.From.IsValid() {
		// RTA_SRC, which rtnetlink's encoder does not write.
		b := g.From.AsSlice()
		extra = make([]byte, 4+len(b))
		binary.NativeEndian.PutUint16(extra[0:2], uint16(len(extra)))
		binary.NativeEndian.PutUint16(extra[2:4], unix.RTA_SRC)
		copy(extra[4:], b)
	}
	msgs, err := c.request(ctx, "get route", obj, unix.RTM_GETROUTE, 0, m, extra)
	if err != nil {
		return Route{}, err
	}
	for _, nm := range msgs {
		if uint16(nm.Header.Type) != unix.RTM_NEWROUTE {
			continue
		}
		r, rm, err := decodeRoute(nm.Data)
		if err != nil {
			return Route{}, &Error{Op: "get route", Object: obj, Err: fmt.Errorf("decode: %w", err)}
		}
		if rm.Attributes.OutIface != 0 {
			if l, err := c.LinkByIndex(ctx, int(rm.Attributes.OutIface)); err == nil {
				r.Dev = l.Name
			}
		}
		return r, nil
	}
	return Route{}, &Error{Op: "get route", Object: obj, Err: unix.ENETUNREACH}
}

// routeMessage builds the request for r, choosing the defaults as ip does.
func (c *Conn) routeMessage(ctx context.Context, op string, r Route, del bool) (*rtnetlink.RouteMessage, error) {
	fam := r.family()
	if r.Dst.IsValid() {
		if err := checkPrefix(r.Dst); err != nil {
			return nil, &Error{Op: op, Object: r.String(), Err: err}
		}
		if (fam == unix.AF_INET6) != r.Dst.Addr().Is6() {
			return nil, &Error{Op: op, Object: r.String(), Err: fmt.Errorf("address family mismatch: %w", unix.EINVAL)}
		}
	}
	if r.Gateway.IsValid() && (fam == unix.AF_INET6) != r.Gateway.Is6() {
		return nil, &Error{Op: op, Object: r.String(), Err: fmt.Errorf("gateway family mismatch: %w", unix.EINVAL)}
	}
	unicast := r.Type == 0 || r.Type == unix.RTN_UNICAST
	if !del && unicast && !r.Gateway.IsValid() && r.Dev == "" {
		return nil, &Error{Op: op, Object: r.String(), Err: fmt.Errorf("needs a gateway or a device: %w", unix.EINVAL)}
	}
	m := &rtnetlink.RouteMessage{
		Family:   uint8(fam),
		Table:    unix.RT_TABLE_MAIN,
		Protocol: r.Protocol,
		Scope:    r.Scope,
		Type:     r.Type,
	}
	if m.Type == 0 {
		m.Type = unix.RTN_UNICAST
	}
	if r.Table != 0 {
		if r.Table < 256 {
			m.Table = uint8(r.Table)
		} else {
			m.Table = unix.RT_TABLE_UNSPEC
			m.Attributes.Table = r.Table
		}
	}
	if !del && m.Protocol == 0 {
		m.Protocol = unix.RTPROT_BOOT
	}
	if m.Scope == 0 {
		switch {
		case del:
			m.Scope = unix.RT_SCOPE_NOWHERE // match any scope
		case r.Type == unix.RTN_LOCAL || r.Type == unix.RTN_NAT:
			m.Scope = unix.RT_SCOPE_HOST // as ip does
		case r.Type == unix.RTN_BROADCAST || r.Type == unix.RTN_MULTICAST || r.Type == unix.RTN_ANYCAST:
			m.Scope = unix.RT_SCOPE_LINK
		case unicast && fam == unix.AF_INET && !r.Gateway.IsValid():
			m.Scope = unix.RT_SCOPE_LINK
		}
	}
	if r.Dst.IsValid() && r.Dst.Bits() > 0 {
		m.DstLength = uint8(r.Dst.Bits())
		m.Attributes.Dst = net.IP(r.Dst.Masked().Addr().AsSlice())
	}
	if r.Gateway.IsValid() {
		m.Attributes.Gateway = net.IP(r.Gateway.AsSlice())
	}
	if r.Src.IsValid() {
		m.Attributes.Src = net.IP(r.Src.AsSlice())
	}
	m.Attributes.Priority = r.Metric
	if r.Dev != "" {
		l, err := c.LinkByName(ctx, r.Dev)
		if err != nil {
			return nil, &Error{Op: op, Object: r.String(), Err: errors.Unwrap(err)}
		}
		m.Attributes.OutIface = uint32(l.Index)
	}
	return m, nil
}

// AddRoute adds r; an identical route fails with an error wrapping
// unix.EEXIST.
func (c *Conn) AddRoute(ctx context.Context, r Route) error {
	m, err := c.routeMessage(ctx, "add route", r, false)
	if err != nil {
		return err
	}
	return c.ack(ctx, "add route", r.String(), unix.RTM_NEWROUTE, netlink.Create|netlink.Excl, m, nil)
}

// ReplaceRoute adds r or replaces the route with the same destination,
// metric and table.
func (c *Conn) ReplaceRoute(ctx context.Context, r Route) error {
	m, err := c.routeMessage(ctx, "replace route", r, false)
	if err != nil {
		return err
	}
	return c.ack(ctx, "replace route", r.String(), unix.RTM_NEWROUTE, netlink.Create|netlink.Replace, m, nil)
}

// DelRoute deletes the first route matching r (destination, and the
// gateway, device and metric when given); no match fails with an error
// wrapping unix.ESRCH.
func (c *Conn) DelRoute(ctx context.Context, r Route) error {
	m, err := c.routeMessage(ctx, "delete route", r, true)
	if err != nil {
		return err
	}
	return c.ack(ctx, "delete route", r.String(), unix.RTM_DELROUTE, 0, m, nil)
}
