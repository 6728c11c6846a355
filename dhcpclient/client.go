package dhcpclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// State is a state of the RFC 2131 client (figure 5).
type State int

// The client's states. Rebooting is the wait for an answer after the
// INIT-REBOOT request.
const (
	StateInit State = iota
	StateSelecting
	StateRequesting
	StateBound
	StateRenewing
	StateRebinding
	StateInitReboot
	StateRebooting
)

var stateNames = [...]string{"INIT", "SELECTING", "REQUESTING", "BOUND", "RENEWING", "REBINDING", "INIT-REBOOT", "REBOOTING"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Errors of Acquire, matched with errors.Is.
var (
	// ErrNoOffer: the context ended before any acceptable DHCPOFFER came.
	ErrNoOffer = errors.New("no offer")
	// ErrNoLease: offers came but no DHCPACK was accepted before the
	// context ended.
	ErrNoLease = errors.New("no lease")
	// ErrNoLeaseHeld: Release was called without a lease.
	ErrNoLeaseHeld = errors.New("no lease held")
)

// Conn carries the client's DHCP messages on one interface. The raw
// implementation (Listen) uses a packet socket opened inside the interface's
// namespace; tests use a fake or a socketpair.
type Conn interface {
	// Send transmits one DHCP message. With an invalid dst it is broadcast
	// to 255.255.255.255:67 from src:68 (0.0.0.0 when src is invalid);
	// otherwise it is unicast from src:68 to dst:67.
	Send(ctx context.Context, msg []byte, src, dst netip.Addr) error
	// Recv returns the UDP payload of the next datagram for port 68 seen
	// on the interface. It returns an error once ctx is done or the Conn
	// is closed.
	Recv(ctx context.Context) ([]byte, error)
	// Close releases the sockets.
	Close() error
}

// Applier puts a lease into effect on the interface and takes it away.
// NewRtnlApplier is the implementation over rtnl; tests use a fake.
type Applier interface {
	// Apply configures l; prev is the lease it replaces (nil on a first
	// bind), so that an address that changed can be removed.
	Apply(ctx context.Context, prev, l *Lease) error
	// Remove undoes Apply: the address, its routes and the DNS file.
	Remove(ctx context.Context, l *Lease) error
}

// Prober checks that an address is unused before it is configured (RFC 5227
// ARP probe).
type Prober interface {
	// Probe reports whether another host claims addr.
	Probe(ctx context.Context, addr netip.Addr) (conflict bool, err error)
}

// Client is an RFC 2131 client on one interface. Build it with New; it is
// driven by one goroutine at a time (Acquire, Run, Release) and its Lease
// and State methods may be called from any goroutine.
type Client struct {
	ifname    string
	netns     string
	hw        net.HardwareAddr
	conn      Conn
	clock     Clock
	applier   Applier
	prober    Prober
	leaseFile string
	hostname  string
	leaseTime time.Duration
	minLease  time.Duration
	clientID  []byte
	logf      func(format string, args ...any)
	rand      func() float64
	onState   func(State)

	firstRetry    time.Duration
	maxRetry      time.Duration
	minRenewRetry time.Duration
	declineWait   time.Duration
	requestTries  int
	rebootTries   int

	mu    sync.Mutex
	state State
	lease *Lease
	// asked is the offer a REQUEST was sent for and no ACK or NAK
	// answered yet (Abandon).
	asked *asked
}

// asked is an address requested from a server (SELECTING's REQUEST).
type asked struct{ addr, server netip.Addr }

// Option configures a Client (functional options, as in insomniacslk/dhcp).
type Option func(*Client)

// WithClock replaces the system clock (tests).
func WithClock(c Clock) Option { return func(cl *Client) { cl.clock = c } }

// WithApplier sets how leases are put into effect; without it the client
// only negotiates (nothing is configured).
func WithApplier(a Applier) Option { return func(cl *Client) { cl.applier = a } }

// WithProber enables the RFC 5227 check of every acknowledged address; on a
// conflict the client sends DHCPDECLINE and starts over.
func WithProber(p Prober) Option { return func(cl *Client) { cl.prober = p } }

// WithLeaseFile persists the lease to path (atomically) and starts from it
// (INIT-REBOOT) when it holds an unexpired lease for this interface. Without
// it nothing is persisted.
func WithLeaseFile(path string) Option { return func(cl *Client) { cl.leaseFile = path } }

// WithHostname sends option 12.
func WithHostname(h string) Option { return func(cl *Client) { cl.hostname = h } }

// WithLeaseTime asks the server for leases of d (option 51 in DISCOVER and
// REQUEST); servers may grant a different time (dnsmasq and nsbox's own
// grant at least 2 min). Zero (the default) asks for nothing.
func WithLeaseTime(d time.Duration) Option { return func(cl *Client) { cl.leaseTime = d } }

// WithMinLeaseTime sets the floor of the lease timers: a shorter lease is
// used as if it lasted d, with T1 and T2 of at least d/2 and 3d/4
// (default DefaultMinLeaseTime; tests lower it).
func WithMinLeaseTime(d time.Duration) Option { return func(cl *Client) { cl.minLease = d } }

// WithClientID sets option 61; the default is 0x01 followed by the MAC.
func WithClientID(id []byte) Option {
	return func(cl *Client) { cl.clientID = append([]byte(nil), id...) }
}

// WithNetns records the named namespace in the lease (for the lease file,
// -j output and the DNS file); it does not move any socket.
func WithNetns(name string) Option { return func(cl *Client) { cl.netns = name } }

// WithFirstRetry sets the first retransmission delay (RFC 2131 4.1: 4 s,
// the default). It doubles on each try up to WithMaxRetry, with a random
// jitter of plus or minus a quarter of the first delay. Labs use 100 ms.
func WithFirstRetry(d time.Duration) Option { return func(cl *Client) { cl.firstRetry = d } }

// WithMaxRetry caps the retransmission delay (default 64 s).
func WithMaxRetry(d time.Duration) Option { return func(cl *Client) { cl.maxRetry = d } }

// WithMinRenewRetry sets the smallest wait between REQUESTs in RENEWING and
// REBINDING (RFC 2131 4.4.5: 60 s, the default).
func WithMinRenewRetry(d time.Duration) Option { return func(cl *Client) { cl.minRenewRetry = d } }

// WithDeclineWait sets the wait after a DHCPDECLINE before a new DISCOVER
// (RFC 2131 3.1: 10 s, the default).
func WithDeclineWait(d time.Duration) Option { return func(cl *Client) { cl.declineWait = d } }

// WithLogf receives one line per event (state changes, rejected replies
// with their reason); nil (the default) discards them.
func WithLogf(f func(format string, args ...any)) Option { return func(cl *Client) { cl.logf = f } }

// WithStateHook is called on every state change (tests, tracing).
func WithStateHook(f func(State)) Option { return func(cl *Client) { cl.onState = f } }

// WithRand replaces the jitter source (returns values in [0, 1)).
func WithRand(f func() float64) Option { return func(cl *Client) { cl.rand = f } }

// New returns a client for interface ifname with hardware address hw over
// conn. The client owns conn: Close closes it.
func New(ifname string, hw net.HardwareAddr, conn Conn, opts ...Option) (*Client, error) {
	if len(hw) == 0 || len(hw) > 16 {
		return nil, fmt.Errorf("dhcpclient: %s: hardware address %q: need 1 to 16 bytes", ifname, hw)
	}
	c := &Client{
		ifname: ifname, hw: append(net.HardwareAddr(nil), hw...), conn: conn,
		clock: SystemClock{}, logf: func(string, ...any) {}, rand: rand.Float64,
		firstRetry: 4 * time.Second, maxRetry: 64 * time.Second,
		minRenewRetry: 60 * time.Second, declineWait: 10 * time.Second,
		requestTries: 4, rebootTries: 2, minLease: DefaultMinLeaseTime,
	}
	for _, o := range opts {
		o(c)
	}
	if c.clientID == nil {
		c.clientID = append([]byte{byte(iana.HWTypeEthernet)}, c.hw...)
	}
	if c.firstRetry <= 0 || c.maxRetry < c.firstRetry {
		return nil, fmt.Errorf("dhcpclient: %s: retry delays %s..%s: need 0 < first <= max", ifname, c.firstRetry, c.maxRetry)
	}
	return c, nil
}

// Close closes the Conn (a wait for a reply in progress ends with an
// error). The configured address stays (with its lifetime) unless Release
// was called.
func (c *Client) Close() error {
	return c.conn.Close()
}

// State returns the current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Lease returns a copy of the lease held, or nil.
func (c *Client) Lease() *Lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lease == nil {
		return nil
	}
	l := *c.lease
	return &l
}

