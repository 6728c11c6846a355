package dhcpclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// fakeClock is a manual Clock: timers fire only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clk *fakeClock
	at  time.Time
	c   chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{clk: f, at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
		return t
	}
	f.timers = append(f.timers, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	f := t.clk
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.timers {
		if x == t {
			f.timers = append(f.timers[:i], f.timers[i+1:]...)
			return true
		}
	}
	return false
}

// waitTimer waits (in real time, bounded) until a timer is pending and
// returns the earliest deadline.
func (f *fakeClock) waitTimer(t *testing.T) time.Time {
	t.Helper()
	for i := 0; i < 500; i++ {
		f.mu.Lock()
		if len(f.timers) > 0 {
			sort.Slice(f.timers, func(a, b int) bool { return f.timers[a].at.Before(f.timers[b].at) })
			at := f.timers[0].at
			f.mu.Unlock()
			return at
		}
		f.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("fake clock: no timer pending after 1s")
	return time.Time{}
}

// advanceNext jumps to the earliest pending timer, fires it and returns
// how far the clock moved.
func (f *fakeClock) advanceNext(t *testing.T) time.Duration {
	t.Helper()
	at := f.waitTimer(t)
	f.mu.Lock()
	defer f.mu.Unlock()
	d := at.Sub(f.now)
	f.now = at
	var keep []*fakeTimer
	for _, x := range f.timers {
		if !x.at.After(f.now) {
			x.c <- f.now
		} else {
			keep = append(keep, x)
		}
	}
	f.timers = keep
	return d
}

// sentMsg is one message the client sent through fakeConn.
type sentMsg struct {
	m        *dhcpv4.DHCPv4
	src, dst netip.Addr
	last     bool // through sendLast (lastSender)
}

// fakeConn is a Conn whose traffic the test reads and writes.
type fakeConn struct {
	out    chan sentMsg
	in     chan []byte
	closed chan struct{}
	once   sync.Once
}

func newFakeConn() *fakeConn {
	return &fakeConn{out: make(chan sentMsg, 100), in: make(chan []byte, 100), closed: make(chan struct{})}
}

func (f *fakeConn) Send(ctx context.Context, b []byte, src, dst netip.Addr) error {
	return f.send(b, src, dst, false)
}

func (f *fakeConn) sendLast(ctx context.Context, b []byte, src, dst netip.Addr) error {
	return f.send(b, src, dst, true)
}

func (f *fakeConn) send(b []byte, src, dst netip.Addr, last bool) error {
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		return fmt.Errorf("client sent undecodable bytes: %w", err)
	}
	f.out <- sentMsg{m, src, dst, last}
	return nil
}

func (f *fakeConn) Recv(ctx context.Context) ([]byte, error) {
	select {
	case b := <-f.in:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

func (f *fakeConn) Close() error { f.once.Do(func() { close(f.closed) }); return nil }

// expect returns the next message sent, failing unless it has type mt.
func (f *fakeConn) expect(t *testing.T, mt dhcpv4.MessageType) sentMsg {
	t.Helper()
	select {
	case s := <-f.out:
		if s.m.MessageType() != mt {
			t.Fatalf("client sent %s, want %s", s.m.MessageType(), mt)
		}
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("client sent nothing in 5s, want %s", mt)
	}
	return sentMsg{}
}

// quiet fails if the client sends anything within d.
func (f *fakeConn) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case s := <-f.out:
		t.Fatalf("client sent %s, want nothing", s.m.MessageType())
	case <-time.After(d):
	}
}

func (f *fakeConn) reply(m *dhcpv4.DHCPv4) { f.in <- m.ToBytes() }

// applyOp is one call the fake applier saw.
type applyOp struct {
	op   string // "apply" or "remove"
	addr netip.Prefix
}

type fakeApplier struct {
	mu  sync.Mutex
	ops []applyOp
	ch  chan applyOp
	err error
}

func newFakeApplier() *fakeApplier { return &fakeApplier{ch: make(chan applyOp, 100)} }

