package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/rtnl"
)

const neighUsage = `neigh list|show [dev DEV] [nud STATE|all]  ARP and NDP entries, like ip neigh
neigh add|replace ADDR lladdr MAC dev DEV [nud permanent|noarp|stale|reachable] [router]
neigh del ADDR dev DEV
neigh flush dev DEV [nud STATE|all]         delete the entries (not permanent or noarp ones
                                            unless nud says so), as ip neigh flush`

func neighCommand() *command {
	return &command{name: "neigh", quick: true, aliases: []string{"neighbor", "neighbour"}, usage: neighUsage, run: runNeigh}
}

func runNeigh(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return neighShow(ctx, e, nil, false)
	}
	sub, rest := args[0], args[1:]
	if sub == "ls" {
		sub = "list"
	}
	// ip neigh's order: "d" is delete, "s" show, "f" flush.
	switch full := subcommand(sub, "add", "replace", "delete", "show", "lst", "list", "flush", "help"); full {
	case "show", "lst", "list":
		return neighShow(ctx, e, rest, false)
	case "flush":
		return neighShow(ctx, e, rest, true)
	case "add", "replace", "delete":
		if sub == "del" {
			full = sub
		}
		return neighChange(ctx, e, full, rest)
	case "help":
		fmt.Fprintln(e.stdout, neighUsage)
		return nil
	}
	return usagef("neigh: unknown subcommand %q (list, show, add, replace, del, flush)", sub)
}

// nudStates are the NUD_* names, in ip's print order.
var nudStates = []struct {
	bit  uint16
	name string
}{
	{unix.NUD_INCOMPLETE, "INCOMPLETE"}, {unix.NUD_REACHABLE, "REACHABLE"}, {unix.NUD_STALE, "STALE"},
	{unix.NUD_DELAY, "DELAY"}, {unix.NUD_PROBE, "PROBE"}, {unix.NUD_FAILED, "FAILED"},
	{unix.NUD_NOARP, "NOARP"}, {unix.NUD_PERMANENT, "PERMANENT"},
}

// parseNUD reads a nud word as ip does (any case; "none" is 0).
func parseNUD(v string) (uint16, bool) {
	if strings.EqualFold(v, "none") {
		return unix.NUD_NONE, true
	}
	for _, s := range nudStates {
		if strings.EqualFold(v, s.name) {
			return s.bit, true
		}
	}
	return 0, false
}

func parseNeighChange(sub string, args []string) (rtnl.NeighSpec, error) {
	cmd := "neigh " + sub
	var s rtnl.NeighSpec
	for len(args) > 0 {
		w := args[0]
		switch w {
		case "router":
			s.Router = true
			args = args[1:]
			continue
		case "lladdr", "dev", "nud", "to":
			if len(args) < 2 {
				return s, usagef("%s: %s needs a value", cmd, w)
			}
			v := args[1]
			args = args[2:]
			switch w {
			case "lladdr":
				mac, err := parseMAC(v)
				if err != nil {
					return s, usagef("%s: %v", cmd, err)
				}
				s.LLAddr = mac
			case "dev":
				if err := checkDev(cmd, v); err != nil {
					return s, err
				}
				s.Dev = v
			case "nud":
				st, ok := parseNUD(v)
				if !ok {
					return s, usagef("%s: invalid nud state %q (permanent, noarp, reachable, stale, ...)", cmd, v)
				}
				s.State = st
			default:
				if err := setNeighDst(cmd, &s, v); err != nil {
					return s, err
				}
			}
		default:
			if err := setNeighDst(cmd, &s, w); err != nil {
				return s, err
			}
			args = args[1:]
		}
	}
	if !s.Dst.IsValid() {
		return s, usagef("%s: missing address", cmd)
	}
	if s.Dev == "" {
		return s, usagef("%s %s: missing \"dev DEV\"", cmd, s.Dst)
	}
	if sub != "del" && sub != "delete" && s.LLAddr == nil && (s.State == 0 || s.State == unix.NUD_PERMANENT) {
		// ip sends such a request and the kernel answers EINVAL; say why.
		return s, usagef("%s %s: needs \"lladdr MAC\"", cmd, s.Dst)
	}
	return s, nil
}

func setNeighDst(cmd string, s *rtnl.NeighSpec, v string) error {
	if s.Dst.IsValid() {
		return usagef("%s: unexpected argument %q", cmd, v)
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return usagef("%s: invalid address %q", cmd, v)
	}
	s.Dst = a
	return nil
}