func (c *Client) setState(s State) {
	c.mu.Lock()
	old := c.state
	c.state = s
	c.mu.Unlock()
	if old != s {
		c.logf("dhcp %s: %s -> %s", c.ifname, old, s)
	}
	if c.onState != nil {
		c.onState(s)
	}
}

func (c *Client) setLease(l *Lease) {
	c.mu.Lock()
	c.lease = l
	c.mu.Unlock()
}

// backoff is the delay before retransmission number attempt (0-based):
// firstRetry doubled per attempt, capped at maxRetry, plus a uniform jitter
// in [-firstRetry/4, +firstRetry/4) (RFC 2131 4.1 with 4 s and 1 s).
func (c *Client) backoff(attempt int) time.Duration {
	d := c.maxRetry
	if attempt < 20 && c.firstRetry<<attempt < c.maxRetry {
		d = c.firstRetry << attempt
	}
	j := c.firstRetry / 4
	return d + time.Duration((c.rand()*2-1)*float64(j))
}

// sleep waits d on the client's clock; it fails only when ctx ends.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := c.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitReply returns the first received reply accepted by match before
// deadline; nil when the deadline passes; an error when ctx ends or the
// Conn fails. Rejected replies are logged with their reason. It reads the
// Conn itself (the socket's buffer is the queue): a reply wakes the
// waiting goroutine directly, with no hand-off through a reader goroutine.
func (c *Client) waitReply(ctx context.Context, deadline time.Time, match func(*dhcpv4.DHCPv4) error) (*dhcpv4.DHCPv4, error) {
	t := c.clock.NewTimer(deadline.Sub(c.clock.Now()))
	defer t.Stop()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	expired := make(chan struct{})
	go func() {
		select {
		case <-t.C():
			close(expired) // before cancel: Recv's caller sees it closed
			cancel()
		case <-rctx.Done():
		}
	}()
	for {
		b, err := c.conn.Recv(rctx)
		if err != nil {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			select {
			case <-expired:
				return nil, nil
			default:
			}
			return nil, fmt.Errorf("dhcpclient: %s: receive: %w", c.ifname, err)
		}
		m, err := c.decode(b)
		if err == nil {
			err = match(m)
		}
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, errNotOurs) {
			c.logf("dhcp %s: ignored reply: %v", c.ifname, err)
		}
	}
}

