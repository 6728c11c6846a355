package pool

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/poolwire"
	"github.com/nsbox/nsbox/nat"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/nsnet"
	"github.com/nsbox/nsbox/rtnl"
)

// ErrStopped is returned by Claim once the pool is stopping or stopped.
var ErrStopped = errors.New("pool stopped")

// Error is the one error shape of this package: the operation, the pool
// (or socket) and the cause.
type Error struct {
	Op     string // "start", "claim", "status", "stop", "refill"
	Object string // the pool's name or socket path
	Err    error
}

// Error renders "pool: OP OBJECT: cause".
func (e *Error) Error() string {
	if e.Object == "" {
		return "pool: " + e.Op + ": " + e.Err.Error()
	}
	return "pool: " + e.Op + " " + e.Object + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Status is a pool's counters, as `nsbox -j pool status` prints them.
type Status struct {
	Name      string `json:"name"`
	Ready     int    `json:"ready"`     // wired namespaces waiting for a claim
	InUse     int    `json:"in_use"`    // claimed and not yet released
	Refilling int    `json:"refilling"` // being wired now
	Failures  int    `json:"failures"`  // wirings that failed since the start
}

// entry is one namespace the pool wired.
type entry struct {
	ns        *netns.Handle
	att       *nsnet.Attachment
	addr      netip.Prefix
	gw        netip.Addr
	dns       []netip.Addr
	static    netip.Addr       // the range address it holds, if any
	primed    bool             // the bridge's namespace holds a neighbour entry for addr
	gwMAC     net.HardwareAddr // the MAC of its gateway's neighbour entry, if primed
	reply     []byte           // the claim's reply, made while wiring (off the claim's clock)
	resolv    *os.File         // its resolv.conf under poolwire.ResolvDir, for the socket's clients
	mac       net.HardwareAddr // its interface's (set by prime)
	leaseFile string           // its DHCP lease's file (see leases.go), if any
}

// Pool keeps Config.Size namespaces ready. Its methods are safe for
// concurrent use.
type Pool struct {
	cfg      Config
	bridgeNS *netns.Handle
	ifTag    string // random part of the host ends' names
	gateway  netip.Addr
	// bridgeMAC and bridgeAddrs are the bridge's (its MAC pinned at the
	// start), for the neighbour entries each namespace gets when wired.
	bridgeMAC   net.HardwareAddr
	bridgeAddrs []netip.Prefix

	ctx    context.Context
	cancel context.CancelCauseFunc

	ready chan *entry // capacity Size
	kick  chan struct{}

	mu        sync.Mutex
	inUse     int
	lastBusy  time.Time // the last claim or release
	graves    []*entry  // released, to be destroyed in a pause (giveBack)
	refilling int
	failures  int
	seq       uint64
	used      map[netip.Addr]bool // range addresses held by an entry
	waiting   map[*entry]bool     // wired and not yet claimed (for re-priming)
	cursor    int                 // next range offset to try (round robin, so a freed address rests)
	waiters   int                 // claims waiting for a namespace (take)
	cores     int                 // runtime.NumCPU(), or a test's value

	listener *net.UnixListener
	dir      *os.File // poolwire.ResolvDir, open and flocked while it exists (dir.go)
	natTable *nat.Table
	natEntry nat.Masquerade

	wg       sync.WaitGroup // refill workers, connections, loops
	done     chan struct{}
	closeErr error
}

func (p *Pool) logf(format string, args ...any) {
	if p.cfg.Logf != nil {
		p.cfg.Logf(format, args...)
	}
}

func (p *Pool) name() string {
	if p.cfg.Name == "" {
		return p.cfg.Bridge
	}
	return p.cfg.Name
}

// Start checks cfg and the bridge, masquerades it with cfg.NAT, listens on
// the pool's socket when cfg.Name is set, and starts filling in the
// background; WaitReady waits for the fill. The pool runs until ctx ends,
// Close is called, a client asks it to stop or its bridge vanishes.
func Start(ctx context.Context, cfg Config) (_ *Pool, err error) {
	wrap := func(err error) error { return &Error{Op: "start", Object: cfg.Name, Err: err} }
	if err := cfg.validate(); err != nil {
		return nil, wrap(err)
	}
	if cfg.Workers == 0 {
		// A wiring mostly waits (for the kernel's link watcher, for DHCP
		// replies), so refills go faster in parallel: 60 sequential claims
		// from a DHCP pool of 16 took 3.5 s with 8 at once, 2.2 s with 16,
		// 1.5 s with 32.
		cfg.Workers = max(8, min(cfg.Size, 64))
	}
	if cfg.RefillDelay == 0 {
		cfg.RefillDelay = DefaultRefillDelay
	}
	var tag [2]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return nil, wrap(err)
	}
	p := &Pool{cfg: cfg, ifTag: hex.EncodeToString(tag[:]), ready: make(chan *entry, cfg.Size), cores: runtime.NumCPU(),
		kick: make(chan struct{}, 1), used: map[netip.Addr]bool{}, waiting: map[*entry]bool{}, done: make(chan struct{})}
	if cfg.BridgeNS != nil {
		if p.bridgeNS, err = netns.Open("/proc/self/fd/" + strconv.Itoa(cfg.BridgeNS.Fd())); err != nil {
			return nil, wrap(err)
		}
	} else if p.bridgeNS, err = netns.Current(); err != nil {
		return nil, wrap(err)
	}
	p.cfg.BridgeNS = p.bridgeNS
	p.ctx, p.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			p.cancel(err)
			p.teardown()
		}
	}()
	bridgeAddrs, bridgeMAC, err := p.checkBridge(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	p.bridgeAddrs = bridgeAddrs
	if cfg.Range.IsValid() {
		p.gateway = cfg.Gateway
		for _, a := range bridgeAddrs {
			if cfg.Range.Prefix().Contains(a.Addr()) {
				p.used[a.Addr()] = true // never hand out the bridge's own address
				if !p.gateway.IsValid() {
					p.gateway = a.Addr()
				}
			}
		}
		if p.gateway.IsValid() {
			p.used[p.gateway] = true
		}
		if free := cfg.Range.Count() - p.usedInRange(); free < cfg.Size {
			return nil, wrap(fmt.Errorf("range %s holds %d free addresses, fewer than the size %d", cfg.Range, free, cfg.Size))
		}
	}
	if cfg.NAT {
		if p.natTable, err = nat.Open(p.bridgeNS); err != nil {
			return nil, wrap(err)
		}
		owner, err := nat.Self("pool " + p.name())
		if err != nil {
			return nil, wrap(err)
		}
		p.natEntry = nat.Masquerade{Bridge: cfg.Bridge, Owner: owner}
		if err := p.natTable.AddMasquerade(ctx, p.natEntry); err != nil {
			p.natTable.Close()
			p.natTable = nil
			return nil, wrap(err)
		}
	}
	if cfg.Name != "" {
		if err := p.listen(); err != nil {
			return nil, wrap(err)
		}
	}
	// Last of the checks, so that a refused start leaves the bridge as it
	// was.
	if err = p.pinBridgeMAC(ctx, bridgeMAC); err != nil {
		return nil, wrap(err)
	}
	p.wg.Add(2)
	go p.refillLoop()
	go p.watchBridge()
	if p.listener != nil {
		if err := p.startServing(); err != nil {
			return nil, wrap(err)
		}
	}
	p.poke()
	go func() {
		<-p.ctx.Done()
		p.teardown()
		close(p.done)
	}()
	return p, nil
}

