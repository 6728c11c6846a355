package main

import (
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestRouteTablesTypesAndSelectors adds routes with table, proto, scope
// and the blackhole/unreachable types through nsbox, checks them with ip,
// compares every show selector and route get with ip byte for byte, and
// flushes by selector.
func TestRouteTablesTypesAndSelectors(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "lo", "up")
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "ra", "type", "veth", "peer", "name", "rb")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "10.71.0.1/24", "dev", "ra")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "fd00:71::1/64", "dev", "ra", "nodad")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "ra", "up")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "rb", "up")

	for _, line := range []string{
		"route add default via 10.71.0.2",
		"route add blackhole 10.72.0.0/16",
		"route add unreachable 10.73.0.0/16 metric 7",
		"route add 10.74.0.0/16 dev ra table 100 proto static",
		"route add 10.75.0.0/16 dev ra scope host proto 77",
		"r a 10.76.0.0/16 dev ra proto dhcp",
	} {
		nlOK(t, append([]string{"-n", ns}, strings.Fields(line)...)...)
	}
	var all []map[string]any
	testutil.IPJSON(t, &all, "-n", ns, "route", "show", "table", "all")
	want := map[string]string{
		"10.72.0.0/16": "blackhole", "10.73.0.0/16": "unreachable", "10.74.0.0/16": "100/static",
		"10.75.0.0/16": "host/77", "10.76.0.0/16": "dhcp",
	}
	for _, r := range all {
		dst, _ := r["dst"].(string)
		w, ok := want[dst]
		if !ok {
			continue
		}
		var got string
		switch dst {
		case "10.72.0.0/16", "10.73.0.0/16":
			got, _ = r["type"].(string)
		case "10.74.0.0/16":
			got = r["table"].(string) + "/" + r["protocol"].(string)
		case "10.75.0.0/16":
			got = r["scope"].(string) + "/" + r["protocol"].(string)
		default:
			got, _ = r["protocol"].(string)
		}
		if got != w {
			t.Errorf("ip sees %s as %v, want %s", dst, r, w)
		}
		delete(want, dst)
	}
	if len(want) != 0 {
		t.Fatalf("ip route show table all lacks %v: %v", want, all)
	}

	for _, args := range []string{
		"route", "route show default", "route show table 100", "route show table all",
		"route show proto kernel", "route show proto static table 100", "route show scope link",
		"route show dev ra", "route show type blackhole", "route show 10.72.0.0/16", "route show to 10.76.0.0/16",
		"route show table main", "route show exact default", "route show via 10.71.0.2", "-d route",
		"-d route show table all", "-j route show table all", "-6 route", "-6 route show table local",
		"route get 10.71.0.2", "route get 10.99.1.1", "route get 127.0.0.1", "-j route get 10.99.1.1",
		"route get 10.71.0.2 from 10.71.0.1", "-j -p route get 10.71.0.2", "r s", "ro li table 100",
		"route get fd00:71::9", "-j route get fd00:71::9", "route get ::1",
	} {
		words := strings.Fields(args)
		got := nlOK(t, append([]string{"-n", ns}, words...)...)
		want := testutil.Cmd(t, "ip", append([]string{"-n", ns}, words...)...)
		if got != want {
			t.Errorf("nsbox %s differs from ip:\n%s---\n%s", args, got, want)
		}
	}

	// route get of a blackholed address fails as the kernel says.
	if code, _, errs := nlRun(t, "", "-n", ns, "route", "get", "10.72.1.1"); code != 1 || !strings.Contains(errs, "invalid argument") {
		t.Errorf("route get into a blackhole: exit %d %q", code, errs)
	}
	// flush needs a selector, as ip route flush does.
	if code, _, errs := nlRun(t, "", "-n", ns, "route", "flush"); code != 2 || !strings.Contains(errs, "needs a selector") {
		t.Errorf("route flush alone: exit %d %q", code, errs)
	}
	nlOK(t, "-n", ns, "route", "flush", "table", "100")
	nlOK(t, "-n", ns, "route", "flush", "proto", "77")
	nlOK(t, "-n", ns, "route", "del", "blackhole", "10.72.0.0/16")
	if out := testutil.Cmd(t, "ip", "-n", ns, "route", "show", "table", "all"); strings.Contains(out, "10.74.0.0") ||
		strings.Contains(out, "10.75.0.0") || strings.Contains(out, "10.72.0.0") || !strings.Contains(out, "10.76.0.0/16") {
		t.Errorf("after flush table 100, flush proto 77, del blackhole: %s", out)
	}
	nlOK(t, "-n", ns, "route", "flush", "dev", "ra")
	if out := testutil.Cmd(t, "ip", "-n", ns, "route", "show", "dev", "ra"); out != "" {
		t.Errorf("after flush dev ra: %q", out)
	}
}