// errNotOurs marks traffic that is not a reply to this client (our own
// requests echoed by the packet socket, other clients' replies); it is
// dropped without a log line.
var errNotOurs = errors.New("not a reply to this client")

// decode parses a datagram and applies the checks every reply must pass.
func (c *Client) decode(b []byte) (*dhcpv4.DHCPv4, error) {
	if len(b) > maxReplySize {
		return nil, reject("oversized reply: %d bytes", len(b))
	}
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		return nil, reject("malformed: %v", err)
	}
	if m.OpCode != dhcpv4.OpcodeBootReply {
		return nil, errNotOurs
	}
	return m, nil
}

// checkReply verifies xid, chaddr and the message type of a reply.
func (c *Client) checkReply(m *dhcpv4.DHCPv4, xid dhcpv4.TransactionID, types ...dhcpv4.MessageType) error {
	if m.TransactionID != xid {
		return fmt.Errorf("%w: xid %s, want %s", errNotOurs, m.TransactionID, xid)
	}
	if !bytes.Equal(m.ClientHWAddr, c.hw) {
		return reject("chaddr %s, want %s", m.ClientHWAddr, c.hw)
	}
	mt := m.MessageType()
	for _, t := range types {
		if mt == t {
			return nil
		}
	}
	return reject("unexpected %s", mt)
}

