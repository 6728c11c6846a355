package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/rtnl"
)

const addrUsage = `addr list|show [dev DEV]       addresses, like ip addr (-j: addr_info as ip -j)
addr add CIDR dev DEV [brd +|-|ADDR] [label L] [nodad] [noprefixroute]
         [valid_lft SECS|forever] [preferred_lft SECS|forever]
                               add an IPv4 or IPv6 address (a bare address is /32 or /128);
                               brd + sets the prefix's last address as broadcast, label is
                               DEV or DEV:ANY, nodad makes an IPv6 address usable at once
addr del CIDR dev DEV          remove an address
addr flush dev DEV             remove every address of DEV`

func addrCommand() *command {
	return &command{name: "addr", quick: true, aliases: []string{"address", "a"}, usage: addrUsage, run: runAddr}
}

func runAddr(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return addrShow(ctx, e, nil)
	}
	sub, rest := args[0], args[1:]
	if sub == "ls" {
		sub = "list"
	}
	// ip address's order: "d" is delete, "l" list, "s" show, "f" flush.
	switch full := subcommand(sub, "add", "replace", "delete", "list", "show", "lst", "flush", "help"); full {
	case "list", "show", "lst":
		return addrShow(ctx, e, rest)
	case "add", "replace", "delete":
		if sub == "del" {
			full = sub // the word the user typed, in messages
		}
		return addrChange(ctx, e, full, rest)
	case "flush":
		return addrFlush(ctx, e, rest)
	case "help":
		fmt.Fprintln(e.stdout, addrUsage)
		return nil
	}
	return usagef("addr: unknown subcommand %q (list, show, add, del, flush)", sub)
}

// addrArgs is a parsed `addr add|del` line.
type addrArgs struct {
	prefix netip.Prefix
	dev    string
	opts   *rtnl.AddrOptions
}

func parseLifetime(cmd, word, v string) (time.Duration, error) {
	if v == "forever" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 || n >= math.MaxUint32 {
		return 0, usagef("%s: invalid %s %q (seconds or forever)", cmd, word, v)
	}
	return time.Duration(n) * time.Second, nil
}

func parseAddrChange(sub string, args []string) (addrArgs, error) {
	cmd := "addr " + sub
	var a addrArgs
	var cidr string
	brdMinus := false
	for len(args) > 0 {
		w := args[0]
		switch w {
		case "nodad", "noprefixroute":
			if sub == "del" || sub == "delete" {
				return a, usagef("%s: %s applies to add and replace only", cmd, w)
			}
			if a.opts == nil {
				a.opts = &rtnl.AddrOptions{}
			}
			if w == "nodad" {
				a.opts.NoDAD = true
			} else {
				a.opts.NoPrefixRoute = true
			}
			args = args[1:]
		case "brd", "broadcast", "label":
			if len(args) < 2 {
				return a, usagef("%s: %s needs a value", cmd, w)
			}
			v := args[1]
			args = args[2:]
			if sub == "del" || sub == "delete" {
				return a, usagef("%s: %s applies to add and replace only", cmd, w)
			}
			if a.opts == nil {
				a.opts = &rtnl.AddrOptions{}
			}
			if w == "label" {
				if v == "" || len(v) > 15 {
					return a, usagef("%s: invalid label %q (at most 15 bytes)", cmd, v)
				}
				a.opts.Label = v
				continue
			}
			switch v {
			case "+":
				a.opts.BroadcastFromPrefix = true
			case "-":
				brdMinus = true // ip's "brd -": the prefix's first address
			default:
				b, err := netip.ParseAddr(v)
				if err != nil || !b.Is4() {
					return a, usagef("%s: invalid broadcast %q (an IPv4 address, + or -)", cmd, v)
				}
				a.opts.Broadcast = b
			}
		case "dev", "valid_lft", "preferred_lft", "local":
			if len(args) < 2 {
				return a, usagef("%s: %s needs a value", cmd, w)
			}
			v := args[1]
			args = args[2:]
			switch w {
			case "dev":
				if err := checkDev(cmd, v); err != nil {
					return a, err
				}
				a.dev = v
			case "local":
				if cidr != "" {
					return a, usagef("%s: more than one address (%q, %q)", cmd, cidr, v)
				}
				cidr = v
			default:
				if sub == "del" || sub == "delete" {
					return a, usagef("%s: %s applies to add and replace only", cmd, w)
				}
				d, err := parseLifetime(cmd, w, v)
				if err != nil {
					return a, err
				}
				if a.opts == nil {
					a.opts = &rtnl.AddrOptions{}
				}
				if w == "valid_lft" {
					a.opts.ValidLifetime = d
				} else {
					a.opts.PreferredLifetime = d
				}
			}
		default:
			if cidr != "" {
				return a, usagef("%s: unexpected argument %q", cmd, w)
			}
			cidr = w
			args = args[1:]
		}
	}
	if cidr == "" {
		return a, usagef("%s: missing address (CIDR)", cmd)
	}
	p, err := parsePrefix(cidr)
	if err != nil {
		return a, usagef("%s: %v", cmd, err)
	}
	a.prefix = p
	if a.dev == "" {
		return a, usagef("%s %s: missing \"dev DEV\"", cmd, cidr)
	}
	if brdMinus && p.Addr().Is4() {
		a.opts.Broadcast = p.Masked().Addr()
	}
	if o := a.opts; o != nil && o.Label != "" && o.Label != a.dev && !strings.HasPrefix(o.Label, a.dev+":") {
		return a, usagef("%s: label %q must be %s or start with \"%s:\" (as ip)", cmd, o.Label, a.dev, a.dev)
	}
	if o := a.opts; o != nil && (o.Broadcast.IsValid() || o.BroadcastFromPrefix || o.Label != "") && !p.Addr().Is4() {
		return a, usagef("%s: brd and label are for IPv4 addresses", cmd)
	}
	if o := a.opts; o != nil && o.ValidLifetime != 0 && o.PreferredLifetime > o.ValidLifetime {
		return a, usagef("%s: preferred_lft is longer than valid_lft", cmd)
	}
	return a, nil
}

