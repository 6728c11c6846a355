package dhcpclient

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestAcquireSendsIdentityAndApplies(t *testing.T) {
	h := newHarness(t, WithHostname("box1"), WithFirstRetry(100*time.Millisecond))
	h.run(false)
	d := h.conn.expect(t, dhcpv4.MessageTypeDiscover)
	if d.dst.IsValid() || d.src.IsValid() {
		t.Errorf("DISCOVER sent from %v to %v, want broadcast from 0.0.0.0", d.src, d.dst)
	}
	if got := d.m.Options.Get(dhcpv4.OptionClientIdentifier); string(got) != string(append([]byte{1}, testMAC...)) {
		t.Errorf("client id %x, want 01+MAC", got)
	}
	if d.m.HostName() != "box1" {
		t.Errorf("hostname %q, want box1", d.m.HostName())
	}
	prl := d.m.ParameterRequestList()
	for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionClasslessStaticRoute, dhcpv4.OptionInterfaceMTU} {
		if !prl.Has(code) {
			t.Errorf("parameter request list %v lacks %v", prl, code)
		}
	}
	h.conn.reply(serverReply(d.m, dhcpv4.MessageTypeOffer, serverA, offeredIP, 600))
	r := h.conn.expect(t, dhcpv4.MessageTypeRequest)
	if r.m.TransactionID != d.m.TransactionID {
		t.Errorf("REQUEST xid %s, want the DISCOVER's %s", r.m.TransactionID, d.m.TransactionID)
	}
	if got := addrOf4(r.m.RequestedIPAddress()); got != offeredIP {
		t.Errorf("requested address %v, want %v", got, offeredIP)
	}
	if got := addrOf4(r.m.ServerIdentifier()); got != serverA {
		t.Errorf("server id %v, want %v", got, serverA)
	}
	h.conn.reply(serverReply(r.m, dhcpv4.MessageTypeAck, serverA, offeredIP, 600))
	h.applier.expect(t, "apply", "10.9.0.50/24")
	if err := <-h.done; err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	h.cancel = nil
	l := h.c.Lease()
	if l.Router != serverA || len(l.DNS) != 1 || l.DNS[0] != netip.MustParseAddr("10.9.0.53") {
		t.Errorf("lease router %v dns %v", l.Router, l.DNS)
	}
	if l.LeaseTime != 600*time.Second || l.T1 != 300*time.Second || l.T2 != 525*time.Second {
		t.Errorf("lease %s T1 %s T2 %s, want 10m 5m 8m45s", l.LeaseTime, l.T1, l.T2)
	}
}

func addrOf4(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}