// serverOf returns the server identifier of m (option 54), strictly.
func serverOf(m *dhcpv4.DHCPv4) (netip.Addr, error) {
	sid, ok, err := ip4(m, dhcpv4.OptionServerIdentifier)
	if err != nil {
		return netip.Addr{}, err
	}
	if !ok || sid.IsUnspecified() {
		return netip.Addr{}, reject("server identifier missing or 0.0.0.0")
	}
	return sid, nil
}

// message builds a request of type mt with the client's identity options.
func (c *Client) message(mt dhcpv4.MessageType, xid dhcpv4.TransactionID) *dhcpv4.DHCPv4 {
	m := &dhcpv4.DHCPv4{
		OpCode: dhcpv4.OpcodeBootRequest, HWType: iana.HWTypeEthernet,
		ClientHWAddr: c.hw, TransactionID: xid,
		ClientIPAddr: net.IPv4zero, YourIPAddr: net.IPv4zero,
		ServerIPAddr: net.IPv4zero, GatewayIPAddr: net.IPv4zero,
		Options: dhcpv4.Options{},
	}
	if b, ok := c.conn.(interface{ broadcastReplies() bool }); ok && b.broadcastReplies() {
		m.SetBroadcast() // unset again where ciaddr is set (RENEWING, REBINDING)
	}
	m.UpdateOption(dhcpv4.OptMessageType(mt))
	m.UpdateOption(dhcpv4.OptClientIdentifier(c.clientID))
	if mt == dhcpv4.MessageTypeDiscover || mt == dhcpv4.MessageTypeRequest {
		if c.hostname != "" {
			m.UpdateOption(dhcpv4.OptHostName(c.hostname))
		}
		if c.leaseTime >= time.Second {
			m.UpdateOption(dhcpv4.OptIPAddressLeaseTime(c.leaseTime.Truncate(time.Second)))
		}
		m.UpdateOption(dhcpv4.OptParameterRequestList(
			dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionDomainName, dhcpv4.OptionInterfaceMTU, dhcpv4.OptionBroadcastAddress,
			dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionServerIdentifier,
			dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue,
			dhcpv4.OptionClasslessStaticRoute,
		))
		m.UpdateOption(dhcpv4.OptMaxMessageSize(maxReplySize))
	}
	return m
}