func (a *fakeApplier) Apply(ctx context.Context, prev, l *Lease) error {
	if a.err != nil {
		return a.err
	}
	a.record(applyOp{"apply", l.Addr})
	return nil
}

func (a *fakeApplier) Remove(ctx context.Context, l *Lease) error {
	a.record(applyOp{"remove", l.Addr})
	return nil
}

func (a *fakeApplier) record(o applyOp) {
	a.mu.Lock()
	a.ops = append(a.ops, o)
	a.mu.Unlock()
	a.ch <- o
}

func (a *fakeApplier) expect(t *testing.T, op string, addr string) {
	t.Helper()
	select {
	case o := <-a.ch:
		if o.op != op || o.addr.String() != addr {
			t.Fatalf("applier: got %s %s, want %s %s", o.op, o.addr, op, addr)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("applier: nothing in 5s, want %s %s", op, addr)
	}
}

func (a *fakeApplier) none(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ops) != 0 {
		t.Fatalf("applier was called: %v", a.ops)
	}
}

// logBuf collects the client's log lines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logBuf) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.lines {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

var (
	testMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x42}
	serverA    = netip.MustParseAddr("10.9.0.1")
	serverB    = netip.MustParseAddr("10.9.0.2")
	offeredIP  = netip.MustParseAddr("10.9.0.50")
	offeredIP2 = netip.MustParseAddr("10.9.0.51")
)

// serverReply builds a reply of type mt to req from server giving yi.
func serverReply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, server, yi netip.Addr, leaseSecs uint32, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	base := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server.AsSlice())),
	}
	if mt != dhcpv4.MessageTypeNak {
		base = append(base,
			dhcpv4.WithYourIP(yi.AsSlice()),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithLeaseTime(leaseSecs),
			dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(10, 9, 0, 1))),
			dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(10, 9, 0, 53))),
		)
	}
	r, err := dhcpv4.NewReplyFromRequest(req, append(base, mods...)...)
	if err != nil {
		panic(err)
	}
	return r
}

// harness is a client on a fake conn, clock and applier, run by Run in a
// goroutine.
type harness struct {
	c       *Client
	conn    *fakeConn
	clk     *fakeClock
	applier *fakeApplier
	log     *logBuf
	cancel  context.CancelFunc
	done    chan error
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	h := &harness{conn: newFakeConn(), clk: newFakeClock(), applier: newFakeApplier(), log: &logBuf{}}
	all := append([]Option{WithClock(h.clk), WithApplier(h.applier), WithLogf(h.log.logf)}, opts...)
	c, err := New("eth0", testMAC, h.conn, all...)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	t.Cleanup(func() {
		if h.cancel != nil {
			h.cancel()
			select {
			case <-h.done:
			case <-time.After(5 * time.Second):
				t.Errorf("client did not stop within 5s of cancel")
			}
		}
		c.Close()
	})
	return h
}

// run starts Run (keep the lease) or Acquire.
func (h *harness) run(keep bool) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() {
		if keep {
			h.done <- h.c.Run(ctx)
		} else {
			_, err := h.c.Acquire(ctx)
			h.done <- err
		}
	}()
}

// bind drives DISCOVER/OFFER/REQUEST/ACK and returns the ACK.
func (h *harness) bind(t *testing.T, leaseSecs uint32, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	d := h.conn.expect(t, dhcpv4.MessageTypeDiscover)
	h.conn.reply(serverReply(d.m, dhcpv4.MessageTypeOffer, serverA, offeredIP, leaseSecs, mods...))
	r := h.conn.expect(t, dhcpv4.MessageTypeRequest)
	ack := serverReply(r.m, dhcpv4.MessageTypeAck, serverA, offeredIP, leaseSecs, mods...)
	h.conn.reply(ack)
	h.applier.expect(t, "apply", "10.9.0.50/24")
	waitState(t, h.c, StateBound)
	return ack
}

func waitState(t *testing.T, c *Client, s State) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if c.State() == s {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("state %s after 1s, want %s", c.State(), s)
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}