func (p *Pool) usedInRange() int {
	n := 0
	for a := range p.used {
		if !a.Less(p.cfg.Range.From) && !p.cfg.Range.To.Less(a) {
			n++
		}
	}
	return n
}

// checkBridge returns the bridge's IPv4 addresses and its MAC, or an error
// if it is missing or not a bridge.
func (p *Pool) checkBridge(ctx context.Context) ([]netip.Prefix, net.HardwareAddr, error) {
	c, err := rtnl.Dial(p.bridgeNS)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	l, err := c.LinkByName(ctx, p.cfg.Bridge)
	if errors.Is(err, unix.ENODEV) {
		return nil, nil, bridgeGone(fmt.Sprintf("bridge %s does not exist", p.cfg.Bridge))
	}
	if err != nil {
		return nil, nil, err
	}
	if l.Kind != "bridge" {
		return nil, nil, bridgeGone(fmt.Sprintf("%s is not a bridge", p.cfg.Bridge))
	}
	as, err := c.Addrs(ctx, p.cfg.Bridge)
	if err != nil {
		return nil, nil, err
	}
	var out []netip.Prefix
	for _, a := range as {
		if a.Prefix.Addr().Is4() {
			out = append(out, a.Prefix)
		}
	}
	return out, l.HardwareAddr, nil
}