func newXID() dhcpv4.TransactionID {
	var x dhcpv4.TransactionID
	v := rand.Uint32()
	x[0], x[1], x[2], x[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return x
}

func (c *Client) send(ctx context.Context, m *dhcpv4.DHCPv4, src, dst netip.Addr) error {
	return c.sendWith(ctx, c.conn.Send, m, src, dst)
}

// lastSender is a Conn that can send a message as the last one before its
// process (and with it, maybe, its namespace) ends: sendLast returns once
// the datagram has left the socket (see waitSent). Only Release needs it:
// every other message is sent by a client that keeps running.
type lastSender interface {
	sendLast(ctx context.Context, msg []byte, src, dst netip.Addr) error
}

// sendLast sends m as Release's last message: through the Conn's sendLast
// where it has one.
func (c *Client) sendLast(ctx context.Context, m *dhcpv4.DHCPv4, src, dst netip.Addr) error {
	send := c.conn.Send
	if l, ok := c.conn.(lastSender); ok {
		send = l.sendLast
	}
	return c.sendWith(ctx, send, m, src, dst)
}

func (c *Client) sendWith(ctx context.Context, send func(context.Context, []byte, netip.Addr, netip.Addr) error, m *dhcpv4.DHCPv4, src, dst netip.Addr) error {
	if err := send(ctx, m.ToBytes(), src, dst); err != nil {
		return fmt.Errorf("dhcpclient: %s: send %s: %w", c.ifname, m.MessageType(), err)
	}
	return nil
}

// Acquire obtains a lease and applies it: from the lease file through
// INIT-REBOOT when it holds an unexpired lease, else through DISCOVER. It
// returns when the client is BOUND, or when ctx ends (wrapping ErrNoOffer or
// ErrNoLease and ctx's error). Nothing is configured unless it succeeds.
func (c *Client) Acquire(ctx context.Context) (*Lease, error) {
	if err := c.run(ctx, false); err != nil {
		return nil, err
	}
	return c.Lease(), nil
}

// Run acquires a lease if none is held, then keeps it: renews at T1,
// rebinds at T2, removes the address at expiry and starts over, until ctx
// ends. It returns nil when ctx is cancelled (the lease stays configured:
// call Release to give it back), or the first error it cannot recover from.
func (c *Client) Run(ctx context.Context) error {
	err := c.run(ctx, true)
	if ctx.Err() != nil && c.Lease() != nil {
		return nil
	}
	return err
}

func (c *Client) run(ctx context.Context, keep bool) error {
	if c.Lease() == nil && c.leaseFile != "" {
		c.loadLease()
	}
	if c.Lease() != nil && c.State() != StateBound {
		c.setState(StateInitReboot)
	}
	gotOffer := false
	fail := func(err error) error {
		why := ErrNoOffer
		if gotOffer {
			why = ErrNoLease
		}
		return fmt.Errorf("dhcpclient: %s: %w (%w)", c.ifname, why, err)
	}
	var offer *dhcpv4.DHCPv4
	naks := 0
	for {
		if err := ctx.Err(); err != nil {
			if c.State() == StateBound || c.State() == StateRenewing || c.State() == StateRebinding {
				return err
			}
			return fail(err)
		}
		switch c.State() {
		case StateInit:
			c.setState(StateSelecting)
			o, err := c.selecting(ctx)
			if err != nil {
				return fail(err)
			}
			gotOffer, offer = true, o
			c.setState(StateRequesting)
		case StateRequesting:
			c.setAsked(offer)
			l, err := c.requesting(ctx, offer)
			if err != nil {
				return fail(err) // asked stays: see Abandon
			}
			c.setAsked(nil)
			if l == nil { // NAK or no answer
				c.setState(StateInit)
				if err := c.sleep(ctx, c.backoff(naks)); err != nil {
					return fail(err)
				}
				naks++
				continue
			}
			ok, err := c.bind(ctx, nil, l)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if !keep {
				return nil
			}
		case StateInitReboot:
			l, err := c.rebooting(ctx)
			if err != nil {
				return fail(err)
			}
			if l == nil {
				c.setState(StateInit)
				continue
			}
			ok, err := c.bind(ctx, nil, l)
			if err != nil {
				return err
			}
			if ok && !keep {
				return nil
			}
		case StateBound:
			if !keep {
				return nil
			}
			l := c.Lease()
			if l.Infinite() {
				<-ctx.Done()
				continue
			}
			if err := c.sleep(ctx, l.RenewAt().Sub(c.clock.Now())); err != nil {
				continue
			}
			c.setState(StateRenewing)
		case StateRenewing, StateRebinding:
			if err := c.renewing(ctx); err != nil {
				return err
			}
		default:
			return fmt.Errorf("dhcpclient: %s: bad state %s", c.ifname, c.State())
		}
	}
}

// loadLease reads the lease file and keeps an unexpired lease of this
// interface for INIT-REBOOT.
func (c *Client) loadLease() {
	l, err := LoadLease(c.leaseFile)
	switch {
	case err != nil:
		c.logf("dhcp %s: %v (starting from INIT)", c.ifname, err)
	case l == nil:
	case l.Interface != c.ifname:
		c.logf("dhcp %s: lease file %s is for %s, ignored", c.ifname, c.leaseFile, l.Interface)
	case !l.Infinite() && !l.Expiry().After(c.clock.Now()):
		c.logf("dhcp %s: lease of %s in %s expired at %s", c.ifname, l.Addr, c.leaseFile, l.Expiry().Format(time.RFC3339))
	default:
		c.setLease(l)
	}
}

// setAsked records the offer a REQUEST is sent for (nil: answered).
func (c *Client) setAsked(offer *dhcpv4.DHCPv4) {
	var a *asked
	if offer != nil {
		sid, _ := serverOf(offer)
		if addr, ok := netip.AddrFromSlice(offer.YourIPAddr.To4()); ok {
			a = &asked{addr: addr, server: sid}
		}
	}
	c.mu.Lock()
	c.asked = a
	c.mu.Unlock()
}

// Abandon gives back the address of an Acquire that failed with
// ErrNoLease: its REQUEST was sent, and the server may have committed the
// lease and sent an ACK that came too late (a server under load; seen
// with dnsmasq, whose lease file then kept the address until expiry). It
// broadcasts a DHCPRELEASE for that address to that server (the address
// was never configured, so the release cannot come from it); a server
// without such a lease ignores it. It does nothing when no REQUEST is
// unanswered.
func (c *Client) Abandon(ctx context.Context) error {
	c.mu.Lock()
	a := c.asked
	c.asked = nil
	c.mu.Unlock()
	if a == nil || c.Lease() != nil {
		return nil
	}
	m := c.message(dhcpv4.MessageTypeRelease, newXID())
	m.ClientIPAddr = a.addr.AsSlice()
	m.UpdateOption(dhcpv4.OptServerIdentifier(a.server.AsSlice()))
	if err := c.send(ctx, m, netip.Addr{}, netip.Addr{}); err != nil {
		return err
	}
	c.logf("dhcp %s: released %s to %s (requested, no answer)", c.ifname, a.addr, a.server)
	return nil
}

// selecting broadcasts DISCOVER until an acceptable OFFER arrives.
func (c *Client) selecting(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	xid := newXID()
	m := c.message(dhcpv4.MessageTypeDiscover, xid)
	if l := c.Lease(); l != nil { // ask for the previous address
		m.UpdateOption(dhcpv4.OptRequestedIPAddress(l.Addr.Addr().AsSlice()))
	}
	start := c.clock.Now()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			c.logf("dhcp %s: no offer yet, DISCOVER again (try %d)", c.ifname, attempt+1)
		}
		m.NumSeconds = uint16(min(c.clock.Now().Sub(start)/time.Second, 0xffff))
		if err := c.send(ctx, m, netip.Addr{}, netip.Addr{}); err != nil {
			c.logf("%v", err)
		}
		deadline := c.clock.Now().Add(c.backoff(attempt))
		reply, err := c.waitReply(ctx, deadline, func(r *dhcpv4.DHCPv4) error {
			if err := c.checkReply(r, xid, dhcpv4.MessageTypeOffer); err != nil {
				return err
			}
			_, err := parseLease(r, start)
			return err
		})
		if err != nil {
			return nil, err
		}
		if reply != nil {
			c.logf("dhcp %s: offer of %s from %s", c.ifname, reply.YourIPAddr, reply.ServerIdentifier())
			return reply, nil
		}
	}
}

