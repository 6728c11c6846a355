package nsnet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nsbox/nsbox/dhcpclient"
	"github.com/nsbox/nsbox/internal/sockdiag"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// dhcpLease keeps a sandbox's lease renewed in the background.
type dhcpLease struct {
	client *dhcpclient.Client
	ifName string
	logf   func(string, ...any)
	conn   *rtnl.Conn
	ns     *netns.Handle
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// leaseDHCP obtains a lease inside child for a.ifName within c.DHCPTimeout,
// applies it, and keeps renewing it until Close. No lease file is written
// unless c.LeaseFile asks for one.
func (a *Attachment) leaseDHCP(ctx context.Context, c *Config, parent *netns.Handle) error {
	// The client keeps using the namespace (unicast renewals and the
	// release enter it), so it gets a handle of its own.
	child, err := netns.Open(fmt.Sprintf("/proc/self/fd/%d", parent.Fd()))
	if err != nil {
		return fmt.Errorf("nsnet: dhcp: %w", err)
	}
	in, err := rtnl.Dial(child)
	if err != nil {
		child.Close()
		return fmt.Errorf("nsnet: dhcp: dial: %w", err)
	}
	pc, err := dhcpclient.Listen(child, a.ifName)
	if err != nil {
		in.Close()
		child.Close()
		return fmt.Errorf("nsnet: dhcp: %w", err)
	}
	logf := c.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	opts := []dhcpclient.Option{
		dhcpclient.WithApplier(&dhcpclient.RtnlApplier{Conn: in, Dev: a.ifName}),
		dhcpclient.WithLogf(logf),
		// A sandbox's link is up at once and the server is on the same
		// bridge: retry after 1 s instead of RFC 2131's 4 s. Not less:
		// with 200 sandboxes leasing at once the server's replies take a
		// few hundred ms, and early retries only add broadcasts (a 250 ms
		// first retry made 85 of 200 clients send twice).
		dhcpclient.WithFirstRetry(1 * time.Second),
		dhcpclient.WithLeaseTime(cmp.Or(c.LeaseTime, DefaultLeaseTime)),
	}
	if c.Hostname != "" {
		opts = append(opts, dhcpclient.WithHostname(c.Hostname))
	}
	if c.LeaseFile != "" {
		opts = append(opts, dhcpclient.WithLeaseFile(c.LeaseFile))
	}
	cl, err := dhcpclient.New(a.ifName, a.MAC, pc, opts...) // AttachNS read it
	if err != nil {
		pc.Close()
		in.Close()
		child.Close()
		return fmt.Errorf("nsnet: dhcp: %w", err)
	}
	timeout := c.DHCPTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	lease, err := cl.Acquire(actx)
	cancel()
	if err != nil {
		// A REQUEST without answer in time may still have been granted
		// (a late ACK): give the address back rather than leave it
		// leased at the server until it expires.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if aerr := cl.Abandon(rctx); aerr != nil {
			logf("nsnet: dhcp %s: %v", a.ifName, aerr)
		}
		rcancel()
		cl.Close()
		in.Close()
		child.Close()
		if errors.Is(err, dhcpclient.ErrNoOffer) {
			return fmt.Errorf("nsnet: dhcp %s: no offer in %s", a.ifName, timeout)
		}
		return fmt.Errorf("nsnet: dhcp %s: %w", a.ifName, err)
	}
	a.Addr, a.Gateway, a.DNS, a.Domain = lease.Addr, lease.Router, lease.DNS, lease.Domain
	if len(c.DNS) > 0 {
		a.DNS = c.DNS
	}
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &dhcpLease{client: cl, ifName: a.ifName, logf: logf, conn: in, ns: child, cancel: rcancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		if err := cl.Run(rctx); err != nil {
			logf("nsnet: dhcp %s: %v", a.ifName, err)
		}
	}()
	a.lease = l
	return nil
}

// Bounds of the wait for a sandbox's orphaned TCP connections before its
// lease is released (see close).
const (
	// orphanWait covers three retransmissions of a FIN at the kernel's
	// minimum RTO (200, 400, 800 ms), or the ARP exchange the gateway
	// needs before it can answer (under a storm of sandboxes the
	// neighbour table, shared by all namespaces, is garbage-collected,
	// and the lab was seen waiting for ARP to answer a sandbox's FIN).
	orphanWait = 2 * time.Second
	orphanPoll = 5 * time.Millisecond
)

// close stops renewing and releases the lease, so the server can hand the
// address out again at once.
//
// Releasing removes the address and its routes, so it waits first (at most
// orphanWait) for the TCP connections the payload left behind (closed, or
// open when it exited) to finish their FIN exchange, and aborts those that
// could not (the peer gets a reset). Each such orphan holds a reference on
// the sandbox's namespace; once its address is gone its segments cannot
// leave, and it kept the namespace, its veth and the port on the bridge
// alive until the kernel gave up on it, one to two minutes later.
func (l *dhcpLease) close(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		l.cancel()
		<-l.done
		if n, waited, oerr := sockdiag.Wait(ctx, l.ns, orphanWait, orphanPoll); oerr != nil {
			l.logf("nsnet: dhcp %s: %v", l.ifName, oerr)
		} else if n > 0 {
			// Without its address an orphan can send nothing more,
			// not even a reset: end it now, while the peer can still
			// be told.
			aborted, aerr := sockdiag.Abort(ctx, l.ns)
			l.logf("nsnet: dhcp %s: %d orphaned TCP connections unfinished after %s: %d aborted (%v)", l.ifName, n, waited.Round(time.Millisecond), aborted, aerr)
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if rerr := l.client.Release(rctx); rerr != nil && !errors.Is(rerr, dhcpclient.ErrNoLeaseHeld) {
			err = fmt.Errorf("nsnet: dhcp release: %w", rerr)
		}
		if cerr := l.client.Close(); cerr != nil && err == nil {
			err = cerr
		}
		l.conn.Close()
		l.ns.Close()
	})
	return err
}