func neighChange(ctx context.Context, e *env, sub string, args []string) error {
	return applyChange(ctx, e, sub, args, parseNeighChange, (*rtnl.Conn).AddNeigh, (*rtnl.Conn).ReplaceNeigh, (*rtnl.Conn).DelNeigh)
}

// neighJSON is one entry as ip -j neigh prints it.
// Its MarshalJSON writes ip's keys in ip's order.
type neighJSON struct {
	Dst, Dev, Lladdr string
	State            []string
	Protocol         string
	router, proxy    bool // ip prints these as "router": null
	// ip -s: the cache info in seconds (nil: not asked for, or the kernel
	// sent none) and the probes (nil: likewise).
	cache  *rtnl.NeighCache
	probes *uint32
}

// userHZ is the kernel's USER_HZ, the unit of NDA_CACHEINFO's ages:
// sysconf(_SC_CLK_TCK), which ip divides by and which Linux fixes at 100.
const userHZ = 100

// MarshalJSON writes the null-valued flags as ip does ("router":null).
func (j neighJSON) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteString("{" + quoteIP("dst") + ":" + quoteIP(j.Dst))
	if j.Dev != "" {
		b.WriteString("," + quoteIP("dev") + ":" + quoteIP(j.Dev))
	}
	if j.Lladdr != "" {
		b.WriteString("," + quoteIP("lladdr") + ":" + quoteIP(j.Lladdr))
	}
	if j.router {
		b.WriteString(`,"router":null`)
	}
	if j.proxy {
		b.WriteString(`,"proxy":null`)
	}
	if c := j.cache; c != nil {
		if c.Refcnt != 0 {
			fmt.Fprintf(&b, `,"refcnt":%d`, c.Refcnt)
		}
		fmt.Fprintf(&b, `,"used":%d,"confirmed":%d,"updated":%d`, c.Used/userHZ, c.Confirmed/userHZ, c.Updated/userHZ)
	}
	if j.probes != nil {
		fmt.Fprintf(&b, `,"probes":%d`, *j.probes)
	}
	if j.State != nil {
		b.WriteString(`,"state":[`)
		for i, s := range j.State {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(quoteIP(s))
		}
		b.WriteString("]")
	}
	if j.Protocol != "" {
		b.WriteString("," + quoteIP("protocol") + ":" + quoteIP(j.Protocol))
	}
	b.WriteString("}")
	return []byte(b.String()), nil
}

// neighToJSON describes n as ip neigh does: the device unless the
// selector named it, the cache info and probes with -s (stats).
func neighToJSON(n rtnl.Neigh, withDev, stats bool) neighJSON {
	j := neighJSON{Dst: n.Dst.String(), router: n.Flags&unix.NTF_ROUTER != 0, proxy: n.Flags&unix.NTF_PROXY != 0}
	if stats {
		j.cache, j.probes = n.Cache, n.Probes
	}
	if withDev {
		j.Dev = n.Dev
	}
	if n.LLAddr != nil {
		j.Lladdr = n.LLAddr.String()
	}
	for _, s := range nudStates {
		if n.State&s.bit != 0 {
			j.State = append(j.State, s.name)
		}
	}
	if n.Protocol != 0 {
		j.Protocol = protoName(n.Protocol)
	}
	return j
}

func (j neighJSON) text() string {
	var b strings.Builder
	b.WriteString(j.Dst + " ")
	if j.Dev != "" {
		b.WriteString("dev " + j.Dev + " ")
	}
	if j.Lladdr != "" {
		b.WriteString("lladdr " + j.Lladdr + " ")
	}
	if j.router {
		b.WriteString("router ")
	}
	if j.proxy {
		b.WriteString("proxy ")
	}
	// ip -s (iproute2 6.1's print_cacheinfo and its "probes %u " with no
	// space before it: "used 1/61/1probes 0" is ip's spelling).
	if c := j.cache; c != nil {
		if c.Refcnt != 0 {
			fmt.Fprintf(&b, " ref %d", c.Refcnt)
		}
		fmt.Fprintf(&b, " used %d/%d/%d", c.Used/userHZ, c.Confirmed/userHZ, c.Updated/userHZ)
	}
	if j.probes != nil {
		fmt.Fprintf(&b, "probes %d ", *j.probes)
	}
	for _, s := range j.State {
		b.WriteString(s + " ")
	}
	if j.Protocol != "" {
		b.WriteString("proto " + j.Protocol + " ")
	}
	return b.String()
}