// requesting sends the REQUEST for offer; it returns the lease on ACK, nil
// on NAK or when the server does not answer.
func (c *Client) requesting(ctx context.Context, offer *dhcpv4.DHCPv4) (*Lease, error) {
	sid, _ := serverOf(offer)
	m := c.message(dhcpv4.MessageTypeRequest, offer.TransactionID)
	m.UpdateOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))
	m.UpdateOption(dhcpv4.OptServerIdentifier(sid.AsSlice()))
	l, _, err := c.exchange(ctx, m, netip.Addr{}, netip.Addr{}, sid, c.requestTries, 0, time.Time{})
	return l, err
}

// rebooting sends the INIT-REBOOT REQUEST for the remembered lease.
func (c *Client) rebooting(ctx context.Context) (*Lease, error) {
	old := c.Lease()
	c.setState(StateRebooting)
	m := c.message(dhcpv4.MessageTypeRequest, newXID())
	m.UpdateOption(dhcpv4.OptRequestedIPAddress(old.Addr.Addr().AsSlice()))
	l, _, err := c.exchange(ctx, m, netip.Addr{}, netip.Addr{}, netip.Addr{}, c.rebootTries, 0, old.Expiry())
	if err != nil {
		return nil, err
	}
	if l == nil {
		// NAK or silence: forget the old lease (its address, if still
		// configured from an earlier run, is removed) and start over.
		c.unbind(ctx, old)
	}
	return l, nil
}

