package main

import (
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestOnelineMatchesIP compares ip -o (-oneline) with nsbox's, byte for
// byte, for link, addr, route and neigh, alone and with the other output
// flags, in a throwaway namespace. The links with addresses stay down so
// that no DAD, carrier change or counter moves between the two calls.
func TestOnelineMatchesIP(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "lo", "up")
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "oa", "type", "veth", "peer", "name", "ob")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "10.63.0.1/24", "dev", "oa")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "10.63.0.9/24", "dev", "oa", "label", "oa:x")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "fd00:63::1/64", "dev", "oa", "nodad")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "10.64.0.1/24", "dev", "ob")
	testutil.Cmd(t, "ip", "-n", ns, "route", "add", "blackhole", "10.65.0.0/16")
	testutil.Cmd(t, "ip", "-n", ns, "route", "add", "10.66.0.0/16", "dev", "lo", "metric", "7")
	testutil.Cmd(t, "ip", "-n", ns, "neigh", "add", "10.63.0.7", "lladdr", "02:00:00:00:63:07", "dev", "oa")
	testutil.Cmd(t, "ip", "-n", ns, "neigh", "add", "fd00:63::8", "lladdr", "02:00:00:00:63:08", "dev", "oa", "router")
	for _, args := range []string{
		"-o link", "-o link show dev oa", "-o -s link show dev oa", "-o -s -s link show dev ob", "-o -d link",
		"-o -br link", "-o -j link", "-oneline l",
		"-o addr", "-o -4 addr", "-o -6 addr", "-o addr show dev oa", "-o -s addr", "-o -d addr", "-o -br addr",
		"-o -j addr", "-o -j -4 addr", "-o -j -p addr",
		"-o route", "-o -d route", "-o route show table all", "-o -6 route", "-o -j route", "-o route get 10.66.1.1",
		"-o neigh", "-o neigh show dev oa", "-o -j neigh", "-br neigh", "-br -j neigh", "-br neigh show dev oa",
	} {
		words := strings.Fields(args)
		got := nlOK(t, append([]string{"-n", ns}, words...)...)
		want := testutil.Cmd(t, "ip", append([]string{"-n", ns}, words...)...)
		if got != want {
			t.Errorf("nsbox %s differs from ip:\n%s---\n%s", args, got, want)
		}
	}
}

// TestNeighStatsMatchIP compares ip -s neigh (the entries' ages in
// seconds, references and probes) with nsbox's, byte for byte, over a
// real ARP exchange, static entries and an unanswered one. The ages tick
// every second, so a comparison counts when ip printed the same before and
// after nsbox (a few tries at most).
func TestNeighStatsMatchIP(t *testing.T) {
	testutil.RequirePriv(t)
	a, b := testutil.NewNetns(t), testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", a, "link", "add", "sa", "type", "veth", "peer", "name", "sb", "netns", b)
	testutil.Cmd(t, "ip", "-n", a, "addr", "add", "10.92.0.1/24", "dev", "sa")
	testutil.Cmd(t, "ip", "-n", b, "addr", "add", "10.92.0.2/24", "dev", "sb")
	testutil.Cmd(t, "ip", "-n", a, "link", "set", "sa", "up")
	testutil.Cmd(t, "ip", "-n", b, "link", "set", "sb", "up")
	testutil.Cmd(t, "ip", "netns", "exec", a, "ping", "-c1", "-W2", "10.92.0.2")
	// No answer for .3: an entry that probed and failed (or still probes).
	_, _ = testutil.CmdErr("ip", "netns", "exec", a, "ping", "-c1", "-W1", "10.92.0.3")
	testutil.Cmd(t, "ip", "-n", a, "neigh", "add", "10.92.0.7", "lladdr", "02:00:00:00:92:07", "dev", "sa")
	testutil.Cmd(t, "ip", "-n", a, "neigh", "add", "10.92.0.8", "lladdr", "02:00:00:00:92:08", "dev", "sa", "nud", "stale")
	testutil.Cmd(t, "ip", "-n", a, "neigh", "add", "fd00:92::9", "lladdr", "02:00:00:00:92:09", "dev", "sa", "router")
	if out := testutil.Cmd(t, "ip", "-n", a, "-s", "neigh", "show"); !strings.Contains(out, "probes") || !strings.Contains(out, " used ") {
		t.Fatalf("ip -s neigh shows no statistics to compare:\n%s", out)
	}
	for _, args := range []string{
		"-s neigh", "-s -s neigh", "-s neigh show dev sa", "-s -4 neigh", "-s -6 neigh", "-s neigh show nud all",
		"-j -s neigh", "-j -p -s neigh", "-o -s neigh", "-s neigh show 10.92.0.2",
	} {
		words := append([]string{"-n", a}, strings.Fields(args)...)
		var got, want string
		for try := 0; try < 5; try++ {
			before := testutil.Cmd(t, "ip", words...)
			got = nlOK(t, words...)
			want = testutil.Cmd(t, "ip", words...)
			if before == want {
				break
			}
		}
		if got != want {
			t.Errorf("nsbox %s differs from ip:\n%s---\n%s", args, got, want)
		}
	}
}
