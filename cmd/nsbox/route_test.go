package main

import (
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

func TestRouteCLIMatchesIP(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	for _, line := range [][]string{
		{"link", "add", "va", "type", "veth", "peer", "name", "vb"},
		{"link", "set", "va", "up"},
		{"link", "set", "vb", "up"},
		{"addr", "add", "10.7.0.1/24", "dev", "va"},
		{"addr", "add", "fd00:7::1/64", "dev", "va"},
		{"route", "add", "default", "via", "10.7.0.254"},
		{"route", "add", "10.70.0.0/16", "dev", "va"},
		{"route", "add", "10.71.0.0/16", "via", "10.7.0.253", "metric", "30"},
		{"route", "add", "10.72.0.5", "dev", "va", "src", "10.7.0.1"},
		{"route", "add", "fd00:70::/48", "via", "fd00:7::fe", "dev", "va"},
	} {
		nlOK(t, append([]string{"-n", ns}, line...)...)
	}
	out := testutil.Cmd(t, "ip", "-n", ns, "route")
	for _, want := range []string{
		"default via 10.7.0.254 dev va",
		"10.70.0.0/16 dev va scope link",
		"10.71.0.0/16 via 10.7.0.253 dev va metric 30",
		"10.72.0.5 dev va scope link src 10.7.0.1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ip route lacks %q:\n%s", want, out)
		}
	}
	nlCompareJSON(t, ns, []string{"route", "show"}, []string{"route", "list"})
	nlCompareJSON(t, ns, []string{"-6", "route", "show"}, []string{"route", "list", "-6"})
	if got, want := nlOK(t, "-n", ns, "route"), testutil.Cmd(t, "ip", "-n", ns, "route"); want != got {
		t.Errorf("nsbox route:\n%s\nip route:\n%s", got, want)
	}
	nlOK(t, "-n", ns, "route", "replace", "10.71.0.0/16", "via", "10.7.0.252", "metric", "30")
	nlOK(t, "-n", ns, "route", "del", "default")
	nlOK(t, "-n", ns, "route", "del", "10.70.0.0/16", "dev", "va")
	out = testutil.Cmd(t, "ip", "-n", ns, "route")
	if strings.Contains(out, "default") || strings.Contains(out, "10.70.0.0") || !strings.Contains(out, "10.71.0.0/16 via 10.7.0.252") {
		t.Errorf("after replace and del, ip route shows:\n%s", out)
	}
	if code, _, errs := nlRun(t, "", "-n", ns, "route", "del", "10.99.0.0/16"); code != 1 || !strings.Contains(errs, "no such process") {
		t.Errorf("del of a missing route: exit %d %q", code, errs)
	}
}
