package main

import (
	"strings"

	"golang.org/x/sys/unix"
)

// The global flags are parsed the way iproute2's ip parses its options (ip.c):
// each word before the command is compared, in the table's order, with the
// full option names, and the first name it is a prefix of wins (lib/utils.c
// matches()). So -b is -batch, -br is -brief, -s is -stats, -d is -details,
// -p is -pretty, -j is -json, -o is -oneline and -n is -netns, as in ip; --brief (two dashes)
// is the same as -brief. -4 and -6 must be exact. One exception: -h is help
// here (ip reads it as -human), as every nsbox command level does.

// globalOpt is one global option: its full name (with the leading dash),
// other full names it also goes by, and whether it takes a value.
type globalOpt struct {
	name    string
	aliases []string
	exact   bool // only the full name (and no abbreviation) is accepted
	arg     bool // the next word is its value
	set     func(g *globalState, v string) error
}

// globalState collects the options that are not fields of env.
type globalState struct {
	e     *env
	batch string
	help  bool
}

// globalOpts lists the options in the order abbreviations are resolved:
// iproute2's order for the options ip has, -help first (see above).
func globalOpts() []globalOpt {
	return []globalOpt{
		{name: "-help", set: func(g *globalState, _ string) error { g.help = true; return nil }},
		{name: "-family", arg: true, set: func(g *globalState, v string) error {
			switch v {
			case "inet", "ipv4":
				g.e.family = unix.AF_INET
			case "inet6", "ipv6":
				g.e.family = unix.AF_INET6
			case "link", "packet":
				g.e.family = unix.AF_PACKET
			default:
				return usagef("-family: invalid protocol family %q (inet, inet6, link)", v)
			}
			return nil
		}},
		{name: "-4", exact: true, set: func(g *globalState, _ string) error { g.e.family = unix.AF_INET; return nil }},
		{name: "-6", exact: true, set: func(g *globalState, _ string) error { g.e.family = unix.AF_INET6; return nil }},
		{name: "-0", exact: true, set: func(g *globalState, _ string) error { g.e.family = unix.AF_PACKET; return nil }},
		{name: "-stats", aliases: []string{"-statistics"}, set: func(g *globalState, _ string) error { g.e.stats++; return nil }},
		{name: "-details", set: func(g *globalState, _ string) error { g.e.details++; return nil }},
		{name: "-oneline", set: func(g *globalState, _ string) error { g.e.oneline = true; return nil }},
		{name: "-Version", aliases: []string{"-version"}, set: func(g *globalState, _ string) error { g.e.showVersion = true; return nil }},
		{name: "-batch", arg: true, set: func(g *globalState, v string) error { g.batch = v; return nil }},
		{name: "-brief", set: func(g *globalState, _ string) error { g.e.brief = true; return nil }},
		{name: "-json", set: func(g *globalState, _ string) error { g.e.json = true; return nil }},
		{name: "-pretty", set: func(g *globalState, _ string) error { g.e.pretty = true; return nil }},
		{name: "-netns", arg: true, set: func(g *globalState, v string) error {
			if v == "" {
				return usagef("-n: empty namespace")
			}
			g.e.netns = v
			return nil
		}},
	}
}

// matches reports whether word abbreviates full, as iproute2's matches():
// word is a non-empty prefix of full.
func matches(word, full string) bool {
	return word != "" && strings.HasPrefix(full, word)
}

// matchWord returns the first of fulls that word abbreviates (iproute2's
// first-match order), or "".
func matchWord(word string, fulls ...string) string {
	for _, f := range fulls {
		if matches(word, f) {
			return f
		}
	}
	return ""
}

// globalFlags parses the flags that come before the command word.
func (e *env) globalFlags(args []string) (rest []string, batch string, help bool, err error) {
	g := &globalState{e: e}
	opts := globalOpts()
	for len(args) > 0 {
		word := args[0]
		if word == "--" {
			args = args[1:]
			break
		}
		if len(word) < 2 || word[0] != '-' {
			break
		}
		args = args[1:]
		opt := word
		if strings.HasPrefix(opt, "--") {
			opt = opt[1:]
		}
		value, hasValue := "", false
		if i := strings.IndexByte(opt, '='); i > 0 {
			opt, value, hasValue = opt[:i], opt[i+1:], true
		}
		o := findGlobal(opts, opt)
		if o == nil {
			return nil, "", false, usagef("unknown global flag %q (try nsbox -h)", word)
		}
		switch {
		case o.arg && !hasValue:
			if len(args) == 0 {
				return nil, "", false, usagef("%s needs a value", word)
			}
			value, args = args[0], args[1:]
		case !o.arg && hasValue:
			return nil, "", false, usagef("%s takes no value", opt)
		}
		if err := o.set(g, value); err != nil {
			return nil, "", false, err
		}
	}
	return args, g.batch, g.help, nil
}

// findGlobal returns the option opt names (a full name or an abbreviation,
// resolved in table order), or nil.
func findGlobal(opts []globalOpt, opt string) *globalOpt {
	if opt == "-" {
		return nil
	}
	for i := range opts {
		o := &opts[i]
		for _, n := range append([]string{o.name}, o.aliases...) {
			if opt == n || (!o.exact && matches(opt, n)) {
				return o
			}
		}
	}
	return nil
}

// subcommand resolves the word after an object (link, addr, route, neigh)
// as ip does: an exact name of fulls, else the first of fulls (in ip's
// order) that word abbreviates; "" when none.
func subcommand(word string, fulls ...string) string {
	for _, f := range fulls {
		if word == f {
			return f
		}
	}
	return matchWord(word, fulls...)
}