// TestRenewRebindExpire: no server answers after the bind; the client must
// unicast at T1, broadcast at T2 and drop the address at expiry.
func TestRenewRebindExpire(t *testing.T) {
	h := newHarness(t, WithFirstRetry(time.Second), WithMinRenewRetry(10*time.Second))
	h.run(true)
	h.bind(t, 1000, dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(400*time.Second)))
	start := h.clk.Now()

	h.clk.advanceNext(t)
	r := h.conn.expect(t, dhcpv4.MessageTypeRequest)
	if got := h.clk.Now().Sub(start); got != 400*time.Second {
		t.Errorf("first renewal after %s, want T1 = 400s (option 58)", got)
	}
	if r.dst != serverA || r.src != offeredIP {
		t.Errorf("RENEWING REQUEST from %v to %v, want unicast %v -> %v", r.src, r.dst, offeredIP, serverA)
	}
	if r.last {
		t.Errorf("RENEWING REQUEST waited to leave (sendLast): only a RELEASE should")
	}
	if addrOf4(r.m.ClientIPAddr) != offeredIP || r.m.Options.Has(dhcpv4.OptionServerIdentifier) || r.m.Options.Has(dhcpv4.OptionRequestedIPAddress) {
		t.Errorf("RENEWING REQUEST: ciaddr %v, options %v; want ciaddr set, no 50/54", r.m.ClientIPAddr, r.m.Options)
	}
	if h.c.State() != StateRenewing {
		t.Errorf("state %s, want RENEWING", h.c.State())
	}
	// Retransmissions in RENEWING, then REBINDING at T2 = 875s.
	var rebind sentMsg
	for i := 0; i < 50 && !rebind.dst.IsValid() && rebind.m == nil; i++ {
		h.clk.advanceNext(t)
		s := h.conn.expect(t, dhcpv4.MessageTypeRequest)
		if !s.dst.IsValid() {
			rebind = s
		} else if h.clk.Now().Sub(start) >= 875*time.Second {
			t.Fatalf("unicast REQUEST at %s, after T2", h.clk.Now().Sub(start))
		}
	}
	if rebind.m == nil {
		t.Fatal("no broadcast REQUEST (REBINDING) within 50 timer steps")
	}
	if got := h.clk.Now().Sub(start); got != 875*time.Second {
		t.Errorf("rebinding at %s, want T2 = 875s", got)
	}
	if addrOf4(rebind.m.ClientIPAddr) != offeredIP || rebind.m.TransactionID == r.m.TransactionID {
		t.Errorf("REBINDING REQUEST ciaddr %v xid %s (renew xid %s)", rebind.m.ClientIPAddr, rebind.m.TransactionID, r.m.TransactionID)
	}
	// Keep letting timers fire until the lease expires and the address goes.
	for i := 0; i < 50; i++ {
		h.clk.advanceNext(t)
		s := <-h.conn.out
		if s.m.MessageType() == dhcpv4.MessageTypeDiscover {
			break
		}
		if s.dst.IsValid() {
			t.Fatalf("unicast %s in REBINDING", s.m.MessageType())
		}
	}
	if got := h.clk.Now().Sub(start); got != 1000*time.Second {
		t.Errorf("lease dropped at %s, want 1000s", got)
	}
	h.applier.expect(t, "remove", "10.9.0.50/24")
	if h.c.Lease() != nil {
		t.Errorf("lease still held after expiry")
	}
}

func TestRenewAckExtends(t *testing.T) {
	h := newHarness(t, WithFirstRetry(time.Second))
	h.run(true)
	h.bind(t, 100)
	h.clk.advanceNext(t) // T1 = 50s
	r := h.conn.expect(t, dhcpv4.MessageTypeRequest)
	// An ACK from another server is ignored while RENEWING.
	h.conn.reply(serverReply(r.m, dhcpv4.MessageTypeAck, serverB, offeredIP, 100))
	h.conn.reply(serverReply(r.m, dhcpv4.MessageTypeAck, serverA, offeredIP, 200))
	h.applier.expect(t, "apply", "10.9.0.50/24")
	waitState(t, h.c, StateBound)
	if l := h.c.Lease(); l.LeaseTime != 200*time.Second || !l.Acquired.Equal(h.clk.Now()) {
		t.Errorf("renewed lease %s acquired %s, want 200s at %s", l.LeaseTime, l.Acquired, h.clk.Now())
	}
	if !h.log.has("not the selected 10.9.0.1") {
		t.Errorf("ACK from the other server not logged as ignored: %q", h.log.lines)
	}
}

func TestRenewNakDropsLease(t *testing.T) {
	h := newHarness(t, WithFirstRetry(time.Second))
	h.run(true)
	h.bind(t, 100)
	h.clk.advanceNext(t)
	r := h.conn.expect(t, dhcpv4.MessageTypeRequest)
	h.conn.reply(serverReply(r.m, dhcpv4.MessageTypeNak, serverA, netip.Addr{}, 0))
	h.applier.expect(t, "remove", "10.9.0.50/24")
	h.conn.expect(t, dhcpv4.MessageTypeDiscover)
}

