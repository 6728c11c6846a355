package rtnl

import (
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

type ipRoute struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Metric   uint32 `json:"metric"`
	Protocol string `json:"protocol"`
	Scope    string `json:"scope"`
}

func ipRoutes(t *testing.T, ns string, fam string) []ipRoute {
	t.Helper()
	var out []ipRoute
	testutil.IPJSON(t, &out, "-d", fam, "-n", ns, "route", "show")
	return out
}

func TestRoutes(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	ctx := testCtx(t)
	if err := c.AddVeth(ctx, "va", "vb", nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"va", "vb"} {
		if err := c.SetUp(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddAddr(ctx, "va", netip.MustParsePrefix("10.9.0.1/24"), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.AddAddr(ctx, "va", netip.MustParsePrefix("fd00:9::1/64"), nil); err != nil {
		t.Fatal(err)
	}
	gw := netip.MustParseAddr("10.9.0.254")
	routes := []Route{
		{Gateway: gw}, // default via gw
		{Dst: netip.MustParsePrefix("10.50.0.0/16"), Dev: "va"}, // device route
		{Dst: netip.MustParsePrefix("10.60.0.0/16"), Gateway: gw, Metric: 50},
		{Dst: netip.MustParsePrefix("fd00:77::/48"), Gateway: netip.MustParseAddr("fd00:9::fe"), Dev: "va"},
	}
	for _, r := range routes {
		if err := c.AddRoute(ctx, r); err != nil {
			t.Fatalf("AddRoute(%v): %v", r, err)
		}
	}
	if err := c.AddRoute(ctx, routes[1]); !errors.Is(err, unix.EEXIST) {
		t.Errorf("AddRoute twice = %v, want EEXIST", err)
	}
	got, err := c.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := append(ipRoutes(t, ns, "-4"), ipRoutes(t, ns, "-6")...)
	if len(got) != len(want) {
		t.Fatalf("Routes: %d routes %v; ip shows %d %+v", len(got), got, len(want), want)
	}
	for i, w := range want {
		g := got[i]
		dst := "default"
		if g.Dst.IsValid() && g.Dst.Bits() > 0 {
			dst = g.Dst.String()
			if g.Dst.Bits() == g.Dst.Addr().BitLen() {
				dst = g.Dst.Addr().String()
			}
		}
		gws := ""
		if g.Gateway.IsValid() {
			gws = g.Gateway.String()
		}
		if dst != w.Dst || gws != w.Gateway || g.Dev != w.Dev || g.Metric != w.Metric {
			t.Errorf("route %d: %v metric %d; ip shows %+v", i, g, g.Metric, w)
		}
	}
	find := func(dst string) *ipRoute {
		for _, r := range ipRoutes(t, ns, "-4") {
			if r.Dst == dst {
				return &r
			}
		}
		return nil
	}
	if r := find("default"); r == nil || r.Gateway != "10.9.0.254" || r.Dev != "va" || r.Protocol != "boot" {
		t.Errorf("default route as ip sees it: %+v", r)
	}
	if r := find("10.50.0.0/16"); r == nil || r.Scope != "link" || r.Dev != "va" {
		t.Errorf("device route as ip sees it: %+v", r)
	}
	if r := find("10.60.0.0/16"); r == nil || r.Metric != 50 {
		t.Errorf("metric route as ip sees it: %+v", r)
	}
	// Replace changes the gateway of the same destination.
	if err := c.ReplaceRoute(ctx, Route{Dst: netip.MustParsePrefix("10.60.0.0/16"), Gateway: netip.MustParseAddr("10.9.0.253"), Metric: 50}); err != nil {
		t.Fatal(err)
	}
	if r := find("10.60.0.0/16"); r == nil || r.Gateway != "10.9.0.253" {
		t.Errorf("after replace: %+v", r)
	}
	for _, r := range []Route{{}, {Dst: netip.MustParsePrefix("10.50.0.0/16"), Dev: "va"}} {
		if err := c.DelRoute(ctx, r); err != nil {
			t.Fatalf("DelRoute(%v): %v", r, err)
		}
	}
	if find("default") != nil || find("10.50.0.0/16") != nil {
		t.Errorf("deleted routes still there: %+v", ipRoutes(t, ns, "-4"))
	}
	if err := c.DelRoute(ctx, Route{Dst: netip.MustParsePrefix("10.51.0.0/16")}); !errors.Is(err, unix.ESRCH) {
		t.Errorf("DelRoute of a missing route = %v, want ESRCH", err)
	}
	if err := c.AddRoute(ctx, Route{Dst: netip.MustParsePrefix("10.52.0.0/16")}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("AddRoute with neither gateway nor device = %v, want EINVAL", err)
	}
}
