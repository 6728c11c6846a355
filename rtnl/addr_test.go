package rtnl

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

type ipAddrLink struct {
	Ifname   string `json:"ifname"`
	AddrInfo []struct {
		Family            string `json:"family"`
		Local             string `json:"local"`
		Prefixlen         int    `json:"prefixlen"`
		Scope             string `json:"scope"`
		ValidLifeTime     uint64 `json:"valid_life_time"`
		PreferredLifeTime uint64 `json:"preferred_life_time"`
	} `json:"addr_info"`
}

func ipAddrs(t *testing.T, ns, dev string) map[string]ipAddrLink {
	t.Helper()
	var out []ipAddrLink
	testutil.IPJSON(t, &out, "-n", ns, "addr", "show", "dev", dev)
	m := map[string]ipAddrLink{}
	for _, l := range out {
		m[l.Ifname] = l
	}
	return m
}

func TestAddrs(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	ctx := testCtx(t)
	if err := c.AddVeth(ctx, "va", "vb", nil); err != nil {
		t.Fatal(err)
	}
	v4 := netip.MustParsePrefix("10.20.30.1/24")
	v6 := netip.MustParsePrefix("fd00:20::1/64")
	lease := netip.MustParsePrefix("192.168.77.5/24")
	for _, p := range []netip.Prefix{v4, v6} {
		if err := c.AddAddr(ctx, "va", p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddAddr(ctx, "va", lease, &AddrOptions{ValidLifetime: 600 * time.Second, PreferredLifetime: 300 * time.Second}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Addrs(ctx, "va")
	if err != nil {
		t.Fatal(err)
	}
	ip := ipAddrs(t, ns, "va")["va"].AddrInfo
	if len(got) != len(ip) {
		t.Fatalf("Addrs: %v; ip shows %+v", got, ip)
	}
	for i, w := range ip {
		g := got[i]
		if g.Prefix.Addr().String() != w.Local || g.Prefix.Bits() != w.Prefixlen || g.Dev != "va" {
			t.Errorf("addr %d: %v dev %s; ip shows %s/%d", i, g.Prefix, g.Dev, w.Local, w.Prefixlen)
		}
		if w.Local == "192.168.77.5" {
			if w.ValidLifeTime > 600 || w.ValidLifeTime < 590 || w.PreferredLifeTime > 300 {
				t.Errorf("ip shows lifetimes valid %d preferred %d, want 600/300", w.ValidLifeTime, w.PreferredLifeTime)
			}
			if g.ValidLifetime < 590*time.Second || g.ValidLifetime > 600*time.Second {
				t.Errorf("Addrs valid lifetime %v", g.ValidLifetime)
			}
		} else if g.ValidLifetime != 0 {
			t.Errorf("permanent address %v has lifetime %v", g.Prefix, g.ValidLifetime)
		}
	}
	// Existing address: EEXIST; Replace updates the lifetime in place.
	if err := c.AddAddr(ctx, "va", v4, nil); !errors.Is(err, unix.EEXIST) {
		t.Errorf("AddAddr twice = %v, want EEXIST", err)
	}
	if err := c.ReplaceAddr(ctx, "va", lease, &AddrOptions{ValidLifetime: 1200 * time.Second}); err != nil {
		t.Fatal(err)
	}
	for _, a := range ipAddrs(t, ns, "va")["va"].AddrInfo {
		if a.Local == "192.168.77.5" && (a.ValidLifeTime < 1190 || a.ValidLifeTime > 1200) {
			t.Errorf("after Replace ip shows valid %d, want 1200", a.ValidLifeTime)
		}
	}
	if err := c.DelAddr(ctx, "va", v4); err != nil {
		t.Fatal(err)
	}
	if err := c.DelAddr(ctx, "va", v4); !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Errorf("DelAddr twice = %v, want EADDRNOTAVAIL", err)
	}
	for _, a := range ipAddrs(t, ns, "va")["va"].AddrInfo {
		if a.Local == "10.20.30.1" {
			t.Errorf("deleted address still there")
		}
	}
	// All devices: each address carries its device name.
	if err := c.AddAddr(ctx, "vb", netip.MustParsePrefix("10.20.30.2/24"), nil); err != nil {
		t.Fatal(err)
	}
	all, err := c.Addrs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, a := range all {
		seen[a.Prefix.String()] = a.Dev
	}
	if seen["10.20.30.2/24"] != "vb" || seen["fd00:20::1/64"] != "va" || seen["127.0.0.1/8"] != "lo" {
		t.Errorf("Addrs(all) = %v", seen)
	}
	if err := c.FlushAddrs(ctx, "va"); err != nil {
		t.Fatal(err)
	}
	if a := ipAddrs(t, ns, "va")["va"].AddrInfo; len(a) != 0 {
		t.Errorf("after flush ip shows %+v", a)
	}
	if err := c.AddAddr(ctx, "nosuch0", v4, nil); !errors.Is(err, unix.ENODEV) {
		t.Errorf("AddAddr on a missing device = %v, want ENODEV", err)
	}
}