func addrChange(ctx context.Context, e *env, sub string, args []string) error {
	return applyChange(ctx, e, sub, args, parseAddrChange,
		func(c *rtnl.Conn, ctx context.Context, a addrArgs) error {
			return c.AddAddr(ctx, a.dev, a.prefix, a.opts)
		},
		func(c *rtnl.Conn, ctx context.Context, a addrArgs) error {
			return c.ReplaceAddr(ctx, a.dev, a.prefix, a.opts)
		},
		func(c *rtnl.Conn, ctx context.Context, a addrArgs) error {
			return c.DelAddr(ctx, a.dev, a.prefix)
		})
}

func addrFlush(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "dev" {
		return usagef("addr flush: expected \"dev DEV\"")
	}
	return devOp(ctx, e, "addr flush", args, (*rtnl.Conn).FlushAddrs)
}

// addrJSON is one entry of addr_info, as ip -j addr prints it.
type addrJSON struct {
	Family        string `json:"family"`
	Local         string `json:"local"`
	Prefixlen     int    `json:"prefixlen"`
	Broadcast     string `json:"broadcast,omitempty"`
	Scope         string `json:"scope"`
	Secondary     bool   `json:"secondary,omitempty"`
	Temporary     bool   `json:"temporary,omitempty"`
	Nodad         bool   `json:"nodad,omitempty"`
	Optimistic    bool   `json:"optimistic,omitempty"`
	Dadfailed     bool   `json:"dadfailed,omitempty"`
	Deprecated    bool   `json:"deprecated,omitempty"`
	Tentative     bool   `json:"tentative,omitempty"`
	Dynamic       bool   `json:"dynamic,omitempty"`
	Noprefixroute bool   `json:"noprefixroute,omitempty"`
	Label         string `json:"label,omitempty"`
	ValidLifeTime uint64 `json:"valid_life_time"`
	PreferredLife uint64 `json:"preferred_life_time"`
	flagWords     []string
}

func lifeSecs(d time.Duration) uint64 {
	if d == 0 {
		return math.MaxUint32
	}
	return uint64(d / time.Second)
}