// exchange sends m up to tries times with backoff (or waiting per each
// time when per is set; never past until, if set) and waits for an ACK or NAK with m's xid, from server when it is
// valid. It returns the new lease, or nil with nak set on NAK, or nil on no
// answer.
func (c *Client) exchange(ctx context.Context, m *dhcpv4.DHCPv4, src, dst, server netip.Addr, tries int, per time.Duration, until time.Time) (lease *Lease, nak bool, err error) {
	for attempt := 0; attempt < tries; attempt++ {
		if attempt > 0 {
			c.logf("dhcp %s: no answer yet, %s again (try %d)", c.ifname, m.MessageType(), attempt+1)
		}
		sent := c.clock.Now()
		if err := c.send(ctx, m, src, dst); err != nil {
			c.logf("%v", err)
		}
		wait := per
		if wait <= 0 {
			wait = c.backoff(attempt)
		}
		deadline := sent.Add(wait)
		if !until.IsZero() && deadline.After(until) {
			deadline = until
		}
		reply, err := c.waitReply(ctx, deadline, func(r *dhcpv4.DHCPv4) error {
			if err := c.checkReply(r, m.TransactionID, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak); err != nil {
				return err
			}
			sid, err := serverOf(r)
			if err != nil {
				return err
			}
			if server.IsValid() && sid != server {
				return reject("%s from server %s, not the selected %s", r.MessageType(), sid, server)
			}
			if r.MessageType() == dhcpv4.MessageTypeNak {
				return nil
			}
			lease, err = parseLease(r, sent)
			return err
		})
		if err != nil {
			return nil, false, err
		}
		if reply == nil {
			if !until.IsZero() && !c.clock.Now().Before(until) {
				break
			}
			continue
		}
		if reply.MessageType() == dhcpv4.MessageTypeNak {
			c.logf("dhcp %s: NAK from %s: %s", c.ifname, reply.ServerIdentifier(), reply.Message())
			return nil, true, nil
		}
		return lease, false, nil
	}
	c.logf("dhcp %s: no answer to %s", c.ifname, m.MessageType())
	return nil, false, nil
}

// bind checks (ARP probe), applies and saves l. It returns false when the
// address was declined (the client is back in INIT).
func (c *Client) bind(ctx context.Context, prev, l *Lease) (bool, error) {
	l.Interface, l.Netns, l.ClientID = c.ifname, c.netns, c.clientID
	if clampTimers(l, c.minLease) {
		c.logf("dhcp %s: server's timers raised to lease %s, T1 %s, T2 %s", c.ifname, l.LeaseTime, l.T1, l.T2)
	}
	if c.prober != nil && (prev == nil || prev.Addr.Addr() != l.Addr.Addr()) {
		conflict, err := c.prober.Probe(ctx, l.Addr.Addr())
		if err != nil {
			c.logf("dhcp %s: arp probe of %s: %v (address used anyway)", c.ifname, l.Addr.Addr(), err)
		}
		if conflict {
			c.logf("dhcp %s: %s is in use by another host: declining", c.ifname, l.Addr.Addr())
			d := c.message(dhcpv4.MessageTypeDecline, newXID())
			d.UpdateOption(dhcpv4.OptRequestedIPAddress(l.Addr.Addr().AsSlice()))
			d.UpdateOption(dhcpv4.OptServerIdentifier(l.Server.AsSlice()))
			if err := c.send(ctx, d, netip.Addr{}, netip.Addr{}); err != nil {
				c.logf("%v", err)
			}
			if prev != nil {
				c.unbind(ctx, prev)
			}
			c.setState(StateInit)
			if err := c.sleep(ctx, c.declineWait); err != nil {
				return false, nil // run notices ctx
			}
			return false, nil
		}
	}
	if c.applier != nil {
		if err := c.applier.Apply(ctx, prev, l); err != nil {
			return false, fmt.Errorf("dhcpclient: %s: apply lease %s: %w", c.ifname, l.Addr, err)
		}
	}
	c.setLease(l)
	if c.leaseFile != "" {
		if err := SaveLease(c.leaseFile, l); err != nil {
			c.logf("dhcp %s: %v", c.ifname, err)
		}
	}
	c.logf("dhcp %s: bound to %s from %s, lease %s", c.ifname, l.Addr, l.Server, l.LeaseTime)
	c.setState(StateBound)
	return true, nil
}

