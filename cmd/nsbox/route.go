package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/rtnl"
)

const routeUsage = `route list|show [-4|-6] [SELECTOR]  routes, like ip route (IPv4 unless -6 or table all)
    SELECTOR: [to|exact] PREFIX|default, table ID|all, proto P, scope S, type T, dev DEV, via GW
route get ADDR [from ADDR] [dev DEV]  the route the kernel picks for ADDR (ip route get)
route add [TYPE] PREFIX|default [via GW] [dev DEV] [metric N] [src IP] [table ID] [proto P] [scope S]
    TYPE: unicast (default), blackhole, unreachable, prohibit, throw, local, ...
route replace ...              add, or replace the route with the same destination and metric
route del [TYPE] PREFIX|default [via GW] [dev DEV] [metric N] [table ID]
route flush SELECTOR           delete every route SELECTOR picks (it needs one, as ip)`

func routeCommand() *command {
	return &command{name: "route", quick: true, aliases: []string{"r"}, usage: routeUsage, run: runRoute}
}

func runRoute(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return routeShow(ctx, e, nil)
	}
	sub, rest := args[0], args[1:]
	if sub == "ls" {
		sub = "list"
	}
	// ip route's order: "a" is add, "r" replace, "d" delete, "s" show.
	switch full := subcommand(sub, "add", "replace", "delete", "list", "show", "lst", "get", "flush", "help"); full {
	case "list", "show", "lst":
		return routeShow(ctx, e, rest)
	case "get":
		return routeGet(ctx, e, rest)
	case "flush":
		return routeFlush(ctx, e, rest)
	case "add", "replace", "delete":
		if sub == "del" {
			full = sub // the word the user typed, in messages
		}
		return routeChange(ctx, e, full, rest)
	case "help":
		fmt.Fprintln(e.stdout, routeUsage)
		return nil
	}
	return usagef("route: unknown subcommand %q (list, show, get, add, replace, del, flush)", sub)
}

// parseRoute parses `route add|del` arguments into a Route.
func parseRoute(sub string, args []string) (rtnl.Route, error) {
	cmd := "route " + sub
	var r rtnl.Route
	haveDst := false
	for len(args) > 0 {
		w := args[0]
		switch w {
		case "table", "proto", "protocol", "scope":
			if len(args) < 2 {
				return r, usagef("%s: %s needs a value", cmd, w)
			}
			v := args[1]
			args = args[2:]
			var err error
			switch w {
			case "table":
				if r.Table, err = parseTable(v); err != nil || r.Table == 0 {
					return r, usagef("%s: invalid table %q (main, local, default or 1-4294967295)", cmd, v)
				}
			case "scope":
				if r.Scope, err = parseScope(v); err != nil {
					return r, usagef("%s: invalid scope %q (global, site, link, host, nowhere or 0-255)", cmd, v)
				}
			default:
				if r.Protocol, err = parseProto(v); err != nil {
					return r, usagef("%s: invalid protocol %q (boot, static, kernel, dhcp, ... or 0-255)", cmd, v)
				}
			}
		case "via", "dev", "metric", "src", "to":
			if len(args) < 2 {
				return r, usagef("%s: %s needs a value", cmd, w)
			}
			v := args[1]
			args = args[2:]
			switch w {
			case "via":
				a, err := netip.ParseAddr(v)
				if err != nil || a.Zone() != "" || a.Is4In6() {
					return r, usagef("%s: invalid gateway %q", cmd, v)
				}
				r.Gateway = a
			case "dev":
				if err := checkDev(cmd, v); err != nil {
					return r, err
				}
				r.Dev = v
			case "metric":
				n, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return r, usagef("%s: invalid metric %q (0-4294967295)", cmd, v)
				}
				r.Metric = uint32(n)
			case "src":
				a, err := netip.ParseAddr(v)
				if err != nil || a.Zone() != "" {
					return r, usagef("%s: invalid source %q", cmd, v)
				}
				r.Src = a
			case "to":
				if haveDst {
					return r, usagef("%s: more than one destination", cmd)
				}
				p, err := parseDst(v)
				if err != nil {
					return r, usagef("%s: %v", cmd, err)
				}
				r.Dst, haveDst = p, true
			}
		default:
			if haveDst {
				return r, usagef("%s: unexpected argument %q", cmd, w)
			}
			if t, ok := routeTypeByName(w); ok && len(args) > 1 {
				// ip's TYPE PREFIX: blackhole 10.0.0.0/8, unreachable ...
				r.Type = t
				args = args[1:]
				w = args[0]
			}
			p, err := parseDst(w)
			if err != nil {
				return r, usagef("%s: %v", cmd, err)
			}
			r.Dst, haveDst = p, true
			args = args[1:]
		}
	}
	if !haveDst {
		return r, usagef("%s: missing destination (PREFIX or default)", cmd)
	}
	if r.Dst.IsValid() && r.Dst.Bits() == 0 {
		r.Dst = netip.Prefix{} // 0.0.0.0/0 is default
	}
	v6 := (r.Dst.IsValid() && r.Dst.Addr().Is6()) || (r.Gateway.IsValid() && r.Gateway.Is6())
	if r.Dst.IsValid() && r.Gateway.IsValid() && r.Dst.Addr().Is6() != r.Gateway.Is6() {
		return r, usagef("%s: destination %s and gateway %s are of different families", cmd, r.Dst, r.Gateway)
	}
	if r.Src.IsValid() && r.Src.Is6() != v6 {
		return r, usagef("%s: source %s is of another family", cmd, r.Src)
	}
	if v6 {
		r.Family = unix.AF_INET6
	}
	if sub != "del" && sub != "delete" && !r.Gateway.IsValid() && r.Dev == "" && (r.Type == 0 || r.Type == unix.RTN_UNICAST) {
		return r, usagef("%s: needs \"via GW\" or \"dev DEV\"", cmd)
	}
	return r, nil
}