// bridgeGone is checkBridge's error for a bridge that is missing or is no
// bridge (any other error proves nothing).
type bridgeGone string

func (e bridgeGone) Error() string { return string(e) }

// watchBridge stops the pool when its bridge vanishes.
func (p *Pool) watchBridge() {
	defer p.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
		_, mac, err := p.checkBridge(ctx)
		if err == nil && !bytes.Equal(mac, p.bridgeMAC) {
			p.reprime(ctx, mac)
		}
		cancel()
		var gone bridgeGone
		if err != nil && p.ctx.Err() == nil && !errors.As(err, &gone) {
			// A timeout or a netlink error under load is no proof that
			// the bridge went (a 2.5 s stall of the whole VM stopped a
			// pool in bench/pool): look again at the next tick.
			p.logf("pool %s: bridge check: %v", p.name(), err)
			continue
		}
		if err != nil && p.ctx.Err() == nil {
			p.logf("pool %s: %v: stopping", p.name(), err)
			p.cancel(fmt.Errorf("bridge %s vanished: %w", p.cfg.Bridge, err))
			return
		}
	}
}

// poke asks the refill loop to look at the counters.
func (p *Pool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// refillLoop starts workers while ready+refilling < Size.
func (p *Pool) refillLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
		}
		for {
			p.mu.Lock()
			if p.ctx.Err() != nil {
				p.mu.Unlock()
				break
			}
			quietIn := time.Until(p.lastBusy.Add(p.cfg.RefillDelay))
			if len(p.graves) > 0 && (quietIn <= 0 || len(p.graves) >= p.cfg.Size) {
				gs := p.graves
				p.graves = nil
				p.wg.Add(1)
				p.mu.Unlock()
				go p.bury(gs)
				continue
			}
			// While claims keep coming, a pool that runs low refills with
			// few workers at once, so as not to take the cores from the
			// sandboxes being started (a storm of 200 took 0.95 s with
			// all 64 at work).
			workers := p.cfg.Workers
			if p.cfg.RefillDelay > 0 && quietIn > 0 {
				workers = min(workers, busyWorkers)
			}
			full := len(p.ready)+p.refilling >= p.cfg.Size || p.refilling >= workers
			if wait := p.refillWait(); wait > 0 || (full && len(p.graves) > 0) {
				p.mu.Unlock()
				// Until the pause, or until a claim or release changes
				// the counts (a claim that waits refills at once).
				t := time.NewTimer(max(wait, quietIn))
				select {
				case <-p.ctx.Done():
					t.Stop()
					return
				case <-t.C:
				case <-p.kick:
					t.Stop()
				}
				continue
			}
			if full {
				p.mu.Unlock()
				break
			}
			static, ok := p.allocStatic()
			if !ok {
				p.mu.Unlock()
				break // the range is all in use: a release pokes again
			}
			p.refilling++
			p.seq++
			hostIf := "np" + p.ifTag + strconv.FormatUint(p.seq, 16)
			p.wg.Add(1)
			p.mu.Unlock()
			go p.refill(hostIf, static)
		}
	}
}

// busyWorkers is how many namespaces are wired at once while claims keep
// coming.
const busyWorkers = 2

