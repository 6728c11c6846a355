package rtnl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// nlmsg encodes one netlink message (header + body, padded to 4 bytes).
func nlmsg(typ uint16, flags netlink.HeaderFlags, seq uint32, body []byte) []byte {
	l := unix.SizeofNlMsghdr + len(body)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint32(b[0:], uint32(l))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], uint16(flags))
	binary.NativeEndian.PutUint32(b[8:], seq)
	copy(b[unix.SizeofNlMsghdr:], body)
	return b
}

// errBody is an NLMSG_ERROR body: the code, the request's header (capped)
// and an extended-ack message attribute.
func errBody(t *testing.T, code int32, msg string) []byte {
	t.Helper()
	b := make([]byte, 4+unix.SizeofNlMsghdr)
	binary.NativeEndian.PutUint32(b[0:], uint32(code))
	binary.NativeEndian.PutUint32(b[4:], unix.SizeofNlMsghdr)
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NLMSGERR_ATTR_MSG, msg)
	attrs, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return append(b, attrs...)
}

// TestParseReplies: the raw path keeps the messages of its own sequence,
// skips stale ones, reads on through a multi-part reply, stops at DONE, and
// turns an NLMSG_ERROR into the errno with the kernel's message.
func TestParseReplies(t *testing.T) {
	var out []netlink.Message
	stale := nlmsg(unix.RTM_NEWLINK, 0, 6, []byte{1, 2, 3, 4})
	part := nlmsg(unix.RTM_NEWLINK, netlink.Multi, 7, []byte{5, 6, 7, 8})
	more, err := parseReplies(append(stale, part...), 7, &out)
	if err != nil || !more || len(out) != 1 || out[0].Data[0] != 5 {
		t.Fatalf("first part: more=%v err=%v out=%+v; want one message and more", more, err, out)
	}
	more, err = parseReplies(stale, 7, &out)
	if err != nil || !more || len(out) != 1 {
		t.Fatalf("stale datagram: more=%v err=%v len=%d; want it skipped and more", more, err, len(out))
	}
	done := nlmsg(unix.NLMSG_DONE, netlink.Multi, 7, []byte{0, 0, 0, 0})
	more, err = parseReplies(append(part, done...), 7, &out)
	if err != nil || more || len(out) != 2 {
		t.Fatalf("last part: more=%v err=%v len=%d; want done with 2 messages", more, err, len(out))
	}

	out = nil
	refusal := nlmsg(unix.NLMSG_ERROR, netlink.Capped|netlink.AcknowledgeTLVs, 9, errBody(t, -int32(unix.EEXIST), "name in use"))
	_, err = parseReplies(refusal, 9, &out)
	var oe *netlink.OpError
	if !errors.As(err, &oe) || !errors.Is(err, unix.EEXIST) || oe.Message != "name in use" {
		t.Fatalf("refusal: err=%#v; want EEXIST with message \"name in use\"", err)
	}
	ack := nlmsg(unix.NLMSG_ERROR, netlink.Capped, 10, errBody(t, 0, "")[:4+unix.SizeofNlMsghdr])
	more, err = parseReplies(ack, 10, &out)
	if err != nil || more || len(out) != 1 || out[0].Header.Type != netlink.Error {
		t.Fatalf("ack: more=%v err=%v out=%+v; want one Error message, done", more, err, out)
	}
	if _, err := parseReplies([]byte{200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1, &out); err == nil {
		t.Fatal("malformed length accepted")
	}
}

// TestExecuteRealKernel: on a real socket the raw path returns the
// kernel's refusal as errno plus the usual error text, and a link dump that
// spans many datagrams whole: the same links ip lists.
func TestExecuteRealKernel(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	if c.raw == nil {
		t.Fatal("a real socket has no raw path")
	}
	ctx := testCtx(t)
	if err := c.AddBridge(ctx, "exbr0"); err != nil {
		t.Fatal(err)
	}
	err := c.AddBridge(ctx, "exbr0")
	if !errors.Is(err, unix.EEXIST) || !strings.HasPrefix(err.Error(), "rtnl: add bridge exbr0: file exists") {
		t.Fatalf("second add: %v; want rtnl: add bridge exbr0: file exists", err)
	}
	for i := 0; i < 150; i++ {
		if err := c.AddVeth(ctx, fmt.Sprintf("exa%d", i), fmt.Sprintf("exb%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	links, err := c.Links(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := ipLinks(t, ns)
	if len(links) != len(want) || len(want) != 302 { // lo, exbr0, 150 veth pairs
		t.Fatalf("Links: %d links; ip lists %d; want 302", len(links), len(want))
	}
	for i := range want {
		if links[i].Name != want[i].Ifname || links[i].Index != want[i].Ifindex {
			t.Fatalf("link %d: %s/%d; ip says %s/%d", i, links[i].Name, links[i].Index, want[i].Ifname, want[i].Ifindex)
		}
	}
	// Execute itself, as bridge uses it: a get by name for a missing link.
	req := make([]byte, unix.SizeofIfInfomsg)
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, "nosuchdev")
	attrs, _ := ae.Encode()
	if _, err := c.Execute(ctx, unix.RTM_GETLINK, 0, append(req, attrs...)); !errors.Is(err, unix.ENODEV) {
		t.Fatalf("Execute get nosuchdev: %v; want ENODEV", err)
	}
}

// TestLinkIndexIoctl: the ioctl lookup gives the index ip shows, a missing
// name fails with ENODEV, and the callers that use it (a master by name, an
// address) keep their error texts.
func TestLinkIndexIoctl(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	ctx := testCtx(t)
	if err := c.AddBridge(ctx, "ixbr0"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddVeth(ctx, "ixa", "ixb", nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lo", "ixbr0", "ixb"} {
		got, err := c.linkIndex(ctx, name)
		if want := ipLinkOne(t, ns, name).Ifindex; err != nil || got != want {
			t.Errorf("linkIndex(%s) = %d, %v; ip says %d", name, got, err, want)
		}
	}
	if _, err := c.linkIndex(ctx, "nosuch0"); !errors.Is(err, unix.ENODEV) {
		t.Errorf("linkIndex(nosuch0) = %v, want ENODEV", err)
	}
	err := c.SetMaster(ctx, "ixa", "nosuchbr")
	if !errors.Is(err, unix.ENODEV) || err.Error() != "rtnl: set master ixa: master nosuchbr: no such device" {
		t.Errorf("SetMaster to a missing bridge: %v", err)
	}
	if err := c.SetMaster(ctx, "ixa", "ixbr0"); err != nil {
		t.Fatal(err)
	}
	if m := ipLinkOne(t, ns, "ixa").Master; m != "ixbr0" {
		t.Errorf("after SetMaster ip shows master %q, want ixbr0", m)
	}
	p := netip.MustParsePrefix("10.9.8.7/24")
	err = c.AddAddr(ctx, "nosuch0", p, nil)
	if err == nil || err.Error() != "rtnl: add addr 10.9.8.7/24 dev nosuch0: no such device" {
		t.Errorf("AddAddr on a missing device: %v", err)
	}
}

// TestExecuteDeadline: a request the kernel does not answer (a change
// without NLM_F_ACK) waits in the poller until ctx's deadline, and the
// connection works normally afterwards.
func TestExecuteDeadline(t *testing.T) {
	testutil.RequirePriv(t)
	ns, _, c := testConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(req[4:8], 1) // ifindex 1: lo
	start := time.Now()
	_, err := c.Execute(ctx, unix.RTM_NEWLINK, 0, req) // no change, no ack
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("unanswered request: %v; want a deadline error", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("unanswered request returned after %v, before its deadline", d)
	}
	l, err := c.LinkByName(testCtx(t), "lo")
	if err != nil || l.Index != ipLinkOne(t, ns, "lo").Ifindex {
		t.Fatalf("after the deadline: LinkByName(lo) = %+v, %v", l, err)
	}
	if _, err := c.LinkByName(context.Background(), "lo"); err != nil {
		t.Fatalf("without a deadline: %v", err)
	}
}