// neighShow lists (or, with flush, deletes) the entries the selector
// picks, with ip neigh's default states: every state but NOARP for show,
// every state but PERMANENT and NOARP for flush; "nud" words replace them.
func neighShow(ctx context.Context, e *env, args []string, flush bool) error {
	cmd := "neigh show"
	if flush {
		cmd = "neigh flush"
	}
	q := rtnl.NeighQuery{Family: e.family}
	if q.Family == unix.AF_PACKET {
		q.Family = 0
	}
	states := uint32(0xFF &^ unix.NUD_NOARP)
	if flush {
		states = ^uint32(unix.NUD_PERMANENT | unix.NUD_NOARP)
	}
	stateGiven := false
	var to *netip.Prefix
	for len(args) > 0 {
		w := args[0]
		switch w {
		case "dev", "nud", "to":
			if len(args) < 2 {
				return usagef("%s: %s needs a value", cmd, w)
			}
			v := args[1]
			args = args[2:]
			switch w {
			case "dev":
				if err := checkDev(cmd, v); err != nil {
					return err
				}
				q.Dev = v
			case "nud":
				if !stateGiven {
					stateGiven, states = true, 0
				}
				if v == "all" {
					states = ^uint32(0)
					if flush {
						states &^= unix.NUD_NOARP
					}
					continue
				}
				st, ok := parseNUD(v)
				if !ok {
					return usagef("%s: invalid nud state %q", cmd, v)
				}
				states |= uint32(st)
				if st == unix.NUD_NONE {
					states |= 0x100 // ip's marker for entries with no state
				}
			default:
				p, err := parsePrefix(v)
				if err != nil {
					return usagef("%s: %v", cmd, err)
				}
				to = &p
			}
		default:
			p, err := parsePrefix(w)
			if err != nil {
				return usagef("%s: unexpected argument %q", cmd, w)
			}
			to = &p
			args = args[1:]
		}
	}
	if flush && q.Dev == "" && to == nil {
		return usagef("neigh flush: needs \"dev DEV\" or an address (as ip: Flush requires arguments)")
	}
	match := func(n rtnl.Neigh) bool {
		if to != nil && !to.Masked().Contains(n.Dst) {
			return false
		}
		// ip's filter: the state matches, or the entry is a proxy
		// (NTF_PROXY) or learned from outside (NTF_EXT_LEARNED).
		return states&uint32(n.State) != 0 || n.Flags&(unix.NTF_PROXY|unix.NTF_EXT_LEARNED) != 0 ||
			(n.State == 0 && states&0x100 != 0)
	}
	c, err := e.rtnlConn()
	if err != nil {
		return err
	}
	if flush {
		n, err := c.FlushNeighs(ctx, q, match)
		if err != nil {
			return fmt.Errorf("neigh flush: %w", err)
		}
		e.printFlushed(n)
		return nil
	}
	ns, err := c.Neighs(ctx, q)
	if err != nil {
		return err
	}
	out := []neighJSON{}
	for _, n := range ns {
		if match(n) {
			out = append(out, neighToJSON(n, q.Dev == "", e.stats > 0))
		}
	}
	if e.brief {
		return e.neighBrief(out)
	}
	return printRows(e, out)
}

// neighBriefJSON is one entry of ip -j -br neigh.
type neighBriefJSON struct {
	Dst    string `json:"dst"`
	Dev    string `json:"dev,omitempty"`
	Lladdr string `json:"lladdr,omitempty"`
}

// neighBrief writes ip -br neigh: the address, the device and the
// link-layer address in columns (ip's "%-39s %-16s "), no state.
func (e *env) neighBrief(out []neighJSON) error {
	if e.json {
		bj := make([]neighBriefJSON, len(out))
		for i, j := range out {
			bj[i] = neighBriefJSON{Dst: j.Dst, Dev: j.Dev, Lladdr: j.Lladdr}
		}
		return e.printJSON(bj)
	}
	var b strings.Builder
	for _, j := range out {
		fmt.Fprintf(&b, "%-39s ", j.Dst)
		if j.Dev != "" {
			fmt.Fprintf(&b, "%-16s ", j.Dev)
		}
		b.WriteString(j.Lladdr + "\n")
	}
	_, err := io.WriteString(e.stdout, b.String())
	return err
}