func addrToJSON(a rtnl.Addr) addrJSON {
	j := addrJSON{
		Family:        "inet",
		Local:         a.Prefix.Addr().String(),
		Prefixlen:     a.Prefix.Bits(),
		Scope:         scopeName(a.Scope),
		Label:         a.Label,
		ValidLifeTime: lifeSecs(a.ValidLifetime),
		PreferredLife: lifeSecs(a.PreferredLifetime),
	}
	v6 := a.Prefix.Addr().Is6()
	if v6 {
		j.Family = "inet6"
		j.Label = ""
	}
	if a.Broadcast.IsValid() {
		j.Broadcast = a.Broadcast.String()
	}
	f := a.Flags
	set := func(bit uint32, p *bool, word string) {
		if f&bit != 0 {
			*p = true
			j.flagWords = append(j.flagWords, word)
		}
	}
	if v6 {
		set(unix.IFA_F_SECONDARY, &j.Temporary, "temporary")
	} else {
		set(unix.IFA_F_SECONDARY, &j.Secondary, "secondary")
	}
	set(unix.IFA_F_NODAD, &j.Nodad, "nodad")
	set(unix.IFA_F_OPTIMISTIC, &j.Optimistic, "optimistic")
	set(unix.IFA_F_DADFAILED, &j.Dadfailed, "dadfailed")
	set(unix.IFA_F_DEPRECATED, &j.Deprecated, "deprecated")
	set(unix.IFA_F_TENTATIVE, &j.Tentative, "tentative")
	if f&unix.IFA_F_PERMANENT == 0 {
		j.Dynamic = true
		j.flagWords = append(j.flagWords, "dynamic")
	}
	set(unix.IFA_F_NOPREFIXROUTE, &j.Noprefixroute, "noprefixroute")
	return j
}

func lftText(secs uint64) string {
	if secs == math.MaxUint32 {
		return "forever"
	}
	return strconv.FormatUint(secs, 10) + "sec"
}

// text writes the two lines ip addr prints for an address.
func (j addrJSON) text(w io.Writer) {
	var b strings.Builder
	// ip's format: every field but the label ends with a space.
	fmt.Fprintf(&b, "    %s %s/%d ", j.Family, j.Local, j.Prefixlen)
	if j.Broadcast != "" {
		fmt.Fprintf(&b, "brd %s ", j.Broadcast)
	}
	fmt.Fprintf(&b, "scope %s ", j.Scope)
	for _, f := range j.flagWords {
		b.WriteString(f + " ")
	}
	b.WriteString(j.Label)
	fmt.Fprintf(&b, "\n       valid_lft %s preferred_lft %s\n", lftText(j.ValidLifeTime), lftText(j.PreferredLife))
	io.WriteString(w, b.String())
}

func addrShow(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		if args[0] != "dev" && len(args) > 1 {
			return usagef("addr show: unexpected argument %q", args[0])
		}
	}
	q := rtnl.LinkQuery{Stats: e.stats > 0 && !e.brief, Details: e.details > 0}
	if e.family == unix.AF_INET6 {
		q.Family = unix.AF_INET6 // ip -6 dumps the links' IPv6 view
	}
	c, dev, views, err := e.showLinksArgs(ctx, "addr show", args, q)
	if err != nil {
		return err
	}
	if q.Family == unix.AF_INET6 && dev == "" {
		// The IPv6 view has no IFLA_TXQLEN; ip then asks the device
		// (SIOCGIFTXQLEN). The full view has it.
		full, err := c.QueryLinks(ctx, rtnl.LinkQuery{})
		if err != nil {
			return err
		}
		qlen := make(map[int]uint32, len(full))
		for _, l := range full {
			qlen[l.Index] = l.TxQueueLen
		}
		for i := range views {
			if views[i].TxQueueLen == 0 {
				views[i].TxQueueLen = qlen[views[i].Index]
			}
		}
	}
	// The links were just listed: their names, no second dump.
	aq := rtnl.AddrQuery{Names: make(map[int]string, len(views))}
	for _, v := range views {
		aq.Names[v.Index] = v.Name
		if dev != "" {
			aq.Index = v.Index
		}
	}
	addrs, err := c.QueryAddrs(ctx, aq)
	if err != nil {
		return err
	}
	byIndex := map[int][]addrJSON{}
	for _, a := range addrs {
		if e.family == unix.AF_INET && !a.Prefix.Addr().Is4() || e.family == unix.AF_INET6 && !a.Prefix.Addr().Is6() {
			continue
		}
		byIndex[a.Index] = append(byIndex[a.Index], addrToJSON(a))
	}
	if e.family == unix.AF_INET || e.family == unix.AF_INET6 {
		// ip -4 / -6 shows only the links with an address of the family.
		kept := views[:0]
		for _, v := range views {
			if len(byIndex[v.Index]) > 0 {
				kept = append(kept, v)
			}
		}
		views = kept
	}
	if e.brief {
		return e.addrBrief(views, byIndex)
	}
	if e.json && e.oneline {
		return e.addrOnelineJSON(views, byIndex)
	}
	if e.json {
		out := make([]linkJSON, len(views))
		for i, v := range views {
			out[i] = v.json(false)
			if e.details > 0 {
				v.addDetails(&out[i], false)
			}
			if e.family == unix.AF_INET || e.family == unix.AF_INET6 {
				// no link/ part under -4 / -6, as in the text
				out[i].LinkType, out[i].Address, out[i].Broadcast = "", "", ""
			}
			if e.stats > 0 && v.Stats != nil {
				out[i].Stats64 = newStatsJSON(v.Stats, v.CarrierChanges, e.stats)
			}
			info := byIndex[v.Index]
			if info == nil {
				info = []addrJSON{}
			}
			out[i].AddrInfo = &info
		}
		return e.printJSON(out)
	}
	if e.oneline {
		return e.addrOneline(views, byIndex)
	}
	resolvePeerNamespaces(ctx, c, views)
	o := textOpts{noLinkLn: e.family == unix.AF_INET || e.family == unix.AF_INET6, details: e.details > 0}
	var b strings.Builder // one write, as ip's buffered stdout
	for _, v := range views {
		v.textWith(&b, o)
		for _, a := range byIndex[v.Index] {
			a.text(&b)
		}
		if e.stats > 0 && v.Stats != nil {
			writeStats(&b, v.Stats, v.CarrierChanges, e.stats)
		}
	}
	_, err = io.WriteString(e.stdout, b.String())
	return err
}

