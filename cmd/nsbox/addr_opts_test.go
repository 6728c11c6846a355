package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestAddrAddOptionsLikeIP adds the same addresses with the same options
// through ip in one namespace and through nsbox in another, and compares
// what ip -j then shows of both (addr_info), and ip route's view of
// noprefixroute.
func TestAddrAddOptionsLikeIP(t *testing.T) {
	testutil.RequirePriv(t)
	theirs, ours := testutil.NewNetns(t), testutil.NewNetns(t)
	lines := []string{
		"10.81.0.5/24 brd + label ao:web dev ao",
		"10.82.0.1/24 broadcast 10.82.0.127 dev ao",
		"10.84.0.1/16 brd - dev ao",
		"fd00:81::1/64 nodad dev ao",
		"10.83.0.1/24 noprefixroute dev ao",
		"fd00:83::1/64 dev ao nodad noprefixroute",
	}
	for _, ns := range []string{theirs, ours} {
		testutil.Cmd(t, "ip", "-n", ns, "link", "add", "ao", "type", "veth", "peer", "name", "bo")
		testutil.Cmd(t, "ip", "-n", ns, "link", "set", "ao", "up")
		testutil.Cmd(t, "ip", "-n", ns, "link", "set", "bo", "up")
	}
	for _, l := range lines {
		testutil.Cmd(t, "ip", append([]string{"-n", theirs, "addr", "add"}, strings.Fields(l)...)...)
		nlOK(t, append([]string{"-n", ours, "addr", "add"}, strings.Fields(l)...)...)
	}
	view := func(ns string) (addrs []map[string]any, routes string) {
		var links []struct {
			AddrInfo []map[string]any `json:"addr_info"`
		}
		testutil.IPJSON(t, &links, "-n", ns, "addr", "show", "dev", "ao")
		for _, a := range links[0].AddrInfo {
			if a["scope"] != "link" { // the kernel's own fe80:: differs
				addrs = append(addrs, a)
			}
		}
		return addrs, testutil.Cmd(t, "ip", "-n", ns, "route", "show", "dev", "ao") +
			testutil.Cmd(t, "ip", "-n", ns, "-6", "route", "show", "dev", "ao")
	}
	wantA, wantR := view(theirs)
	gotA, gotR := view(ours)
	if !reflect.DeepEqual(gotA, wantA) {
		g, _ := json.Marshal(gotA)
		w, _ := json.Marshal(wantA)
		t.Errorf("addresses added by nsbox:\n%s\nby ip:\n%s", g, w)
	}
	if gotR != wantR {
		t.Errorf("routes after nsbox:\n%s\nafter ip:\n%s", gotR, wantR)
	}
	// The nodad address is usable at once: not tentative.
	if out := testutil.Cmd(t, "ip", "-n", ours, "-6", "addr", "show", "dev", "ao"); !strings.Contains(out, "fd00:81::1/64 scope global nodad \n") {
		t.Errorf("nodad address: %s", out)
	}

	for _, tc := range []struct{ args, msg string }{
		{"10.85.0.1/24 label bo:x dev ao", `label "bo:x" must be ao or start with "ao:"`},
		{"fd00:85::1/64 brd + dev ao", "brd and label are for IPv4 addresses"},
		{"10.85.0.1/24 brd fd00::1 dev ao", `invalid broadcast "fd00::1"`},
		{"10.85.0.1/24 label dev ao", `unexpected argument "ao"`},
	} {
		code, _, errs := nlRun(t, "", append([]string{"-n", ours, "addr", "add"}, strings.Fields(tc.args)...)...)
		if code != 2 || !strings.Contains(errs, tc.msg) {
			t.Errorf("addr add %s: exit %d %q, want 2 and %q", tc.args, code, errs, tc.msg)
		}
	}
	if out := testutil.Cmd(t, "ip", "-n", ours, "addr", "show", "dev", "ao"); strings.Contains(out, "10.85.") || strings.Contains(out, "fd00:85") {
		t.Errorf("a refused line left an address: %s", out)
	}
}
