package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/nsbox/nsbox/nat"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

const natUsage = `nat add BR [--out DEV]         masquerade BR's IPv4 subnets leaving through any other
                               interface (or DEV) and forward them (nftables table ip nsbox)
nat del BR                     remove what nat add BR added (the table goes with the last entry)
nat list                       masquerades and published ports of this namespace (alias show)`

func natCommand() *command {
	return &command{name: "nat", usage: natUsage, run: runNAT}
}

// natArgs are the checked arguments of nsbox nat.
type natArgs struct {
	sub    string // add, del, list
	bridge string
	out    string
}

// parseNATArgs checks the words after "nat"; every mistake is a usage error.
func parseNATArgs(args []string) (natArgs, error) {
	if len(args) == 0 {
		return natArgs{}, usagef("nat: missing subcommand (add, del, list; try nsbox -h)")
	}
	a := natArgs{sub: args[0]}
	fs := pflag.NewFlagSet("nat", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.out, "out", "", "outgoing interface")
	if err := fs.Parse(args[1:]); err != nil {
		return a, usagef("nat %s: %s", a.sub, printable(err.Error()))
	}
	if err := refuseEmptyFlags("nat "+a.sub, fs); err != nil {
		return a, err
	}
	rest := fs.Args()
	switch a.sub {
	case "add", "del", "delete":
		if a.sub == "delete" {
			a.sub = "del"
		}
		if len(rest) != 1 {
			return a, usagef("nat %s: expected BR, got %d argument(s)", a.sub, len(rest))
		}
		if a.out != "" && a.sub == "del" {
			return a, usagef("nat del: --out belongs to nat add")
		}
		a.bridge = rest[0]
		for i, n := range []string{a.bridge, a.out} {
			if i == 1 && n == "" {
				continue // no --out
			}
			if err := rtnl.ValidateLinkName(n); err != nil {
				return a, usagef("nat %s: %s", a.sub, linkNameProblem(n, err))
			}
		}
	case "list", "show":
		a.sub = "list"
		if len(rest) != 0 || a.out != "" {
			return a, usagef("nat list takes no arguments")
		}
	default:
		return a, usagef("nat: unknown subcommand %q (add, del, list)", a.sub)
	}
	return a, nil
}

// natTable opens the nsbox table of the current namespace (-n).
func (e *env) natTable() (*nat.Table, error) {
	var h *netns.Handle
	if e.netns != "" {
		var err error
		if h, err = openNS(e.netns); err != nil {
			return nil, err
		}
		defer h.Close()
	}
	return nat.Open(h)
}

func runNAT(ctx context.Context, e *env, args []string) error {
	a, err := parseNATArgs(args)
	if err != nil {
		return err
	}
	t, err := e.natTable()
	if err != nil {
		return err
	}
	defer t.Close()
	switch a.sub {
	case "add":
		return t.AddMasquerade(ctx, nat.Masquerade{Bridge: a.bridge, Out: a.out})
	case "del":
		return t.RemoveMasquerade(ctx, nat.Masquerade{Bridge: a.bridge})
	}
	entries, err := t.List(ctx)
	if err != nil {
		return err
	}
	if e.json {
		if entries == nil {
			entries = []nat.Entry{}
		}
		b, err := json.Marshal(entries)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(e.stdout, string(b))
		return err
	}
	for _, en := range entries {
		o := en.Owner()
		held := "held by " + o.String()
		switch en.Kind {
		case "masquerade":
			out := "any interface but " + en.Bridge
			if en.Out != "" {
				out = en.Out
			}
			fmt.Fprintf(e.stdout, "masquerade %s (%s) out %s %s\n", en.Bridge, strings.Join(en.Subnets, ","), out, held)
		case "publish":
			ip := "*"
			if en.HostIP != "" {
				ip = en.HostIP
			}
			fmt.Fprintf(e.stdout, "publish %s %s:%d -> %s:%d on %s %s\n", en.Proto, ip, en.HostPort, en.Addr, en.Port, en.Bridge, held)
		}
	}
	return nil
}
