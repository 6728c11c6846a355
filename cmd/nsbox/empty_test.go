package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestEmptyValuesFailClosed: a value given empty (an unset variable in a
// script) is a usage error (exit 2), never "not given": global -n "",
// every word that takes a value, every flag of dhcp and dhcpd, and -n ""
// in a -b line; and the namespace the command would have used is
// unchanged (read with ip -j).
func TestEmptyValuesFailClosed(t *testing.T) {
	ns := testutil.NewNetns(t)
	state := func() string {
		return testutil.Cmd(t, "ip", "-n", ns, "-j", "link", "show") + testutil.Cmd(t, "ip", "-n", ns, "-j", "addr", "show") +
			testutil.Cmd(t, "ip", "-n", ns, "-j", "route", "show")
	}
	before := state()
	n := []string{"-n", ns}
	lines := [][]string{
		{"-n", "", "link", "show"},
		{"--netns", "", "link", "show"},
		{"-n", "", "link", "del", "lo"},
		append(n, "link", "add", "", "type", "bridge"),
		append(n, "link", "add", "x0", "type", "veth", "peer", "name", ""),
		append(n, "link", "add", "x0", "type", "veth", "peer", "name", "x1", "netns", ""),
		append(n, "link", "set", "", "up"),
		append(n, "link", "set", "lo", "name", ""),
		append(n, "link", "set", "lo", "mtu", ""),
		append(n, "link", "set", "lo", "address", ""),
		append(n, "link", "set", "lo", "master", ""),
		append(n, "link", "set", "lo", "netns", ""),
		append(n, "link", "del", ""),
		append(n, "link", "show", "dev", ""),
		append(n, "addr", "add", "", "dev", "lo"),
		append(n, "addr", "add", "10.79.0.1/24", "dev", ""),
		append(n, "addr", "add", "10.79.0.1/24", "dev", "lo", "valid_lft", ""),
		append(n, "addr", "flush", "dev", ""),
		append(n, "route", "add", "", "dev", "lo"),
		append(n, "route", "add", "10.80.0.0/16", "via", ""),
		append(n, "route", "add", "10.80.0.0/16", "dev", ""),
		append(n, "route", "add", "10.80.0.0/16", "dev", "lo", "metric", ""),
		append(n, "bridge", "add", ""),
		append(n, "bridge", "addif", "", "lo"),
		append(n, "bridge", "stp", "x", ""),
		{"netns", "add", ""},
		{"netns", "del", ""},
		{"netns", "exec", "", "true"},
		{"netns", "pids", ""},
		{"netns", "attach", "", "1"},
		{"netns", "attach", "x", ""},
		append(n, "dhcp", ""),
		append(n, "dhcp", "lo", "--hostname", ""),
		append(n, "dhcp", "lo", "--lease-file", ""),
		append(n, "dhcp", "lo", "--timeout", ""),
		append(n, "dhcpd", "lo", "--range", ""),
		append(n, "dhcpd", "lo", "--range", "10.79.0.10-10.79.0.20", "--router", ""),
		append(n, "dhcpd", "lo", "--range", "10.79.0.10-10.79.0.20", "--dns", ""),
		append(n, "dhcpd", "lo", "--range", "10.79.0.10-10.79.0.20", "--lease-file", ""),
		{"run", "--netns", "", "true"},
		append(n, "nat", "add", ""),
		append(n, "nat", "add", "br0", "--out", ""),
		{"enter", "", "true"},
		{"enter", "x", "--uid", "", "true"},
		{"kill", ""},
		{"pool", "status", ""},
	}
	for _, l := range lines {
		_, errOut, code := cliWith(t, []string{"NSBOX_NO_FASTPATH=1"}, nil, l...)
		if code != 2 || !strings.HasPrefix(errOut, "nsbox: ") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("nsbox %q: exit %d, %q; want exit 2 and one nsbox: line", l, code, errOut)
		}
	}
	// -n "" in a batch line: the batch stops there, before the line acts.
	batch := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(batch, []byte("-n \"\" link set lo up\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(t, "-b", batch); code != 2 || errOut != "nsbox: batch "+batch+": line 1: -n: empty namespace name\n" {
		t.Errorf("-b with -n \"\": exit %d, %q", code, errOut)
	}
	if after := state(); after != before {
		t.Errorf("an empty value acted on %s:\nbefore %s\nafter  %s", ns, before, after)
	}
}