func routeChange(ctx context.Context, e *env, sub string, args []string) error {
	return applyChange(ctx, e, sub, args, parseRoute, (*rtnl.Conn).AddRoute, (*rtnl.Conn).ReplaceRoute, (*rtnl.Conn).DelRoute)
}

// routeJSON is one route as ip -j route prints it.
type routeJSON struct {
	Type     string    `json:"type,omitempty"`
	Dst      string    `json:"dst"`
	From     string    `json:"from,omitempty"`
	Gateway  string    `json:"gateway,omitempty"`
	Dev      string    `json:"dev,omitempty"`
	Table    string    `json:"table,omitempty"`
	Protocol string    `json:"protocol,omitempty"`
	Scope    string    `json:"scope,omitempty"`
	Prefsrc  string    `json:"prefsrc,omitempty"`
	Metric   *uint32   `json:"metric,omitempty"`
	Flags    []string  `json:"flags"`
	UID      *uint32   `json:"uid,omitempty"`
	Cache    *[]string `json:"cache,omitempty"`
	Pref     string    `json:"pref,omitempty"`

	cache bool // route get of IPv4: the cache line, even empty
}

func routeToJSON(r rtnl.Route) routeJSON {
	j := routeJSON{Dst: "default", Flags: []string{}}
	if r.Type != 0 && r.Type != unix.RTN_UNICAST {
		j.Type = routeTypeName(r.Type)
	}
	if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		j.Table = tableName(r.Table)
	}
	if r.Dst.IsValid() && r.Dst.Bits() > 0 {
		if r.Dst.Bits() == r.Dst.Addr().BitLen() {
			j.Dst = r.Dst.Addr().String()
		} else {
			j.Dst = r.Dst.String()
		}
	}
	if r.Gateway.IsValid() {
		j.Gateway = r.Gateway.String()
	}
	j.Dev = r.Dev
	if r.Protocol != unix.RTPROT_BOOT {
		j.Protocol = protoName(r.Protocol)
	}
	if r.Scope != unix.RT_SCOPE_UNIVERSE {
		j.Scope = scopeName(r.Scope)
	}
	if r.Src.IsValid() {
		j.Prefsrc = r.Src.String()
	}
	if r.Metric != 0 || r.HasMetric {
		m := r.Metric
		j.Metric = &m
	}
	if r.Flags&unix.RTNH_F_DEAD != 0 {
		j.Flags = append(j.Flags, "dead")
	}
	if r.Flags&unix.RTNH_F_ONLINK != 0 {
		j.Flags = append(j.Flags, "onlink")
	}
	if r.Flags&unix.RTNH_F_LINKDOWN != 0 {
		j.Flags = append(j.Flags, "linkdown")
	}
	if r.Family == unix.AF_INET6 {
		j.Pref = "medium"
		if r.Pref != 0 {
			switch r.Pref {
			case 1:
				j.Pref = "high"
			case 3:
				j.Pref = "low"
			}
		}
	}
	return j
}

