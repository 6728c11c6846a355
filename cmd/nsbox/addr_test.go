package main

import (
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

func TestAddrCLIMatchesIP(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	nlOK(t, "-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb")
	nlOK(t, "-n", ns, "addr", "add", "10.5.0.1/24", "dev", "va")
	nlOK(t, "-n", ns, "addr", "add", "10.5.0.9/24", "dev", "va") // a secondary
	nlOK(t, "-n", ns, "addr", "add", "192.168.5.5", "dev", "vb") // bare: /32
	nlOK(t, "-n", ns, "addr", "add", "fd00:5::1/64", "dev", "va")

	var got []struct {
		Ifname   string `json:"ifname"`
		AddrInfo []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	testutil.IPJSON(t, &got, "-n", ns, "addr", "show", "dev", "vb")
	if len(got) != 1 || len(got[0].AddrInfo) != 1 || got[0].AddrInfo[0].Local != "192.168.5.5" || got[0].AddrInfo[0].Prefixlen != 32 {
		t.Fatalf("ip sees vb as %+v", got)
	}
	// Links stay down, so IPv6 DAD flags cannot change between the calls.
	nlCompareJSON(t, ns, []string{"addr", "show"}, []string{"addr", "list"})
	nlCompareJSON(t, ns, []string{"addr", "show", "dev", "va"}, []string{"addr", "show", "dev", "va"})
	if got, want := nlOK(t, "-n", ns, "addr"), testutil.Cmd(t, "ip", "-n", ns, "addr"); want != got {
		t.Errorf("nsbox addr:\n%s\nip addr:\n%s", got, want)
	}

	// Lifetimes reach the kernel.
	nlOK(t, "-n", ns, "addr", "add", "10.6.0.1/24", "dev", "vb", "valid_lft", "300", "preferred_lft", "100")
	out := testutil.Cmd(t, "ip", "-n", ns, "addr", "show", "dev", "vb")
	if !strings.Contains(out, "10.6.0.1/24 scope global dynamic vb") || !strings.Contains(out, "preferred_lft 100sec") && !strings.Contains(out, "preferred_lft 99sec") {
		t.Errorf("ip shows %s; want the lease lifetimes", out)
	}

	nlOK(t, "-n", ns, "addr", "del", "10.5.0.9/24", "dev", "va")
	if out := testutil.Cmd(t, "ip", "-n", ns, "addr", "show", "dev", "va"); strings.Contains(out, "10.5.0.9") || !strings.Contains(out, "10.5.0.1/24") {
		t.Errorf("after del: %s", out)
	}
	nlOK(t, "-n", ns, "addr", "flush", "dev", "va")
	if out := testutil.Cmd(t, "ip", "-n", ns, "addr", "show", "dev", "va"); strings.Contains(out, "inet") {
		t.Errorf("after flush: %s", out)
	}
	if code, _, errs := nlRun(t, "", "-n", ns, "addr", "del", "10.5.0.1/24", "dev", "va"); code != 1 || !strings.Contains(errs, "cannot assign requested address") {
		t.Errorf("del of a missing address: exit %d %q", code, errs)
	}
}
