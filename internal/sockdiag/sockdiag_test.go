package sockdiag

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
)

func TestMain(m *testing.M) { os.Exit(testutil.MainWithLeakCheck(m)) }

func TestRequestBytes(t *testing.T) {
	// struct inet_diag_req_v2: family, protocol (6), ext, pad, the states
	// mask (FIN_WAIT1, FIN_WAIT2, LAST_ACK, CLOSING: 0x0a30), a zero
	// socket id.
	want := make([]byte, 56)
	copy(want, []byte{2, 6, 0, 0})
	binary.NativeEndian.PutUint32(want[4:], 0x0a30)
	if got := request(2); !bytes.Equal(got, want) {
		t.Errorf("request(AF_INET) = %x, want %x", got, want)
	}
}

func diagMsg(state, timer uint8, inode uint32) []byte {
	b := make([]byte, msgLen)
	b[0], b[1], b[2] = 2, state, timer
	binary.NativeEndian.PutUint32(b[68:], inode)
	return b
}

func TestIsOrphan(t *testing.T) {
	for _, c := range []struct {
		name  string
		msg   []byte
		want  bool
		error bool
	}{
		{"fin-wait-1 orphan", diagMsg(stateFinWait1, 1, 0), true, false},
		{"last-ack orphan", diagMsg(stateLastAck, 1, 0), true, false},
		{"closing orphan", diagMsg(stateClosing, 1, 0), true, false},
		{"fin-wait-2 full socket", diagMsg(stateFinWait2, 2, 0), true, false},
		{"fin-wait-2 timewait socket", diagMsg(stateFinWait2, timerTimeWait, 0), false, false},
		{"fin-wait-1 held by a process", diagMsg(stateFinWait1, 1, 4242), false, false},
		{"established", diagMsg(1, 0, 0), false, false},
		{"time-wait", diagMsg(6, timerTimeWait, 0), false, false},
		{"short", diagMsg(stateFinWait1, 1, 0)[:40], false, true},
	} {
		got, err := isOrphan(c.msg)
		if (err != nil) != c.error || got != c.want {
			t.Errorf("%s: isOrphan = %v, %v; want %v, error %v", c.name, got, err, c.want, c.error)
		}
	}
}

func FuzzIsOrphan(f *testing.F) {
	f.Add(diagMsg(stateFinWait1, 1, 0))
	f.Add(diagMsg(stateFinWait2, timerTimeWait, 0))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		orphan, err := isOrphan(b)
		if err != nil && orphan {
			t.Fatal("an error and an orphan")
		}
		if len(b) >= msgLen && err != nil {
			t.Fatalf("a full message refused: %v", err)
		}
	})
}

// labNetns makes a namespace of the test's own with lo up (the tools
// must be there) and opens it; ctx bounds the test's waits to 10 s.
func labNetns(t *testing.T, tools ...string) (string, *netns.Handle, context.Context) {
	t.Helper()
	testutil.RequirePriv(t)
	for _, tool := range tools {
		testutil.RequireTool(t, tool)
	}
	name := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", name, "link", "set", "lo", "up")
	h, err := netns.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return name, h, ctx
}

// In a namespace of its own, a client connects over lo and exits (closes)
// while nft drops its FINs: its socket is an orphan in FIN_WAIT1, which ss
// shows with inode 0; once the FINs pass, it is gone.
func TestOrphansSeesAnUnacknowledgedFIN(t *testing.T) {
	name, h, ctx := labNetns(t, "nft", "ss")
	if n, err := Orphans(ctx, h); err != nil || n != 0 {
		t.Fatalf("a new namespace: Orphans = %d, %v; want 0", n, err)
	}
	orphanIn(t, name, h, 7788)
	ss := testutil.Cmd(t, "ip", "netns", "exec", name, "ss", "-tanoe", "state", "fin-wait-1")
	if !strings.Contains(ss, "127.0.0.1:7788") {
		t.Fatalf("ss shows no FIN_WAIT1 socket: %s", ss)
	}
	if n, err := Orphans(ctx, h); err != nil || n != 1 {
		t.Fatalf("Orphans = %d, %v; want 1 (ss: %s)", n, err, ss)
	}
	if left, _, err := Wait(ctx, h, 100*time.Millisecond, 10*time.Millisecond); err != nil || left != 1 {
		t.Fatalf("Wait with the FINs dropped = %d, %v; want 1 left", left, err)
	}
	testutil.Cmd(t, "ip", "netns", "exec", name, "nft", "delete", "table", "inet", "dropfin")
	// The kernel retransmits the FIN (RTO doubling from 200 ms): bounded.
	left, _, err := Wait(ctx, h, 8*time.Second, 10*time.Millisecond)
	if err != nil || left != 0 {
		t.Fatalf("Wait after the FINs pass = %d, %v; want 0", left, err)
	}
	if ss := testutil.Cmd(t, "ip", "netns", "exec", name, "ss", "-tanH", "state", "fin-wait-1"); strings.TrimSpace(ss) != "" {
		t.Errorf("Orphans saw none, ss still shows FIN_WAIT1: %s", ss)
	}
}

func TestDestroyRequestBytes(t *testing.T) {
	m := diagMsg(stateLastAck, 1, 0)
	for i := 4; i < 4+sockIDLen; i++ {
		m[i] = byte(i)
	}
	got := destroyRequest(m)
	want := make([]byte, reqLen)
	want[0], want[1] = 2, 6
	binary.NativeEndian.PutUint32(want[4:], 1<<stateLastAck)
	copy(want[8:], m[4:52])
	if !bytes.Equal(got, want) {
		t.Errorf("destroyRequest = %x, want %x", got, want)
	}
}