func (j routeJSON) text() string {
	// ip's format (iproute.c print_route): every field ends with a
	// space but pref.
	var b strings.Builder
	if j.Type != "" {
		b.WriteString(j.Type + " ")
	}
	b.WriteString(j.Dst + " ")
	if j.From != "" {
		b.WriteString("from " + j.From + " ")
	}
	if j.Gateway != "" {
		b.WriteString("via " + j.Gateway + " ")
	}
	if j.Dev != "" {
		b.WriteString("dev " + j.Dev + " ")
	}
	if j.Table != "" {
		b.WriteString("table " + j.Table + " ")
	}
	if j.Protocol != "" {
		b.WriteString("proto " + j.Protocol + " ")
	}
	if j.Scope != "" {
		b.WriteString("scope " + j.Scope + " ")
	}
	if j.Prefsrc != "" {
		b.WriteString("src " + j.Prefsrc + " ")
	}
	if j.Metric != nil {
		fmt.Fprintf(&b, "metric %d ", *j.Metric)
	}
	for _, f := range j.Flags {
		b.WriteString(f + " ")
	}
	if j.UID != nil {
		fmt.Fprintf(&b, "uid %d ", *j.UID)
	}
	if j.cache {
		b.WriteString("\n    cache ")
		if j.Cache != nil && len(*j.Cache) > 0 {
			b.WriteString("<" + strings.Join(*j.Cache, ",") + "> ")
		}
	}
	if j.Pref != "" {
		b.WriteString("pref " + j.Pref)
	}
	return b.String()
}

// routeSelector is a parsed `route show|flush` selector (ip route's
// filter): which routes, and which fields the output then leaves out
// (those the selector fixed).
type routeSelector struct {
	q                 rtnl.RouteQuery
	dst               *netip.Prefix // exact destination
	dev               string
	via               netip.Addr
	proto, scope, typ *uint8
	tableGiven        bool
	family            int
	anySelectors      bool
}

func parseRouteSelector(cmd string, family int, args []string) (routeSelector, error) {
	sel := routeSelector{family: family}
	u8 := func(v uint8) *uint8 { return &v }
	for len(args) > 0 {
		w := args[0]
		if w == "-4" || w == "inet" || w == "-6" || w == "inet6" {
			sel.family = unix.AF_INET
			if w == "-6" || w == "inet6" {
				sel.family = unix.AF_INET6
			}
			args = args[1:]
			continue
		}
		sel.anySelectors = true
		switch w {
		case "table", "tab", "proto", "protocol", "scope", "type", "dev", "oif", "via", "to", "exact":
			if len(args) < 2 {
				return sel, usagef("%s: %s needs a value", cmd, w)
			}
			v := args[1]
			args = args[2:]
			switch w {
			case "table", "tab":
				if v == "all" {
					sel.q.AllTables = true
				} else {
					t, err := parseTable(v)
					if err != nil {
						return sel, usagef("%s: invalid table %q (main, local, default, all or a number)", cmd, v)
					}
					sel.q.Table = t
				}
				sel.tableGiven = true
			case "proto", "protocol":
				p, err := parseProto(v)
				if err != nil {
					return sel, usagef("%s: invalid protocol %q", cmd, v)
				}
				sel.proto = u8(p)
			case "scope":
				sc, err := parseScope(v)
				if err != nil {
					return sel, usagef("%s: invalid scope %q", cmd, v)
				}
				sel.scope = u8(sc)
			case "type":
				t, ok := routeTypeByName(v)
				if !ok {
					return sel, usagef("%s: invalid route type %q", cmd, v)
				}
				sel.typ = u8(t)
			case "dev", "oif":
				if err := checkDev(cmd, v); err != nil {
					return sel, err
				}
				sel.dev = v
			case "via":
				a, err := netip.ParseAddr(v)
				if err != nil {
					return sel, usagef("%s: invalid gateway %q", cmd, v)
				}
				sel.via = a
			default: // to, exact
				if err := sel.setDst(cmd, v); err != nil {
					return sel, err
				}
			}
		default:
			if err := sel.setDst(cmd, w); err != nil {
				return sel, err
			}
			args = args[1:]
		}
	}
	if sel.family == 0 && !sel.q.AllTables {
		sel.family = unix.AF_INET // ip lists IPv4 unless -6 or table all
	}
	sel.q.Family = sel.family
	return sel, nil
}

