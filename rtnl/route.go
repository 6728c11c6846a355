package rtnl

import (
	"context"
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
	return r, &m, nil
}

// Routes lists the unicast routes of the main table, IPv4 then IPv6, in
// the kernel's order, with Dev filled in.
func (c *Conn) Routes(ctx context.Context) ([]Route, error) {
	names, err := c.linkNames(ctx)
	if err != nil {
		return nil, err
	}
	msgs, err := c.dump(ctx, "list routes", unix.RTM_GETROUTE, unix.RTM_NEWROUTE, &rtnetlink.RouteMessage{})
	if err != nil {
		return nil, err
	}
	var routes []Route
	for _, nm := range msgs {
		r, m, err := decodeRoute(nm.Data)
		if err != nil {
			return nil, &Error{Op: "list routes", Err: fmt.Errorf("decode: %w", err)}
		}
		if r.Table != unix.RT_TABLE_MAIN || m.Flags&unix.RTM_F_CLONED != 0 {
			continue
		}
		if m.Attributes.OutIface != 0 {
			r.Dev = names[int(m.Attributes.OutIface)]
		}
		routes = append(routes, r)
	}
	return routes, nil
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
	if !del && !r.Gateway.IsValid() && r.Dev == "" {
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
		case fam == unix.AF_INET && !r.Gateway.IsValid():
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
