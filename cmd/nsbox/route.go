package main

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/rtnl"
)

const routeUsage = `route list|show [-4|-6]        routes of the main table (IPv4 unless -6), like ip route
route add PREFIX|default [via GW] [dev DEV] [metric N] [src IP]
route replace ...              add, or replace the route with the same destination and metric
route del PREFIX|default [via GW] [dev DEV] [metric N]`

func routeCommand() *command {
	return &command{name: "route", aliases: []string{"r"}, usage: routeUsage, run: runRoute}
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
	switch full := subcommand(sub, "add", "replace", "delete", "list", "show", "lst", "help"); full {
	case "list", "show", "lst":
		return routeShow(ctx, e, rest)
	case "add", "replace", "delete":
		if sub == "del" {
			full = sub // the word the user typed, in messages
		}
		return routeChange(ctx, e, full, rest)
	case "help":
		fmt.Fprintln(e.stdout, routeUsage)
		return nil
	}
	return usagef("route: unknown subcommand %q (list, show, add, replace, del)", sub)
}

// parseRoute parses `route add|del` arguments into a Route.
func parseRoute(sub string, args []string) (rtnl.Route, error) {
	cmd := "route " + sub
	var r rtnl.Route
	haveDst := false
	for len(args) > 0 {
		w := args[0]
		switch w {
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
	if sub != "del" && sub != "delete" && !r.Gateway.IsValid() && r.Dev == "" {
		return r, usagef("%s: needs \"via GW\" or \"dev DEV\"", cmd)
	}
	return r, nil
}

func routeChange(ctx context.Context, e *env, sub string, args []string) error {
	return applyChange(ctx, e, sub, args, parseRoute, (*rtnl.Conn).AddRoute, (*rtnl.Conn).ReplaceRoute, (*rtnl.Conn).DelRoute)
}

// routeJSON is one route as ip -j route prints it.
type routeJSON struct {
	Type     string   `json:"type,omitempty"`
	Dst      string   `json:"dst"`
	Gateway  string   `json:"gateway,omitempty"`
	Dev      string   `json:"dev,omitempty"`
	Table    string   `json:"table,omitempty"`
	Protocol string   `json:"protocol,omitempty"`
	Scope    string   `json:"scope,omitempty"`
	Prefsrc  string   `json:"prefsrc,omitempty"`
	Metric   uint32   `json:"metric,omitempty"`
	Flags    []string `json:"flags"`
	Pref     string   `json:"pref,omitempty"`
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
	j.Metric = r.Metric
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
	if j.Metric != 0 {
		fmt.Fprintf(&b, "metric %d ", j.Metric)
	}
	for _, f := range j.Flags {
		b.WriteString(f + " ")
	}
	if j.Pref != "" {
		b.WriteString("pref " + j.Pref)
	}
	return b.String()
}

func routeShow(ctx context.Context, e *env, args []string) error {
	fam := unix.AF_INET
	if e.family == unix.AF_INET6 {
		fam = unix.AF_INET6
	}
	for _, a := range args {
		switch a {
		case "-4", "inet":
			fam = unix.AF_INET
		case "-6", "inet6":
			fam = unix.AF_INET6
		default:
			return usagef("route show: unexpected argument %q (-4 or -6)", a)
		}
	}
	c, err := e.rtnlConn()
	if err != nil {
		return err
	}
	routes, err := c.Routes(ctx)
	if err != nil {
		return err
	}
	out := []routeJSON{}
	for _, r := range routes {
		if r.Family == fam {
			out = append(out, routeToJSON(r))
		}
	}
	if e.json {
		return e.printJSON(out)
	}
	for _, j := range out {
		fmt.Fprintln(e.stdout, j.text())
	}
	return nil
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