func (sel *routeSelector) setDst(cmd, v string) error {
	if sel.dst != nil {
		return usagef("%s: more than one destination (%q)", cmd, v)
	}
	p, err := parseDst(v)
	if err != nil {
		return usagef("%s: %v", cmd, err)
	}
	if v == "default" || v == "all" {
		if v == "all" {
			return nil // the whole table
		}
		p = netip.Prefix{}
	} else if sel.family == 0 {
		sel.family = unix.AF_INET
		if p.Addr().Is6() {
			sel.family = unix.AF_INET6
		}
	}
	sel.dst = &p
	return nil
}

// match reports whether r passes the selector.
func (sel *routeSelector) match(r rtnl.Route) bool {
	if sel.dst != nil {
		d := r.Dst
		if d.IsValid() && d.Bits() == 0 {
			d = netip.Prefix{}
		}
		if d != *sel.dst && !(!sel.dst.IsValid() && !d.IsValid()) {
			return false
		}
	}
	switch {
	case sel.dev != "" && r.Dev != sel.dev,
		sel.via.IsValid() && r.Gateway != sel.via,
		sel.proto != nil && r.Protocol != *sel.proto,
		sel.scope != nil && r.Scope != *sel.scope,
		sel.typ != nil && r.Type != *sel.typ:
		return false
	}
	return true
}

// view renders r for ip route show under the selector: the fields it
// fixed are left out, as ip does; -d shows every field.
func (sel *routeSelector) view(r rtnl.Route, details bool) routeJSON {
	j := routeToJSON(r)
	if details {
		j.Type = routeTypeName(r.Type)
		j.Table = tableName(r.Table)
		j.Protocol = protoName(r.Protocol)
		j.Scope = scopeName(r.Scope)
	}
	if !sel.q.AllTables {
		j.Table = "" // ip's filter.tb: one table, not printed
	}
	if sel.dev != "" {
		j.Dev = ""
	}
	if sel.via.IsValid() {
		j.Gateway = ""
	}
	if sel.proto != nil {
		j.Protocol = ""
	}
	if sel.scope != nil {
		j.Scope = ""
	}
	return j
}

func routeShow(ctx context.Context, e *env, args []string) error {
	sel, err := parseRouteSelector("route show", e.family, args)
	if err != nil {
		return err
	}
	c, err := e.rtnlConn()
	if err != nil {
		return err
	}
	routes, err := c.QueryRoutes(ctx, sel.q)
	if err != nil {
		return err
	}
	out := []routeJSON{}
	for _, r := range routes {
		if sel.match(r) {
			out = append(out, sel.view(r, e.details > 0))
		}
	}
	return printRows(e, out)
}

// routeFlush deletes the routes a selector picks (ip route flush): it
// needs one, as ip does.
func routeFlush(ctx context.Context, e *env, args []string) error {
	sel, err := parseRouteSelector("route flush", e.family, args)
	if err != nil {
		return err
	}
	if !sel.anySelectors {
		return usagef("route flush: needs a selector (dev DEV, table T, proto P, PREFIX, ...), as ip route flush")
	}
	c, err := e.rtnlConn()
	if err != nil {
		return err
	}
	n, err := c.FlushRoutes(ctx, sel.q, sel.match)
	if err != nil {
		return fmt.Errorf("route flush: %w", err)
	}
	e.printFlushed(n)
	return nil
}

// routeGet asks the kernel for the route to an address (ip route get ADDR
// [from ADDR] [dev DEV]) and prints it as ip does.
func routeGet(ctx context.Context, e *env, args []string) error {
	var g rtnl.RouteGet
	for len(args) > 0 {
		w := args[0]
		switch w {
		case "from", "dev", "oif", "to":
			if len(args) < 2 {
				return usagef("route get: %s needs a value", w)
			}
			v := args[1]
			args = args[2:]
			switch w {
			case "from":
				a, err := parseHost(v)
				if err != nil {
					return usagef("route get: invalid source %q", v)
				}
				g.From = a
			case "to":
				a, err := parseHost(v)
				if err != nil {
					return usagef("route get: invalid address %q", v)
				}
				g.Dst = a
			default:
				if err := checkDev("route get", v); err != nil {
					return err
				}
				g.Dev = v
			}
		default:
			if g.Dst.IsValid() {
				return usagef("route get: unexpected argument %q", w)
			}
			a, err := parseHost(w)
			if err != nil {
				return usagef("route get: invalid address %q", w)
			}
			g.Dst = a
			args = args[1:]
		}
	}
	if !g.Dst.IsValid() {
		return usagef("route get: missing address (route get ADDR [from ADDR] [dev DEV])")
	}
	c, err := e.rtnlConn()
	if err != nil {
		return err
	}
	r, err := c.GetRoute(ctx, g)
	if err != nil {
		return fmt.Errorf("route get %s: %w", g.Dst, err)
	}
	j := routeToJSON(r)
	j.Dst = g.Dst.String()
	if r.From.IsValid() {
		if r.From.Bits() == r.From.Addr().BitLen() {
			j.From = r.From.Addr().String()
		} else {
			j.From = r.From.String()
		}
	}
	j.UID = r.UID
	if r.Flags&unix.RTM_F_CLONED != 0 {
		// A cache entry: no proto or scope; IPv4 adds its cache flags.
		j.Protocol, j.Scope = "", ""
		if r.Family == unix.AF_INET {
			j.cache = true
			names := cacheFlagNames(r.Flags)
			if names == nil {
				names = []string{}
			}
			j.Cache = &names
		}
	}
	if e.json {
		return e.printJSON([]routeJSON{j})
	}
	_, err = io.WriteString(e.stdout, e.record(j.text()+"\n"))
	return err
}