func TestNakInRequesting(t *testing.T) {
	h := newHarness(t, WithFirstRetry(2*time.Second))
	h.run(false)
	d := h.conn.expect(t, dhcpv4.MessageTypeDiscover)
	h.conn.reply(serverReply(d.m, dhcpv4.MessageTypeOffer, serverA, offeredIP, 100))
	r := h.conn.expect(t, dhcpv4.MessageTypeRequest)
	// A NAK from a server the client did not select changes nothing.
	h.conn.reply(serverReply(r.m, dhcpv4.MessageTypeNak, serverB, netip.Addr{}, 0))
	h.conn.quiet(t, 50*time.Millisecond)
	if h.c.State() != StateRequesting {
		t.Fatalf("state %s after a foreign NAK, want REQUESTING", h.c.State())
	}
	h.conn.reply(serverReply(r.m, dhcpv4.MessageTypeNak, serverA, netip.Addr{}, 0))
	waitState(t, h.c, StateInit)
	waited := h.clk.advanceNext(t) // the backoff before INIT's DISCOVER
	if waited < 1500*time.Millisecond || waited > 2500*time.Millisecond {
		t.Errorf("backoff after NAK %s, want 2s +- 0.5s", waited)
	}
	d2 := h.conn.expect(t, dhcpv4.MessageTypeDiscover)
	if d2.m.TransactionID == d.m.TransactionID {
		t.Errorf("new DISCOVER reuses xid %s", d.m.TransactionID)
	}
	h.applier.none(t)
}

// TestServerGone: DISCOVER is retransmitted with RFC 2131 backoff and
// Acquire fails with ErrNoOffer when its context ends; nothing is applied.
func TestServerGone(t *testing.T) {
	h := newHarness(t, WithFirstRetry(4*time.Second), WithMaxRetry(64*time.Second))
	h.run(false)
	h.conn.expect(t, dhcpv4.MessageTypeDiscover)
	bases := []time.Duration{4, 8, 16, 32, 64, 64}
	for i, b := range bases {
		d := h.clk.advanceNext(t)
		lo, hi := b*time.Second-time.Second, b*time.Second+time.Second
		if d < lo || d > hi {
			t.Errorf("retransmission %d after %s, want %s..%s", i+1, d, lo, hi)
		}
		h.conn.expect(t, dhcpv4.MessageTypeDiscover)
	}
	h.cancel()
	err := <-h.done
	h.cancel = nil
	wantErr(t, err, ErrNoOffer)
	wantErr(t, err, context.Canceled)
	h.applier.none(t)
}

func TestBackoffBounds(t *testing.T) {
	for _, r := range []float64{0, 0.5, 0.999999} {
		c, err := New("eth0", testMAC, newFakeConn(), WithFirstRetry(100*time.Millisecond), WithMaxRetry(time.Second), WithRand(func() float64 { return r }))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 40; i++ {
			base := min(100*time.Millisecond<<min(i, 20), time.Second)
			got := c.backoff(i)
			if got < base-25*time.Millisecond || got > base+25*time.Millisecond {
				t.Errorf("rand %v attempt %d: %s, want %s +- 25ms", r, i, got, base)
			}
		}
	}
	if _, err := New("eth0", testMAC, newFakeConn(), WithFirstRetry(0)); err == nil {
		t.Error("first retry 0 accepted")
	}
}

func TestInitReboot(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer dhcpv4.MessageType
	}{{"ack", dhcpv4.MessageTypeAck}, {"nak", dhcpv4.MessageTypeNak}, {"silence", dhcpv4.MessageTypeNone}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "eth0.lease")
			clk := newFakeClock()
			old := &Lease{Interface: "eth0", Addr: netip.PrefixFrom(offeredIP, 24), Server: serverA,
				LeaseTime: time.Hour, T1: 30 * time.Minute, T2: 52 * time.Minute, Acquired: clk.Now().Add(-10 * time.Minute)}
			if err := SaveLease(path, old); err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, WithClock(clk), WithLeaseFile(path), WithFirstRetry(time.Second))
			h.clk = clk
			h.run(false)
			r := h.conn.expect(t, dhcpv4.MessageTypeRequest)
			if addrOf4(r.m.RequestedIPAddress()) != offeredIP || r.m.Options.Has(dhcpv4.OptionServerIdentifier) || !r.m.ClientIPAddr.Equal(net.IPv4zero) || r.dst.IsValid() {
				t.Fatalf("INIT-REBOOT REQUEST: requested %v, options %v, ciaddr %v, dst %v", r.m.RequestedIPAddress(), r.m.Options, r.m.ClientIPAddr, r.dst)
			}
			switch tc.answer {
			case dhcpv4.MessageTypeAck:
				h.conn.reply(serverReply(r.m, dhcpv4.MessageTypeAck, serverB, offeredIP, 3600))
				h.applier.expect(t, "apply", "10.9.0.50/24")
				if err := <-h.done; err != nil {
					t.Fatal(err)
				}
				h.cancel = nil
				l, err := LoadLease(path)
				if err != nil || l == nil || l.Server != serverB || !l.Acquired.Equal(clk.Now()) {
					t.Fatalf("lease file after reboot: %+v, %v", l, err)
				}
				return
			case dhcpv4.MessageTypeNak:
				h.conn.reply(serverReply(r.m, dhcpv4.MessageTypeNak, serverB, netip.Addr{}, 0))
			default:
				for i := 0; i < 2; i++ {
					h.clk.advanceNext(t)
					if i == 0 {
						h.conn.expect(t, dhcpv4.MessageTypeRequest)
					}
				}
			}
			h.applier.expect(t, "remove", "10.9.0.50/24")
			d := h.conn.expect(t, dhcpv4.MessageTypeDiscover)
			if addrOf4(d.m.RequestedIPAddress()).IsValid() {
				// After a NAK the old address is forgotten entirely.
				t.Errorf("DISCOVER after %s still asks for %v", tc.name, d.m.RequestedIPAddress())
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("lease file still there after %s: %v", tc.name, err)
			}
		})
	}
}

