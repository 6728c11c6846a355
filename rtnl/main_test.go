package rtnl

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
)

func TestMain(m *testing.M) { os.Exit(testutil.MainWithLeakCheck(m)) }

// testConn makes a throwaway namespace with ip and dials a Conn inside it.
func testConn(t *testing.T) (string, *netns.Handle, *Conn) {
	t.Helper()
	name := testutil.NewNetns(t)
	h, err := netns.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	c, err := Dial(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return name, h, c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ipLink is the part of `ip -j link` output the tests compare.
type ipLink struct {
	Ifindex   int      `json:"ifindex"`
	Ifname    string   `json:"ifname"`
	Flags     []string `json:"flags"`
	MTU       uint32   `json:"mtu"`
	Operstate string   `json:"operstate"`
	LinkType  string   `json:"link_type"`
	Address   string   `json:"address"`
	Master    string   `json:"master"`
	LinkInfo  struct {
		InfoKind string `json:"info_kind"`
	} `json:"linkinfo"`
}

func ipLinks(t *testing.T, ns string, dev ...string) []ipLink {
	t.Helper()
	var out []ipLink
	args := append([]string{"-d", "-n", ns, "link", "show"}, dev...)
	testutil.IPJSON(t, &out, args...)
	return out
}

func ipLinkOne(t *testing.T, ns, dev string) ipLink {
	t.Helper()
	l := ipLinks(t, ns, dev)
	if len(l) != 1 {
		t.Fatalf("ip -n %s link show %s: %d links", ns, dev, len(l))
	}
	return l[0]
}

func hasFlag(fl []string, f string) bool {
	for _, x := range fl {
		if x == f {
			return true
		}
	}
	return false
}