// refillWait is how long refills wait still: until RefillDelay has passed
// since the last claim or release; at once when a claim waits, or when no
// more than a quarter of the pool is ready while no more sandboxes are in
// use than there are cores. Why: a refill costs the kernel a namespace, a
// veth and a lease on the same cores as the sandboxes being started; while
// claims keep coming, it waits for a pause rather than slow them
// (bench/pool's p99). Releases count too: in a burst of sandboxes the
// claims end well before the sandboxes do (in a storm of 200 at load 5,
// 20 ms after the last claim, 128 ms into 255, 64 refills and the
// destruction of the released namespaces started beside the 100 or so
// sandboxes still running). And a pool that runs low refills at once only
// while the cores have room: one sandbox after the other (bench/pool's
// NetStart/seq) leaves a core free, 200 at once leave none, and the
// refills there (2 at a time from the 150th claim) were 100-220 ms of the
// pool's and the DHCP server's CPU in a storm of 0.5-0.8 s.
// p.mu is held.
func (p *Pool) refillWait() time.Duration {
	if p.cfg.RefillDelay <= 0 || len(p.ready)+p.refilling >= p.cfg.Size || p.waiters > 0 ||
		(len(p.ready) <= p.cfg.Size/4 && p.inUse <= p.cores) {
		return 0
	}
	return time.Until(p.lastBusy.Add(p.cfg.RefillDelay))
}

// allocStatic takes the next free range address (round robin); without a
// range it returns an invalid address and true. p.mu is held.
func (p *Pool) allocStatic() (netip.Addr, bool) {
	if !p.cfg.Range.IsValid() {
		return netip.Addr{}, true
	}
	n := p.cfg.Range.Count()
	for i := 0; i < n; i++ {
		off := (p.cursor + i) % n
		a := p.cfg.Range.From
		for j := 0; j < off; j++ {
			a = a.Next()
		}
		if !p.used[a] {
			p.used[a] = true
			p.cursor = off + 1
			return a, true
		}
	}
	return netip.Addr{}, false
}