// addrOneline writes ip -o addr: a record per address, "IDX: NAME" (the
// bare name, no @peer) and the address's lines joined by "\"; no link
// line, statistics or details, as ip -o prints.
func (e *env) addrOneline(views []linkView, byIndex map[int][]addrJSON) error {
	var b, rec strings.Builder
	for _, v := range views {
		for _, a := range byIndex[v.Index] {
			rec.Reset()
			fmt.Fprintf(&rec, "%d: %s", v.Index, v.Name)
			a.text(&rec)
			b.WriteString(oneline(rec.String()))
		}
	}
	_, err := io.WriteString(e.stdout, b.String())
	return err
}

// addrOnelineJSON writes ip -o -j addr: per link that has addresses, an
// object holding only addr_info, each address led by "index" and "dev".
func (e *env) addrOnelineJSON(views []linkView, byIndex map[int][]addrJSON) error {
	var b strings.Builder
	b.WriteString("[")
	first := true
	for _, v := range views {
		as := byIndex[v.Index]
		if len(as) == 0 {
			continue
		}
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(`{"addr_info":[`)
		for i, a := range as {
			raw, err := json.Marshal(a)
			if err != nil {
				return fmt.Errorf("encode JSON: %w", err)
			}
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"index":%d,"dev":%s,`, v.Index, quoteIP(v.Name))
			b.Write(raw[1:])
		}
		b.WriteString("]}")
	}
	b.WriteString("]")
	return e.printRawJSON([]byte(b.String()))
}

// addrBriefJSON is one entry of addr_info in ip -j -br addr.
type addrBriefJSON struct {
	Local     string `json:"local"`
	Prefixlen int    `json:"prefixlen"`
}

// addrBrief writes ip -br addr: a line per link, its addresses as CIDRs.
func (e *env) addrBrief(views []linkView, byIndex map[int][]addrJSON) error {
	if e.json {
		out := make([]linkBriefJSON, len(views))
		for i, v := range views {
			out[i] = v.briefJSON(true)
			info := []addrBriefJSON{}
			for _, a := range byIndex[v.Index] {
				info = append(info, addrBriefJSON{Local: a.Local, Prefixlen: a.Prefixlen})
			}
			out[i].AddrInfo = &info
		}
		return e.printJSON(out)
	}
	var b strings.Builder
	for _, v := range views {
		v.brief(&b, true)
		for _, a := range byIndex[v.Index] {
			fmt.Fprintf(&b, "%s/%d ", a.Local, a.Prefixlen)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(e.stdout, b.String())
	return err
}
