package main

import (
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestNeighLikeIP adds, lists, deletes and flushes ARP/NDP entries through
// nsbox in namespaces of the test's, and compares every listing with ip
// neigh byte for byte.
func TestNeighLikeIP(t *testing.T) {
	testutil.RequirePriv(t)
	a, b := testutil.NewNetns(t), testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", a, "link", "add", "na", "type", "veth", "peer", "name", "nb", "netns", b)
	testutil.Cmd(t, "ip", "-n", a, "addr", "add", "10.91.0.1/24", "dev", "na")
	testutil.Cmd(t, "ip", "-n", b, "addr", "add", "10.91.0.2/24", "dev", "nb")
	testutil.Cmd(t, "ip", "-n", a, "link", "set", "na", "up")
	testutil.Cmd(t, "ip", "-n", b, "link", "set", "nb", "up")
	// A real ARP exchange inside the test's namespaces: a REACHABLE entry.
	testutil.Cmd(t, "ip", "netns", "exec", a, "ping", "-c1", "-W2", "10.91.0.2")

	for _, line := range []string{
		"neigh add 10.91.0.7 lladdr 02:00:00:00:00:07 dev na",
		"neigh add 10.91.0.8 lladdr 02:00:00:00:00:08 dev na nud noarp",
		"neigh add fd00:91::9 lladdr 02:00:00:00:00:09 dev na router nud stale",
		"neigh replace 10.91.0.7 lladdr 02:00:00:00:00:17 dev na",
		"n a 10.91.0.6 lladdr 02:00:00:00:00:06 dev na nud reachable",
	} {
		nlOK(t, append([]string{"-n", a}, strings.Fields(line)...)...)
	}
	var entries []struct {
		Dst    string   `json:"dst"`
		Lladdr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	testutil.IPJSON(t, &entries, "-n", a, "neigh", "show", "dev", "na", "nud", "all")
	seen := map[string]string{}
	for _, e := range entries {
		seen[e.Dst] = e.Lladdr + " " + strings.Join(e.State, ",")
	}
	for dst, want := range map[string]string{
		"10.91.0.2": "", "10.91.0.7": "02:00:00:00:00:17 PERMANENT", "10.91.0.8": "02:00:00:00:00:08 NOARP",
		"fd00:91::9": "02:00:00:00:00:09 STALE", "10.91.0.6": "02:00:00:00:00:06 REACHABLE",
	} {
		got, ok := seen[dst]
		if !ok || (want != "" && got != want) {
			t.Errorf("ip neigh: %s is %q, want %q (all: %v)", dst, got, want, seen)
		}
	}
	compare := func() {
		t.Helper()
		for _, args := range []string{
			"neigh", "neigh show dev na", "-j neigh", "-4 neigh", "-6 neigh", "neigh show nud all",
			"neigh show nud permanent", "-j -p neigh show nud all", "neigh show 10.91.0.0/29", "n", "ne sh",
		} {
			words := strings.Fields(args)
			got := nlOK(t, append([]string{"-n", a}, words...)...)
			want := testutil.Cmd(t, "ip", append([]string{"-n", a}, words...)...)
			if got != want {
				t.Errorf("nsbox %s differs from ip:\n%s---\n%s", args, got, want)
			}
		}
	}
	compare()

	nlOK(t, "-n", a, "neigh", "del", "10.91.0.6", "dev", "na")
	if code, _, errs := nlRun(t, "", "-n", a, "neigh", "del", "10.91.0.6", "dev", "na"); code != 1 || !strings.Contains(errs, "no such file or directory") {
		t.Errorf("del of a missing entry: exit %d %q", code, errs)
	}
	if code, _, errs := nlRun(t, "", "-n", a, "neigh", "flush"); code != 2 || !strings.Contains(errs, "needs \"dev DEV\"") {
		t.Errorf("flush alone: exit %d %q", code, errs)
	}
	// flush keeps permanent and noarp entries unless nud says otherwise.
	nlOK(t, "-n", a, "neigh", "flush", "dev", "na")
	out := testutil.Cmd(t, "ip", "-n", a, "neigh", "show", "dev", "na", "nud", "all")
	if !strings.Contains(out, "10.91.0.7 ") || !strings.Contains(out, "10.91.0.8 ") || strings.Contains(out, "fd00:91::9") || strings.Contains(out, "10.91.0.2 ") {
		t.Errorf("after flush dev na: %s", out)
	}
	compare()
	nlOK(t, "-n", a, "neigh", "flush", "dev", "na", "nud", "permanent")
	if out := testutil.Cmd(t, "ip", "-n", a, "neigh", "show", "dev", "na", "nud", "all"); strings.Contains(out, "10.91.0.7 ") || !strings.Contains(out, "10.91.0.8 ") {
		t.Errorf("after flush nud permanent: %s", out)
	}
	for _, tc := range []struct{ args, msg string }{
		{"neigh add 10.91.0.5 dev na", `needs "lladdr MAC"`},
		{"neigh add 10.91.0.5 lladdr zz dev na", "invalid MAC address"},
		{"neigh add 10.91.0.5 lladdr 02:00:00:00:00:05", `missing "dev DEV"`},
		{"neigh add 10.91.0.5 lladdr 02:00:00:00:00:05 dev na nud bogus", "invalid nud state"},
	} {
		code, _, errs := nlRun(t, "", append([]string{"-n", a}, strings.Fields(tc.args)...)...)
		if code != 2 || !strings.Contains(errs, tc.msg) {
			t.Errorf("%s: exit %d %q, want 2 and %q", tc.args, code, errs, tc.msg)
		}
	}
}
