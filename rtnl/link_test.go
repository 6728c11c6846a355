package rtnl

import (
	"errors"
	"net"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
)

func TestValidateLinkName(t *testing.T) {
	for _, n := range []string{"eth0", "a", "veth-1.2_x", "123456789012345"} {
		if err := ValidateLinkName(n); err != nil {
			t.Errorf("ValidateLinkName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", "1234567890123456", "a/b", "a:b", "a b", "a\tb", "a\x00b", "a\nb",
		"a%d", "a\x1bb", "a\x7fb", "a\xffb"} {
		err := ValidateLinkName(n)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateLinkName(%q) = %v, want ErrInvalidName", n, err)
		}
	}
}

func TestLinksMatchIP(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	ctx := testCtx(t)
	if err := c.AddBridge(ctx, "br0"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddVeth(ctx, "va", "vb", nil); err != nil {
		t.Fatal(err)
	}
	links, err := c.Links(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := ipLinks(t, ns)
	if len(links) != len(want) {
		t.Fatalf("Links: %d links, ip shows %d", len(links), len(want))
	}
	for i, w := range want {
		g := links[i]
		if g.Index != w.Ifindex || g.Name != w.Ifname || g.MTU != w.MTU || g.OperState != w.Operstate ||
			g.HardwareAddr.String() != w.Address || g.Kind != w.LinkInfo.InfoKind {
			t.Errorf("link %d: got %+v, ip -j shows %+v", i, g, w)
		}
		g2, err := c.LinkByName(ctx, w.Ifname)
		if err != nil {
			t.Fatal(err)
		}
		if g2.Index != w.Ifindex {
			t.Errorf("LinkByName(%s).Index = %d, ip shows %d", w.Ifname, g2.Index, w.Ifindex)
		}
		g3, err := c.LinkByIndex(ctx, w.Ifindex)
		if err != nil || g3.Name != w.Ifname {
			t.Errorf("LinkByIndex(%d) = %v, %v; ip shows %s", w.Ifindex, g3.Name, err, w.Ifname)
		}
	}
}

func TestVethPeerInOtherNamespace(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	peerNS := testutil.NewNetns(t)
	ph, err := netns.Open(peerNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	ctx := testCtx(t)
	if err := c.AddVeth(ctx, "hub0", "eth0", ph); err != nil {
		t.Fatal(err)
	}
	if l := ipLinkOne(t, ns, "hub0"); l.LinkInfo.InfoKind != "veth" {
		t.Errorf("hub0 kind %q, want veth", l.LinkInfo.InfoKind)
	}
	if l := ipLinkOne(t, peerNS, "eth0"); l.LinkInfo.InfoKind != "veth" {
		t.Errorf("peer eth0 in %s kind %q, want veth", peerNS, l.LinkInfo.InfoKind)
	}
	if out, _ := testutil.CmdErr("ip", "-n", ns, "link", "show", "eth0"); strings.Contains(out, "eth0") {
		t.Errorf("peer also visible in the first namespace: %s", out)
	}

	// A second pair whose peer name is taken in the peer namespace fails as
	// a whole: no half of it is left behind.
	err = c.AddVeth(ctx, "hub1", "eth0", ph)
	if !errors.Is(err, unix.EEXIST) {
		t.Fatalf("AddVeth with a taken peer name: %v, want EEXIST", err)
	}
	if out, _ := testutil.CmdErr("ip", "-n", ns, "link", "show", "hub1"); strings.Contains(out, "hub1") {
		t.Errorf("half veth hub1 left behind: %s", out)
	}
	// Existing name: EEXIST and the existing link is untouched.
	before := ipLinkOne(t, ns, "hub0")
	if err := c.AddDummy(ctx, "hub0"); !errors.Is(err, unix.EEXIST) {
		t.Errorf("AddDummy over an existing veth: %v, want EEXIST", err)
	}
	if after := ipLinkOne(t, ns, "hub0"); after.Ifindex != before.Ifindex || after.LinkInfo.InfoKind != "veth" {
		t.Errorf("existing link changed: %+v -> %+v", before, after)
	}
	// Deleting one end removes both.
	if err := c.DeleteLink(ctx, "hub0"); err != nil {
		t.Fatal(err)
	}
	if l := ipLinks(t, peerNS); len(l) != 1 || l[0].Ifname != "lo" {
		t.Errorf("after delete, peer namespace still has %+v", l)
	}
}

func TestSetLink(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	other := testutil.NewNetns(t)
	oh, err := netns.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	defer oh.Close()
	ctx := testCtx(t)
	for _, f := range []func() error{
		func() error { return c.AddVeth(ctx, "d0", "d0p", nil) },
		func() error { return c.AddBridge(ctx, "br0") },
		func() error { return c.SetUp(ctx, "d0") },
		func() error { return c.SetMTU(ctx, "d0", 1400) },
		func() error { return c.SetHardwareAddr(ctx, "d0", net.HardwareAddr{0x02, 0, 0, 0, 0x12, 0x34}) },
		func() error { return c.SetMaster(ctx, "d0", "br0") },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	l := ipLinkOne(t, ns, "d0")
	if !hasFlag(l.Flags, "UP") || l.MTU != 1400 || l.Address != "02:00:00:00:12:34" || l.Master != "br0" {
		t.Fatalf("ip shows %+v; want UP, mtu 1400, 02:00:00:00:12:34, master br0", l)
	}
	g, err := c.LinkByName(ctx, "d0")
	if err != nil || g.Master != "br0" || g.Flags&net.FlagUp == 0 {
		t.Errorf("LinkByName(d0) = %+v, %v", g, err)
	}
	if err := c.SetNoMaster(ctx, "d0"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDown(ctx, "d0"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetName(ctx, "d0", "d1"); err != nil {
		t.Fatal(err)
	}
	l = ipLinkOne(t, ns, "d1")
	if hasFlag(l.Flags, "UP") || l.Master != "" {
		t.Errorf("after nomaster/down/rename ip shows %+v", l)
	}
	// Several settings in one request, then a move by fd.
	up := true
	if err := c.SetLink(ctx, "d1", LinkSettings{Up: &up, MTU: 1300, NetNS: oh}); err != nil {
		t.Fatal(err)
	}
	l = ipLinkOne(t, other, "d1")
	if l.MTU != 1300 || !hasFlag(l.Flags, "UP") {
		t.Errorf("moved link in %s: %+v, want mtu 1300 and UP", other, l)
	}
	if _, err := c.LinkByName(ctx, "d1"); !errors.Is(err, unix.ENODEV) {
		t.Errorf("LinkByName of a moved link: %v, want ENODEV", err)
	}
}

func TestLinkErrors(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	ctx := testCtx(t)
	if err := c.SetUp(ctx, "nosuch0"); !errors.Is(err, unix.ENODEV) {
		t.Errorf("SetUp(nosuch0) = %v, want ENODEV", err)
	}
	if err := c.DeleteLink(ctx, "nosuch0"); !errors.Is(err, unix.ENODEV) {
		t.Errorf("DeleteLink(nosuch0) = %v, want ENODEV", err)
	}
	if err := c.AddVeth(ctx, "va", "vb", nil); err != nil {
		t.Fatal(err)
	}
	// The kernel explains a refused MTU in its extended ack.
	err := c.SetMTU(ctx, "va", 70000)
	var re *Error
	if !errors.As(err, &re) || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("SetMTU(70000) = %v, want *Error wrapping EINVAL", err)
	}
	if re.Message == "" || !strings.Contains(err.Error(), re.Message) {
		t.Errorf("no extended-ack message in %q", err)
	}
	if !strings.HasPrefix(err.Error(), "rtnl: set mtu va: ") {
		t.Errorf("error %q does not name the operation and the device", err)
	}
	if l := ipLinkOne(t, ns, "va"); l.MTU != 1500 {
		t.Errorf("refused MTU changed the link: %d", l.MTU)
	}
	if err := c.AddDummy(ctx, "bad/name"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("AddDummy(bad/name) = %v", err)
	}
}

// TestAddDummy checks AddDummy against what ip sees; on a kernel built
// without the dummy driver, both must fail and nsbox must carry the
// kernel's reason.
func TestAddDummy(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	ctx := testCtx(t)
	_, ipErr := testutil.CmdErr("ip", "-n", ns, "link", "add", "ipdum0", "type", "dummy")
	err := c.AddDummy(ctx, "dum0")
	if ipErr != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), "Unknown device type") {
			t.Fatalf("kernel lacks dummy (ip: %v); AddDummy = %v, want EOPNOTSUPP with the kernel's message", ipErr, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if l := ipLinkOne(t, ns, "dum0"); l.LinkInfo.InfoKind != "dummy" {
		t.Errorf("dum0 kind %q", l.LinkInfo.InfoKind)
	}
}

// TestNetlinkEscapeHatch: Netlink() is a working rtnetlink connection in
// the same namespace as the Conn (bridge/ builds on it).
func TestNetlinkEscapeHatch(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	if err := c.AddBridge(testCtx(t), "brx0"); err != nil {
		t.Fatal(err)
	}
	rt := c.Netlink()
	if rt == nil || c.Netlink() != rt {
		t.Fatalf("Netlink() = %v, want one connection", rt)
	}
	msgs, err := rt.Link.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range msgs {
		names = append(names, m.Attributes.Name)
	}
	var want []string
	for _, l := range ipLinks(t, ns) {
		want = append(want, l.Ifname)
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("Netlink().Link.List() = %v; ip shows %v", names, want)
	}
}
