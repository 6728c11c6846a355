package rtnl

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestAddAddrNoDAD: an IPv6 address added with NoDAD on an up link is
// usable at once (ip shows nodad and no tentative flag); without it the
// same link holds it tentative.
func TestAddAddrNoDAD(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	ctx := testCtx(t)
	if err := c.AddVeth(ctx, "na", "nb", nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"na", "nb"} {
		if err := c.SetUp(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddAddr(ctx, "na", netip.MustParsePrefix("fd00:21::1/64"), &AddrOptions{NoDAD: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddAddr(ctx, "na", netip.MustParsePrefix("fd00:21::2/64"), nil); err != nil {
		t.Fatal(err)
	}
	out := testutil.Cmd(t, "ip", "-n", ns, "-6", "-o", "addr", "show", "dev", "na", "scope", "global")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case strings.Contains(l, "fd00:21::1/64"):
			if !strings.Contains(l, "nodad") || strings.Contains(l, "tentative") {
				t.Errorf("NoDAD address: %q", l)
			}
		case strings.Contains(l, "fd00:21::2/64"):
			if !strings.Contains(l, "tentative") {
				t.Errorf("address with DAD not tentative (the check is void): %q", l)
			}
		}
	}
}