// refill wires one namespace and queues it.
func (p *Pool) refill(hostIf string, static netip.Addr) {
	defer p.wg.Done()
	e, err := p.wire(hostIf, static)
	p.mu.Lock()
	p.refilling--
	if err != nil {
		if static.IsValid() {
			delete(p.used, static)
		}
		if p.ctx.Err() == nil {
			p.failures++
			p.logf("pool %s: refill: %v", p.name(), err)
		}
		p.mu.Unlock()
		if p.ctx.Err() == nil {
			// Retry later, not in a tight loop.
			select {
			case <-p.ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			p.poke()
		}
		return
	}
	for e.gwMAC != nil && !bytes.Equal(e.gwMAC, p.bridgeMAC) && p.ctx.Err() == nil {
		// The bridge's MAC changed while e was wired (see reprime).
		p.mu.Unlock()
		if err := p.primeGateway(p.ctx, e); err != nil {
			p.logf("pool %s: neighbour of %s: %v", p.name(), e.addr, err)
			e.gwMAC = nil // the kernel will resolve it
		}
		p.mu.Lock()
	}
	if p.ctx.Err() != nil {
		p.mu.Unlock()
		p.destroy(e)
		return
	}
	p.waiting[e] = true
	p.ready <- e // never blocks: ready+refilling <= Size
	p.mu.Unlock()
	p.poke()
}

func (p *Pool) wire(hostIf string, static netip.Addr) (*entry, error) {
	start := time.Now()
	ns, err := newNetns()
	if err != nil {
		return nil, err
	}
	c := nsnet.Config{Bridge: p.cfg.Bridge, BridgeNS: p.bridgeNS, IfName: p.cfg.IfName, DHCP: p.cfg.DHCP,
		DHCPTimeout: p.cfg.DHCPTimeout, Logf: p.cfg.Logf, LeaseFile: p.leaseFile(hostIf)}
	if static.IsValid() {
		c.Addr = netip.PrefixFrom(static, p.cfg.Range.Bits)
		c.Gateway = p.gateway
	}
	att, err := nsnet.AttachNS(p.ctx, &c, ns, hostIf)
	if err != nil {
		ns.Close()
		forgetLease(c.LeaseFile)
		return nil, err
	}
	e := &entry{ns: ns, att: att, addr: att.Addr, gw: att.Gateway, dns: p.cfg.DNS, static: static, leaseFile: c.LeaseFile}
	if len(e.dns) == 0 {
		e.dns = att.DNS
	}
	// Only the first connection's speed depends on these: a failure is
	// logged, not fatal.
	if err := p.prime(e); err != nil {
		p.logf("pool %s: %v", p.name(), err)
	}
	if e.reply, err = p.claimReply(e); err == nil {
		e.resolv, err = p.writeResolv(hostIf, e.dns)
	}
	if err == nil {
		err = p.recordOwner(e, hostIf, e.mac)
	}
	if err != nil {
		p.unprime(e)
		att.Detach(context.Background())
		forgetLease(e.leaseFile)
		ns.Close()
		return nil, err
	}
	p.logf("pool %s: wired %s (%s) in %s", p.name(), e.addr, hostIf, time.Since(start).Round(time.Microsecond))
	return e, nil
}

// writeResolv writes a namespace's resolv.conf under the pool's
// poolwire.ResolvDir and returns it open (nil without DNS servers or
// without a socket: a Slot of this process carries its DNS).
func (p *Pool) writeResolv(hostIf string, dns []netip.Addr) (*os.File, error) {
	conf := resolvConf(dns)
	if p.listener == nil || conf == nil {
		return nil, nil
	}
	path := filepath.Join(poolwire.ResolvDir(p.cfg.Name), hostIf)
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		return nil, fmt.Errorf("resolv.conf: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("resolv.conf: %w", err)
	}
	return f, nil
}

// destroy releases e's lease and closes its namespace (the kernel removes
// it with its veth); its range address becomes free.
func (p *Pool) destroy(e *entry) {
	p.mu.Lock()
	delete(p.waiting, e) // reprime holds p.mu while it uses e.ns
	p.mu.Unlock()
	p.unprime(e)
	if e.resolv != nil {
		os.Remove(e.resolv.Name())
		e.resolv.Close()
	}
	if err := e.att.Detach(context.Background()); err != nil {
		p.logf("pool %s: release %s: %v", p.name(), e.addr, err)
	}
	forgetLease(e.leaseFile)
	e.ns.Close()
	if e.static.IsValid() {
		p.mu.Lock()
		delete(p.used, e.static)
		p.mu.Unlock()
	}
}

// take waits for a ready entry until ctx ends or the pool stops.
func (p *Pool) take(ctx context.Context) (*entry, error) {
	select {
	case e := <-p.ready:
		return p.taken(e), nil
	default:
	}
	// A waiting claim refills at once (refillWait).
	p.mu.Lock()
	p.waiters++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.waiters--
		p.mu.Unlock()
	}()
	p.poke()
	select {
	case e := <-p.ready:
		return p.taken(e), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.ctx.Done():
		return nil, p.stopErr()
	}
}

// taken counts e in use and lets the refill loop know. Nothing else
// happens on the claim's clock: what a namespace needs before its payload
// runs was done when it was wired (see prime).
// The caller pokes the refill loop once the namespace is handed over, so
// that no refill starts before the claim's reply is out.
func (p *Pool) taken(e *entry) *entry {
	p.mu.Lock()
	delete(p.waiting, e)
	p.inUse++
	p.lastBusy = time.Now()
	p.mu.Unlock()
	return e
}

// giveBack destroys a claimed entry and refills.
//
// With a RefillDelay the destruction waits, as refills do, for a pause in
// the claims and releases (or for Size entries to wait so): tearing a
// namespace down (its lease's release, the kernel's cleanup of the
// namespace and its veth) costs the same cores as the sandboxes being
// started, and a release is a sandbox that ends while others may still run.
func (p *Pool) giveBack(e *entry) {
	p.mu.Lock()
	p.inUse--
	p.lastBusy = time.Now()
	if p.cfg.RefillDelay > 0 && p.ctx.Err() == nil {
		p.graves = append(p.graves, e)
		p.mu.Unlock()
		p.poke()
		return
	}
	p.mu.Unlock()
	p.destroy(e)
	p.poke()
}

// bury destroys released entries, one after the other, and refills.
func (p *Pool) bury(gs []*entry) {
	defer p.wg.Done()
	for _, e := range gs {
		p.destroy(e)
	}
	p.poke()
}