func TestInfiniteLease(t *testing.T) {
	h := newHarness(t, WithFirstRetry(time.Second))
	h.run(true)
	h.bind(t, 0xffffffff)
	l := h.c.Lease()
	if !l.Infinite() || !l.Expiry().IsZero() {
		t.Fatalf("lease %s expiry %s, want infinite", l.LeaseTime, l.Expiry())
	}
	h.conn.quiet(t, 50*time.Millisecond)
	h.clk.mu.Lock()
	n := len(h.clk.timers)
	h.clk.mu.Unlock()
	if n != 0 {
		t.Errorf("%d timers pending for an infinite lease", n)
	}
}

func TestRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	h := newHarness(t, WithFirstRetry(time.Second), WithLeaseFile(path))
	h.run(false)
	h.bind(t, 100)
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
	h.cancel = nil
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("lease file not written: %v", err)
	}
	if err := h.c.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := h.conn.expect(t, dhcpv4.MessageTypeRelease)
	if s.dst != serverA || s.src != offeredIP || addrOf4(s.m.ClientIPAddr) != offeredIP || addrOf4(s.m.ServerIdentifier()) != serverA {
		t.Errorf("RELEASE %v -> %v ciaddr %v sid %v", s.src, s.dst, s.m.ClientIPAddr, s.m.ServerIdentifier())
	}
	if !s.last {
		t.Errorf("RELEASE sent without waiting for it to leave (not through sendLast)")
	}
	h.applier.expect(t, "remove", "10.9.0.50/24")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("lease file kept after release: %v", err)
	}
	wantErr(t, h.c.Release(context.Background()), ErrNoLeaseHeld)
}

// fakeProber reports a conflict for the addresses in busy.
type fakeProber struct{ busy map[netip.Addr]bool }

func (p fakeProber) Probe(ctx context.Context, a netip.Addr) (bool, error) { return p.busy[a], nil }

func TestArpConflictDeclines(t *testing.T) {
	h := newHarness(t, WithFirstRetry(time.Second), WithDeclineWait(10*time.Second),
		WithProber(fakeProber{busy: map[netip.Addr]bool{offeredIP: true}}))
	h.run(false)
	d := h.conn.expect(t, dhcpv4.MessageTypeDiscover)
	h.conn.reply(serverReply(d.m, dhcpv4.MessageTypeOffer, serverA, offeredIP, 100))
	r := h.conn.expect(t, dhcpv4.MessageTypeRequest)
	h.conn.reply(serverReply(r.m, dhcpv4.MessageTypeAck, serverA, offeredIP, 100))
	dec := h.conn.expect(t, dhcpv4.MessageTypeDecline)
	if addrOf4(dec.m.RequestedIPAddress()) != offeredIP || addrOf4(dec.m.ServerIdentifier()) != serverA {
		t.Errorf("DECLINE for %v to %v", dec.m.RequestedIPAddress(), dec.m.ServerIdentifier())
	}
	if w := h.clk.advanceNext(t); w != 10*time.Second {
		t.Errorf("waited %s after DECLINE, want 10s", w)
	}
	d2 := h.conn.expect(t, dhcpv4.MessageTypeDiscover)
	h.conn.reply(serverReply(d2.m, dhcpv4.MessageTypeOffer, serverA, offeredIP2, 100))
	r2 := h.conn.expect(t, dhcpv4.MessageTypeRequest)
	h.conn.reply(serverReply(r2.m, dhcpv4.MessageTypeAck, serverA, offeredIP2, 100))
	h.applier.expect(t, "apply", "10.9.0.51/24")
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
	h.cancel = nil
}