// parseHost parses a bare address (no prefix length).
func parseHost(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("invalid address %q", s)
	}
	return a, nil
}

// cacheFlagNames renders RTCF_* flags in ip's order and words.
func cacheFlagNames(flags uint32) []string {
	var out []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{
		{0x80000000, "local"}, {0x40000000, "reject"}, {0x20000000, "mc"}, {0x10000000, "brd"},
		{0x08000000, "dst-nat"}, {0x00800000, "src-nat"}, {0x00400000, "masq"}, {0x00020000, "dst-direct"},
		{0x04000000, "src-direct"}, {0x00040000, "redirected"}, {0x01000000, "redirect"},
		{0x00200000, "fastroute"}, {0x00010000, "notify"}, {0x00080000, "proxy"},
	} {
		if flags&f.bit != 0 {
			out = append(out, f.name)
		}
	}
	return out
}

// routeTypeByName reads an RTN_* name.
func routeTypeByName(w string) (uint8, bool) {
	for i, n := range routeTypes {
		if n == w && i != 0 {
			return uint8(i), true
		}
	}
	return 0, false
}

// parseTable reads a table name or number.
func parseTable(v string) (uint32, error) {
	switch v {
	case "main":
		return unix.RT_TABLE_MAIN, nil
	case "local":
		return unix.RT_TABLE_LOCAL, nil
	case "default":
		return unix.RT_TABLE_DEFAULT, nil
	}
	n, err := strconv.ParseUint(v, 0, 32)
	return uint32(n), err
}

// parseScope reads a scope name (as ip: global, universe, site, link,
// host, nowhere) or number.
func parseScope(v string) (uint8, error) {
	switch v {
	case "global", "universe":
		return unix.RT_SCOPE_UNIVERSE, nil
	case "site":
		return unix.RT_SCOPE_SITE, nil
	case "link":
		return unix.RT_SCOPE_LINK, nil
	case "host":
		return unix.RT_SCOPE_HOST, nil
	case "nowhere":
		return unix.RT_SCOPE_NOWHERE, nil
	}
	n, err := strconv.ParseUint(v, 0, 8)
	return uint8(n), err
}

// parseProto reads a routing protocol name (/etc/iproute2/rt_protos) or
// number.
func parseProto(v string) (uint8, error) {
	for p := 0; p < 256; p++ {
		if protoName(uint8(p)) == v && v != strconv.Itoa(p) {
			return uint8(p), nil
		}
	}
	n, err := strconv.ParseUint(v, 0, 8)
	return uint8(n), err
}

// routeTypes are the RTN_* names, as ip prints and reads them.
var routeTypes = []string{"unspec", "unicast", "local", "broadcast", "anycast", "multicast",
	"blackhole", "unreachable", "prohibit", "throw", "nat", "xresolve"}

func routeTypeName(t uint8) string {
	if int(t) < len(routeTypes) {
		return routeTypes[t]
	}
	return strconv.Itoa(int(t))
}

// tableName is a table's name as ip prints it (/etc/iproute2/rt_tables).
func tableName(t uint32) string {
	switch t {
	case unix.RT_TABLE_MAIN:
		return "main"
	case unix.RT_TABLE_LOCAL:
		return "local"
	case unix.RT_TABLE_DEFAULT:
		return "default"
	}
	return strconv.FormatUint(uint64(t), 10)
}