func (p *Pool) stopErr() error {
	if c := context.Cause(p.ctx); c != nil && !errors.Is(c, context.Canceled) {
		return fmt.Errorf("%w: %w", ErrStopped, c)
	}
	return ErrStopped
}

// Claim takes a ready namespace, waiting until ctx ends if none is ready.
// The Slot must be released; it is never handed out again.
func (p *Pool) Claim(ctx context.Context) (*Slot, error) {
	e, err := p.take(ctx)
	if err != nil {
		return nil, &Error{Op: "claim", Object: p.name(), Err: err}
	}
	bh, err := netns.Open("/proc/self/fd/" + strconv.Itoa(p.bridgeNS.Fd()))
	if err != nil {
		p.giveBack(e)
		return nil, &Error{Op: "claim", Object: p.name(), Err: err}
	}
	// The slot's own handle: giveBack closes the entry's.
	ns, err := netns.Open("/proc/self/fd/" + strconv.Itoa(e.ns.Fd()))
	if err != nil {
		bh.Close()
		p.giveBack(e)
		return nil, &Error{Op: "claim", Object: p.name(), Err: err}
	}
	s := &Slot{ns: ns, bridgeNS: bh, bridge: p.cfg.Bridge, addr: e.addr, gw: e.gw, dns: e.dns, ifName: ifNameOr(p.cfg.IfName)}
	s.release = func() error { p.giveBack(e); return nil }
	p.poke()
	return s, nil
}

func ifNameOr(n string) string {
	if n == "" {
		return "eth0"
	}
	return n
}

// WaitReady waits until Size namespaces are ready (or ctx ends, or the
// pool stops).
func (p *Pool) WaitReady(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if len(p.ready) >= p.cfg.Size {
			return nil
		}
		select {
		case <-ctx.Done():
			return &Error{Op: "wait", Object: p.name(), Err: ctx.Err()}
		case <-p.ctx.Done():
			return &Error{Op: "wait", Object: p.name(), Err: p.stopErr()}
		case <-t.C:
		}
	}
}

// Status returns the counters.
func (p *Pool) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Status{Name: p.name(), Ready: len(p.ready), InUse: p.inUse, Refilling: p.refilling, Failures: p.failures}
}

// Done is closed once the pool has stopped and torn everything down.
func (p *Pool) Done() <-chan struct{} { return p.done }

// Err returns why the pool stopped: nil after Close, ctx's end or a
// client's stop; the cause when its bridge vanished.
func (p *Pool) Err() error {
	c := context.Cause(p.ctx)
	if c == nil || errors.Is(c, context.Canceled) || errors.Is(c, errStopRequested) {
		return nil
	}
	return &Error{Op: "run", Object: p.name(), Err: c}
}

var errStopRequested = errors.New("stop requested")

// Close stops the pool: no more claims, every ready namespace destroyed and
// its lease released, the socket removed and the NAT entry removed. Slots
// in use stay valid until released. It waits for all that.
func (p *Pool) Close() error {
	p.cancel(context.Canceled)
	<-p.done
	return p.closeErr
}

// teardown runs once the pool's context has ended.
func (p *Pool) teardown() {
	if p.listener != nil {
		p.listener.Close()
	}
	p.wg.Wait() // workers and connections end (connections give their entries back)
	p.mu.Lock()
	gs := p.graves
	p.graves = nil
	p.mu.Unlock()
	for _, e := range gs {
		p.destroy(e)
	}
	for {
		select {
		case e := <-p.ready:
			p.destroy(e)
			continue
		default:
		}
		break
	}
	if p.natTable != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.natTable.RemoveMasquerade(ctx, p.natEntry); err != nil && !errors.Is(err, nat.ErrNotFound) {
			p.closeErr = err
		}
		cancel()
		p.natTable.Close()
	}
	p.bridgeNS.Close()
	if p.listener != nil {
		if err := os.RemoveAll(poolwire.ResolvDir(p.cfg.Name)); err != nil {
			p.logf("pool %s: %v", p.name(), err)
		}
		// Unlocked only once removed, so that no pruner takes it for a
		// dead pool's meanwhile.
		p.dir.Close()
		os.Remove(SocketPath(p.cfg.Name)) // last: Client.Stop waits for this
	}
}