// unbind removes l from the interface and forgets it.
func (c *Client) unbind(ctx context.Context, l *Lease) {
	if c.applier != nil && l != nil {
		if err := c.applier.Remove(ctx, l); err != nil {
			c.logf("dhcp %s: remove %s: %v", c.ifname, l.Addr, err)
		}
	}
	c.setLease(nil)
	if c.leaseFile != "" {
		if err := os.Remove(c.leaseFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.logf("dhcp %s: remove lease file: %v", c.ifname, err)
		}
	}
}

// renewing runs RENEWING then REBINDING (RFC 2131 4.4.5) until an ACK
// (BOUND), a NAK or expiry (INIT, address removed), or ctx ends.
func (c *Client) renewing(ctx context.Context) error {
	old := c.Lease()
	addr := old.Addr.Addr()
	m := c.message(dhcpv4.MessageTypeRequest, newXID())
	m.ClientIPAddr = addr.AsSlice()
	m.SetUnicast() // the ACK comes to ciaddr
	for {
		now := c.clock.Now()
		state := StateRenewing
		limit := old.RebindAt()
		if !now.Before(limit) {
			state, limit = StateRebinding, old.Expiry()
		}
		if !now.Before(limit) { // expired
			c.logf("dhcp %s: lease of %s expired", c.ifname, old.Addr)
			c.unbind(ctx, old)
			c.setState(StateInit)
			return nil
		}
		if c.State() != state {
			c.setState(state)
			m.TransactionID = newXID()
		}
		wait := max(limit.Sub(now)/2, c.minRenewRetry)
		deadline := now.Add(wait)
		if deadline.After(limit) {
			deadline = limit
		}
		dst, server := old.Server, old.Server
		if state == StateRebinding {
			dst, server = netip.Addr{}, netip.Addr{}
		}
		l, nak, err := c.exchange(ctx, m, addr, dst, server, 1, wait, deadline)
		if err != nil {
			return nil // ctx ended: run returns
		}
		if l != nil {
			_, err := c.bind(ctx, old, l)
			return err
		}
		if nak {
			c.logf("dhcp %s: lease of %s refused while %s", c.ifname, old.Addr, state)
			c.unbind(ctx, old)
			c.setState(StateInit)
			return nil
		}
	}
}

// Release gives the lease back: a DHCPRELEASE unicast to the server, then
// the address, routes and DNS file are removed and the lease file deleted.
// A client that holds no lease releases the one of its lease file (what
// `nsbox dhcp -r` does when no client runs).
func (c *Client) Release(ctx context.Context) error {
	if c.Lease() == nil && c.leaseFile != "" {
		c.loadLease()
	}
	l := c.Lease()
	if l == nil {
		return fmt.Errorf("dhcpclient: %s: release: %w", c.ifname, ErrNoLeaseHeld)
	}
	m := c.message(dhcpv4.MessageTypeRelease, newXID())
	m.SetUnicast()
	m.ClientIPAddr = l.Addr.Addr().AsSlice()
	m.UpdateOption(dhcpv4.OptServerIdentifier(l.Server.AsSlice()))
	err := c.sendLast(ctx, m, l.Addr.Addr(), l.Server)
	c.unbind(ctx, l)
	c.setState(StateInit)
	c.logf("dhcp %s: released %s to %s", c.ifname, l.Addr, l.Server)
	return err
}
