package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Help works at every level, as iproute2's and git's do: -h, --help or help
// after nsbox, after a command word (nsbox link -h, nsbox bridge help) or
// after a subcommand (nsbox link list -h, nsbox netns add -h) prints the
// usage to stdout, exits 0 and does nothing else. The same text makes the
// man page (man.go) and the completion scripts (completion.go).

// isHelpFlag reports whether w asks for help as a flag.
func isHelpFlag(w string) bool { return w == "-h" || w == "--help" }

// isHelpWord reports whether w asks for help in a word's place.
func isHelpWord(w string) bool { return isHelpFlag(w) || w == "help" }

// helpRequest says whether args (the words after command c) ask for help,
// and for which subcommand ("" for the whole command): help, -h or --help
// in the subcommand's place, or -h or --help after it. The word help after
// a subcommand is a name, as in iproute2 (nsbox netns add help makes a
// namespace called help). The payload of netns exec (after its NAME) and
// everything after "--" are never read.
func helpRequest(c *command, args []string) (sub string, ok bool) {
	if len(args) == 0 {
		return "", false
	}
	if isHelpWord(args[0]) {
		return "", true
	}
	if c.ownHelp {
		// run, dhcp and dhcpd parse -h themselves (with their flags).
		return "", false
	}
	rest := args[1:]
	if c.name == "netns" && args[0] == "exec" && len(rest) > 1 {
		rest = rest[:1] // netns exec NAME CMD...: CMD's words are its own
	}
	for _, w := range rest {
		if w == "--" {
			break
		}
		if isHelpFlag(w) {
			return args[0], true
		}
	}
	return "", false
}

// printCommandHelp writes the usage of c (only the entries of sub when sub
// names one of them) to w. Commands that parse their own flags (run, dhcp,
// dhcpd) print their flags too.
func (e *env) printCommandHelp(ctx context.Context, w io.Writer, c *command, sub string) error {
	if c.ownHelp {
		// Their parser prints the usage and the flags for -h and stops.
		saved := e.stdout
		e.stdout = w
		defer func() { e.stdout = saved }()
		return c.run(ctx, e, []string{"-h"})
	}
	entries := usageEntries(c.usage)
	if sub != "" {
		var picked []string
		for _, en := range entries {
			if entryHasSub(en, sub) {
				picked = append(picked, en)
			}
		}
		if picked != nil {
			entries = picked
		}
	}
	fmt.Fprintln(w, "usage:")
	for _, en := range entries {
		// "nsbox " before each synopsis; its continuation lines move
		// right by as much so that the columns stay.
		fmt.Fprintln(w, "  nsbox "+strings.ReplaceAll(en, "\n", "\n        "))
	}
	fmt.Fprintln(w, "\nGlobal flags (-n NS, -j, -b FILE): nsbox -h. Manual: man nsbox.")
	return nil
}

// usageEntries splits a command's usage into entries: a line that starts at
// the margin begins one, indented lines continue it.
func usageEntries(usage string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(usage, "\n"), "\n") {
		if len(out) > 0 && strings.HasPrefix(l, " ") {
			out[len(out)-1] += "\n" + l
			continue
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}

// entryHasSub reports whether a usage entry ("link list|show [...]  ...")
// documents subcommand sub.
func entryHasSub(entry, sub string) bool {
	f := strings.Fields(firstLine(entry))
	if len(f) < 2 {
		return false
	}
	for _, s := range strings.Split(f[1], "|") {
		if s == sub {
			return true
		}
	}
	return false
}

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// helpCommand is nsbox help [COMMAND [SUBCOMMAND]].
func helpCommand() *command {
	return &command{name: "help", usage: "help [COMMAND [SUBCOMMAND]]   this help, or a command's", run: func(ctx context.Context, e *env, args []string) error {
		if len(args) == 0 || (len(args) == 1 && isHelpWord(args[0])) {
			e.printHelp(e.stdout)
			return nil
		}
		c := e.lookupCommand(args[0])
		if c == nil {
			return usagef("help: unknown command %q (try nsbox -h)", args[0])
		}
		sub := ""
		if len(args) > 1 {
			sub = args[1]
		}
		if len(args) > 2 {
			return usagef("help %s %s: unexpected argument %q", args[0], args[1], args[2])
		}
		return e.printCommandHelp(ctx, e.stdout, c, sub)
	}}
}