// An orphan whose FINs never get through (nft drops them) is destroyed by
// Abort: ss no longer shows it, and the peer gets a reset.
func TestAbortEndsAnOrphan(t *testing.T) {
	name, h, ctx := labNetns(t, "nft", "ss")
	s := orphanIn(t, name, h, 7789)
	if n, err := Orphans(ctx, h); err != nil || n != 1 {
		t.Fatalf("Orphans = %d, %v; want 1", n, err)
	}
	if n, err := Abort(ctx, h); err != nil || n != 1 {
		t.Fatalf("Abort = %d, %v; want 1", n, err)
	}
	if ss := testutil.Cmd(t, "ip", "netns", "exec", name, "ss", "-tanH", "state", "fin-wait-1"); strings.TrimSpace(ss) != "" {
		t.Errorf("ss still shows the orphan after Abort: %s", ss)
	}
	if n, err := Orphans(ctx, h); err != nil || n != 0 {
		t.Errorf("Orphans after Abort = %d, %v; want 0", n, err)
	}
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the peer's read after Abort: %v, want a reset", err)
	}
}

// orphanIn makes an orphan in namespace name (h): nft drops the FINs sent
// to port, a connection to 127.0.0.1:port is accepted and its client end
// closed, so that end stays in FIN_WAIT1 with no socket of a process. It
// returns the accepted end (closed with the test, as the listener).
func orphanIn(t *testing.T, name string, h *netns.Handle, port int) net.Conn {
	t.Helper()
	s, _ := orphanAndListener(t, name, h, port)
	return s
}

// orphanAndListener is orphanIn, also returning the listener.
func orphanAndListener(t *testing.T, name string, h *netns.Handle, port int) (net.Conn, net.Listener) {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "dropfin.nft")
	if err := os.WriteFile(rules, []byte(fmt.Sprintf(`table inet dropfin {
	chain out {
		type filter hook output priority 0; policy accept;
		tcp dport %d tcp flags & fin == fin drop
	}
}
`, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Cmd(t, "ip", "netns", "exec", name, "nft", "-f", rules)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var l net.Listener
	var c net.Conn
	if err := netns.Do(h, func() error {
		var err error
		if l, err = net.Listen("tcp4", addr); err != nil {
			return err
		}
		c, err = net.Dial("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c.Close() // its FIN is dropped: an orphan in FIN_WAIT1
	return s, l
}

func TestInUse(t *testing.T) {
	b := []byte("sockets: used 11\nTCP: inuse 3 orphan 0 tw 2 alloc 4 mem 117\nUDP: inuse 0 mem 0\n")
	if n, err := inUse(b, "TCP:"); err != nil || n != 3 {
		t.Errorf("inUse TCP = %d, %v; want 3", n, err)
	}
	if _, err := inUse(b, "TCP6:"); err == nil {
		t.Error("inUse TCP6 of a sockstat without it: no error")
	}
}

// tcpSockets counts what ss lists in the namespace, over IPv4 and IPv6.
func TestTCPSocketsCountsAsSS(t *testing.T) {
	name, h, _ := labNetns(t, "ss")
	lines := func() int {
		out := strings.TrimSpace(testutil.Cmd(t, "ip", "netns", "exec", name, "ss", "-tanH", "exclude", "time-wait"))
		if out == "" {
			return 0
		}
		return len(strings.Split(out, "\n"))
	}
	if n, err := tcpSockets(h); err != nil || n != 0 || lines() != 0 {
		t.Fatalf("a new namespace: tcpSockets = %d, %v; ss lists %d; want 0", n, err, lines())
	}
	var ls []net.Listener
	var c net.Conn
	if err := netns.Do(h, func() error {
		for _, a := range []string{"127.0.0.1:0", "[::1]:0"} {
			l, err := net.Listen("tcp", a)
			if err != nil {
				return err
			}
			ls = append(ls, l)
		}
		var err error
		c, err = net.Dial("tcp", ls[1].Addr().String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s, err := ls[1].Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer c.Close()
	for _, l := range ls {
		defer l.Close()
	}
	// Two listeners, both ends of a connection.
	if n, err := tcpSockets(h); err != nil || n != 4 || lines() != 4 {
		t.Errorf("tcpSockets = %d, %v; ss lists %d; want 4", n, err, lines())
	}
}

// An orphan that is the namespace's only TCP socket is still waited for
// (the sockstat check must not take it for an empty namespace).
func TestWaitSeesALoneOrphan(t *testing.T) {
	name, h, ctx := labNetns(t, "nft", "ss")
	s, l := orphanAndListener(t, name, h, 7790)
	l.Close()
	// The accepted end's FIN gets through and is acknowledged by the
	// orphan, which stays (CLOSING: its own FIN is dropped).
	s.Close()
	var ss string
	for i := 0; i < 100; i++ {
		ss = testutil.Cmd(t, "ip", "netns", "exec", name, "ss", "-tanH", "state", "closing")
		if strings.Contains(ss, ":7790") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(ss, ":7790") {
		t.Fatalf("ss shows no orphan in CLOSING: %q", ss)
	}
	if l := testutil.Cmd(t, "ip", "netns", "exec", name, "ss", "-tlnH"); strings.TrimSpace(l) != "" {
		t.Fatalf("ss still shows a listener: %s", l)
	}
	if left, _, err := Wait(ctx, h, 150*time.Millisecond, 10*time.Millisecond); err != nil || left < 1 {
		t.Fatalf("Wait = %d, %v; want the orphan left (ss: %s)", left, err, ss)
	}
}
