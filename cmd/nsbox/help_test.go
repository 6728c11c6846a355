package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// helpLines lists every command line the help test tries: each command
// followed by -h, --help or help, each subcommand of its usage followed by
// -h or --help, or with an argument before -h (nsbox link set lo -h), and
// nsbox help COMMAND [SUBCOMMAND].
func helpLines() [][]string {
	var lines [][]string
	for _, h := range []string{"-h", "--help", "help"} {
		lines = append(lines, []string{h}, []string{"help", h})
	}
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		lines = append(lines, []string{"help", c.name})
		for _, h := range []string{"-h", "--help", "help"} {
			lines = append(lines, []string{c.name, h})
		}
		if c.ownHelp || c.name == "help" {
			continue
		}
		seen := map[string]bool{}
		for _, en := range usageEntries(c.usage) {
			f := strings.Fields(en)
			if len(f) < 2 {
				continue
			}
			for _, sub := range strings.Split(f[1], "|") {
				if seen[sub] || strings.HasPrefix(sub, "[") || strings.ToUpper(sub) == sub {
					continue
				}
				seen[sub] = true
				for _, h := range []string{"-h", "--help"} {
					lines = append(lines, []string{c.name, sub, h})
				}
				lines = append(lines, []string{"help", c.name, sub})
				if sub != "exec" { // netns exec NAME -h runs -h
					lines = append(lines, []string{c.name, sub, "lo", "-h"})
				}
			}
		}
	}
	return lines
}

// TestHelpEverywhere: -h, --help and help after every command and
// subcommand print a usage to stdout, exit 0, write nothing to stderr and
// act on nothing: run with -n in a throwaway namespace, whose links,
// addresses and routes (read with ip -j) stay as they were, and no
// namespace named after a help word appears in /run/netns.
func TestHelpEverywhere(t *testing.T) {
	ns := testutil.NewNetns(t)
	state := func() string {
		var b strings.Builder
		for _, obj := range []string{"link", "addr", "route"} {
			b.WriteString(testutil.Cmd(t, "ip", "-n", ns, "-j", obj, "show"))
		}
		return b.String()
	}
	before := state()
	lines := helpLines()
	if len(lines) < 60 {
		t.Fatalf("only %d help lines: the command table lost its subcommands", len(lines))
	}
	for _, line := range lines {
		for _, pre := range [][]string{nil, {"-n", ns}} {
			args := append(append([]string{}, pre...), line...)
			out, errOut, code := cli(t, args...)
			if code != 0 || errOut != "" || !strings.HasPrefix(out, "usage") {
				t.Errorf("nsbox %s: exit %d, stderr %q, stdout %.60q; want exit 0, a usage on stdout, nothing on stderr",
					strings.Join(args, " "), code, errOut, out)
			}
		}
	}
	if after := state(); after != before {
		t.Errorf("help acted on namespace %s:\nbefore %s\nafter  %s", ns, before, after)
	}
	for _, n := range []string{"-h", "--help", "help", "lo"} {
		if _, err := os.Lstat(filepath.Join("/run/netns", n)); err == nil {
			t.Errorf("a help line created namespace %q", n)
		}
	}
}

// TestHelpSubcommand: the help of a subcommand shows that subcommand's
// synopsis, not another's; netns exec's payload keeps its -h.
func TestHelpSubcommand(t *testing.T) {
	out, _, code := cli(t, "link", "list", "-h")
	if code != 0 || !strings.Contains(out, "nsbox link list|show") || strings.Contains(out, "link add") {
		t.Errorf("nsbox link list -h: exit %d, %q", code, out)
	}
	out, _, code = cli(t, "bridge", "help")
	if code != 0 || !strings.Contains(out, "nsbox bridge addif BR DEV") {
		t.Errorf("nsbox bridge help: exit %d, %q", code, out)
	}
	if sub, ok := helpRequest(&command{name: "netns"}, []string{"exec", "ns1", "ls", "-h"}); ok {
		t.Errorf("netns exec ns1 ls -h read as a help request for %q", sub)
	}
	if _, ok := helpRequest(&command{name: "link"}, []string{"set", "eth0", "--", "-h"}); ok {
		t.Errorf("-h after -- read as a help request")
	}
}
