package dhcpclient

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/dhcpserver"
	"github.com/nsbox/nsbox/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.MainWithLeakCheck(m)) }

// pairConn is a Conn over one end of a SOCK_DGRAM socketpair: whatever the
// client sends reaches the in-process server, whose replies come back.
type pairConn struct{ c *net.UnixConn }

func (p pairConn) Send(ctx context.Context, b []byte, src, dst netip.Addr) error {
	_, err := p.c.Write(b)
	return err
}

func (p pairConn) Recv(ctx context.Context) ([]byte, error) {
	stop := context.AfterFunc(ctx, func() { _ = p.c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	b := make([]byte, 4096)
	n, err := p.c.Read(b)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}

func (p pairConn) Close() error { return p.c.Close() }

func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conv := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	return conv(fds[0]), conv(fds[1])
}

// servePair answers every datagram on c with the server's reply.
func servePair(t *testing.T, s *dhcpserver.Server, c *net.UnixConn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			if out, _, _ := s.HandlePacket(b[:n]); out != nil {
				if _, err := c.Write(out); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { c.Close(); wg.Wait() })
}

// TestAgainstEmbeddedServer runs the real client state machine (system
// clock, fast retries) against dhcpserver over socketpairs: acquire, lease
// contents, same address again for the same client id, renewal through the
// server, and release that frees the address in the server's table.
func TestAgainstEmbeddedServer(t *testing.T) {
	srv, err := dhcpserver.New(netip.MustParsePrefix("192.168.77.1/24"),
		netip.MustParseAddr("192.168.77.100"), netip.MustParseAddr("192.168.77.150"),
		dhcpserver.WithRouter(netip.MustParseAddr("192.168.77.1")),
		dhcpserver.WithDNS(netip.MustParseAddr("192.168.77.53"), netip.MustParseAddr("192.168.77.54")),
		dhcpserver.WithLeaseTime(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	newClient := func(mac net.HardwareAddr, opts ...Option) (*Client, *fakeApplier) {
		a, b := unixPair(t)
		servePair(t, srv, b)
		ap := newFakeApplier()
		c, err := New("eth0", mac, pairConn{a}, append([]Option{WithApplier(ap), WithFirstRetry(50 * time.Millisecond),
			WithMinRenewRetry(100 * time.Millisecond), WithMinLeaseTime(time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, ap
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c1, ap1 := newClient(net.HardwareAddr{2, 1, 1, 1, 1, 1})
	l1, err := c1.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ap1.expect(t, "apply", "192.168.77.100/24")
	if l1.Router.String() != "192.168.77.1" || len(l1.DNS) != 2 || l1.Server.String() != "192.168.77.1" || l1.LeaseTime != 4*time.Second {
		t.Errorf("lease %+v", l1)
	}
	c2, _ := newClient(net.HardwareAddr{2, 1, 1, 1, 1, 2})
	l2, err := c2.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Addr == l1.Addr {
		t.Errorf("two clients got %s", l1.Addr)
	}
	// Renewal at T1 = 2s extends the lease through the server.
	rctx, rcancel := context.WithTimeout(ctx, 2600*time.Millisecond)
	if err := c1.Run(rctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	rcancel()
	ap1.expect(t, "apply", "192.168.77.100/24")
	if l := c1.Lease(); !l.Acquired.After(l1.Acquired) {
		t.Errorf("lease not renewed: acquired %s then %s", l1.Acquired, l.Acquired)
	}
	if err := c1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	ap1.expect(t, "remove", "192.168.77.100/24")
	deadline := time.Now().Add(2 * time.Second)
	for len(srv.Leases()) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ls := srv.Leases(); len(ls) != 1 || ls[0].Addr != l2.Addr.Addr() {
		t.Errorf("server leases after release: %+v", ls)
	}
	// The same client id (new MAC) gets c2's address back.
	c3, _ := newClient(net.HardwareAddr{2, 9, 9, 9, 9, 9}, WithClientID(append([]byte{1}, 2, 1, 1, 1, 1, 2)))
	l3, err := c3.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l3.Addr != l2.Addr {
		t.Errorf("same client id got %s, had %s", l3.Addr, l2.Addr)
	}
}
