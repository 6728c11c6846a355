package dhcpclient_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/nsbox/nsbox/dhcpclient"
	"github.com/nsbox/nsbox/dhcpserver"
)

// wire is a Conn that hands every message straight to an in-process
// server and queues its replies, so the example needs no interface.
type wire struct {
	srv     *dhcpserver.Server
	replies chan []byte
}

func (w *wire) Send(_ context.Context, msg []byte, _, _ netip.Addr) error {
	reply, _, err := w.srv.HandlePacket(msg)
	if err != nil {
		return err
	}
	if reply != nil {
		w.replies <- reply
	}
	return nil
}

func (w *wire) Recv(ctx context.Context) ([]byte, error) {
	select {
	case b := <-w.replies:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (w *wire) Close() error { return nil }

// noApply leaves the interface alone: it only reports the lease.
type noApply struct{}

func (noApply) Apply(_ context.Context, _, l *dhcpclient.Lease) error {
	fmt.Println("apply", l.Addr, "via", l.Router)
	return nil
}
func (noApply) Remove(context.Context, *dhcpclient.Lease) error { return nil }

// Acquire runs DISCOVER, OFFER, REQUEST, ACK against a server. Here the
// server runs in process (dhcpserver) and the applier only prints; in a
// real namespace Listen opens the interface's socket (UDP or packet) and the default
// applier sets the address, the routes and resolv.conf.
func ExampleClient_Acquire() {
	srv, err := dhcpserver.New(netip.MustParsePrefix("10.77.0.1/24"),
		netip.MustParseAddr("10.77.0.10"), netip.MustParseAddr("10.77.0.20"),
		dhcpserver.WithRouter(netip.MustParseAddr("10.77.0.1")))
	if err != nil {
		panic(err)
	}
	hw := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x42}
	c, err := dhcpclient.New("eth0", hw, &wire{srv: srv, replies: make(chan []byte, 4)},
		dhcpclient.WithApplier(noApply{}))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	l, err := c.Acquire(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("bound", l.Addr, "from", l.Server)
	// Output:
	// apply 10.77.0.10/24 via 10.77.0.1
	// bound 10.77.0.10/24 from 10.77.0.1
}

// WithLeaseTime asks for short leases (a sandbox asks for 2 min, so a
// killed one holds its address at most that long); the server grants at
// least its floor, dhcpserver.MinLeaseTime. Timers below the client's
// floor (WithMinLeaseTime, default 60 s) would be raised.
func ExampleWithLeaseTime() {
	srv, err := dhcpserver.New(netip.MustParsePrefix("10.78.0.1/24"),
		netip.MustParseAddr("10.78.0.10"), netip.MustParseAddr("10.78.0.20"))
	if err != nil {
		panic(err)
	}
	c, err := dhcpclient.New("eth0", net.HardwareAddr{0x02, 0, 0, 0, 0, 0x43},
		&wire{srv: srv, replies: make(chan []byte, 4)}, dhcpclient.WithLeaseTime(2*time.Minute))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	l, err := c.Acquire(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("lease", l.LeaseTime, "renew at", l.T1)
	// Output:
	// lease 2m0s renew at 1m0s
}