// TestHostileTimersClamped: a server granting 1 s leases with a T1 of 1 s
// does not make the client renew every second: the lease is used as if it
// lasted DefaultMinLeaseTime and the first renewal comes at half of it.
func TestHostileTimersClamped(t *testing.T) {
	h := newHarness(t, WithFirstRetry(time.Second))
	h.run(true)
	h.bind(t, 1, dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(time.Second)),
		dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(time.Second)))
	start := h.clk.Now()
	l := h.c.Lease()
	if l.LeaseTime != DefaultMinLeaseTime || l.T1 != DefaultMinLeaseTime/2 || l.T2 != DefaultMinLeaseTime/4*3 {
		t.Errorf("lease %s T1 %s T2 %s, want %s %s %s", l.LeaseTime, l.T1, l.T2,
			DefaultMinLeaseTime, DefaultMinLeaseTime/2, DefaultMinLeaseTime/4*3)
	}
	h.clk.advanceNext(t)
	h.conn.expect(t, dhcpv4.MessageTypeRequest)
	if got := h.clk.Now().Sub(start); got != DefaultMinLeaseTime/2 {
		t.Errorf("first renewal after %s, want %s", got, DefaultMinLeaseTime/2)
	}
	if !h.log.has("timers raised") {
		t.Errorf("clamp not logged: %q", h.log.lines)
	}
}

// An Acquire whose REQUEST got no answer in time (ErrNoLease) may still
// hold a lease at the server (its ACK came late: seen with dnsmasq under
// load in TestRunPoolCLI, the lease stayed until it expired). Abandon
// broadcasts a RELEASE of the requested address to the offering server;
// after a NAK, or with nothing requested, it sends nothing.
func TestAbandonReleasesUnansweredRequest(t *testing.T) {
	h := newHarness(t, WithFirstRetry(100*time.Millisecond))
	h.run(false)
	d := h.conn.expect(t, dhcpv4.MessageTypeDiscover)
	h.conn.reply(serverReply(d.m, dhcpv4.MessageTypeOffer, serverA, offeredIP, 600))
	h.conn.expect(t, dhcpv4.MessageTypeRequest)
	h.cancel()
	h.cancel = nil
	if err := <-h.done; !errors.Is(err, ErrNoLease) {
		t.Fatalf("Acquire = %v, want ErrNoLease", err)
	}
	if err := h.c.Abandon(context.Background()); err != nil {
		t.Fatalf("Abandon: %v", err)
	}
	r := h.conn.expect(t, dhcpv4.MessageTypeRelease)
	if r.dst.IsValid() || r.src.IsValid() {
		t.Errorf("RELEASE sent from %v to %v, want broadcast", r.src, r.dst)
	}
	if got := addrOf4(r.m.ClientIPAddr); got != offeredIP {
		t.Errorf("RELEASE ciaddr %v, want %v", got, offeredIP)
	}
	if got := addrOf4(r.m.ServerIdentifier()); got != serverA {
		t.Errorf("RELEASE server id %v, want %v", got, serverA)
	}
	if string(r.m.ClientHWAddr) != string(testMAC) {
		t.Errorf("RELEASE chaddr %s, want %s", r.m.ClientHWAddr, testMAC)
	}
	// Once only.
	if err := h.c.Abandon(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.conn.quiet(t, 200*time.Millisecond)
}
