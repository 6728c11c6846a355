package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/poolwire"
)

// request is what a client sends: one message per connection (the wire
// format is internal/poolwire's, which the C fast path of run --pool gets
// generated).
type request = poolwire.Request

// reply is the server's answer. A claim's reply carries the namespace's fd
// and the bridge namespace's (SCM_RIGHTS); an empty pool's reply carries the bridge's namespace fd and
// the wiring, so that the client can build a namespace itself.
type reply struct {
	Error   string   `json:"error,omitempty"`
	Empty   bool     `json:"empty,omitempty"`
	Addr    string   `json:"addr,omitempty"`
	Gateway string   `json:"gateway,omitempty"`
	DNS     []string `json:"dns,omitempty"`
	IfName  string   `json:"ifname,omitempty"`
	Bridge  string   `json:"bridge,omitempty"`
	DHCP    bool     `json:"dhcp,omitempty"`
	Status  *Status  `json:"status,omitempty"`
}

const maxMessage = poolwire.MaxMessage

// listen binds the pool's socket (mode 0600). A socket file that nothing
// listens on (left by a pool that was killed) is replaced; a live one is an
// error.
func (p *Pool) listen() error {
	path := SocketPath(p.cfg.Name)
	if err := os.MkdirAll(SocketDir, 0o755); err != nil {
		return err
	}
	if c, err := net.DialTimeout("unixpacket", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("pool %s is already running (%s)", p.cfg.Name, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	old := unix.Umask(0o177)
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	unix.Umask(old)
	if err != nil {
		return err
	}
	l.SetUnlinkOnClose(false) // teardown removes it
	// A pool of this name that died left its leases (released now, from
	// here, before anything else uses the bridge for this pool) and its
	// resolv.conf files (removed with its folder, replaced by ours, see
	// dir.go; dead pools of other names lose theirs too).
	if n := p.releaseLeftovers(p.ctx); n > 0 {
		p.logf("pool %s: released %d leases of a pool of this name that died", p.cfg.Name, n)
	}
	unlock, err := lockDirs()
	if err != nil {
		l.Close()
		os.Remove(path)
		return err
	}
	defer unlock()
	var leases string
	if p.cfg.DHCP {
		leases = leaseDir(p.cfg.Name)
	}
	if p.dir, err = makeDir(poolwire.ResolvDir(p.cfg.Name), leases); err != nil {
		l.Close()
		os.Remove(path)
		return err
	}
	if pruned := pruneDirs(p.cfg.Name); len(pruned) > 0 {
		p.logf("pool %s: removed the folders of dead pools %v", p.cfg.Name, pruned)
	}
	p.listener = l
	return nil
}

// connSet is the connections a pool serves, closed when it stops (which
// ends the claims in use: their entries are destroyed).
type connSet struct {
	mu     chan struct{}
	conns  map[*net.UnixConn]bool
	closed bool
}

func newConnSet() *connSet {
	return &connSet{mu: make(chan struct{}, 1), conns: map[*net.UnixConn]bool{}}
}

// add records c and counts it in wg; false once closeAll ran.
func (s *connSet) add(c *net.UnixConn, wg interface{ Add(int) }) bool {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	if s.closed {
		return false
	}
	s.conns[c] = true
	wg.Add(1)
	return true
}

func (s *connSet) remove(c *net.UnixConn) {
	s.mu <- struct{}{}
	delete(s.conns, c)
	<-s.mu
}

func (s *connSet) closeAll() {
	s.mu <- struct{}{}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	<-s.mu
}

// serve accepts connections through the netpoller until the pool stops
// (serveRaw is the default; this is NSBOX_POOL_NETPOLL=1's).
func (p *Pool) serve() {
	defer p.wg.Done()
	conns := newConnSet()
	go func() {
		<-p.ctx.Done()
		p.listener.Close()
		conns.closeAll()
	}()
	for {
		c, err := p.listener.AcceptUnix()
		if err != nil {
			if p.ctx.Err() == nil {
				p.logf("pool %s: accept: %v", p.name(), err)
				p.cancel(fmt.Errorf("accept: %w", err))
			}
			return
		}
		if !conns.add(c, &p.wg) {
			c.Close()
			continue
		}
		go func() {
			defer p.wg.Done()
			p.handle(c)
			conns.remove(c)
			c.Close()
		}()
	}
}

// peerAllowed checks SO_PEERCRED: root or the pool's own uid.
func peerAllowed(c *net.UnixConn) (uid uint32, ok bool, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) { cred, ok, cerr = peerCred(int(fd)) }); err != nil {
		return 0, false, err
	}
	if cerr != nil {
		return 0, false, cerr
	}
	return cred.Uid, ok, nil
}

// peerCred is peerAllowed on the socket fd, with the peer's credentials.
func peerCred(fd int) (*unix.Ucred, bool, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil, false, err
	}
	return cred, cred.Uid == 0 || cred.Uid == uint32(os.Geteuid()), nil
}

// claimFds are the fds a granted claim of e carries, in poolwire's order:
// its namespace, the bridge's namespace (for the client's published
// ports), its resolv.conf when it has one.
func (p *Pool) claimFds(e *entry) []int {
	fds := []int{e.ns.Fd(), p.bridgeNS.Fd()} // poolwire.ClaimNetnsFd first
	if e.resolv != nil {
		fds = append(fds, int(e.resolv.Fd())) // poolwire.ClaimResolvFd
	}
	return fds
}

func send(c *net.UnixConn, r reply, fds ...int) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err = c.WriteMsgUnix(b, oob, nil)
	return err
}

func (p *Pool) handle(c *net.UnixConn) {
	// The request is read first even from a stranger: closing a socket
	// with unread data would reset the connection before the refusal is
	// read.
	buf := make([]byte, maxMessage)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	p.handleRequest(c, buf[:n])
}

// handleRequest answers the request msg that c sent.
func (p *Pool) handleRequest(c *net.UnixConn, msg []byte) {
	uid, ok, err := peerAllowed(c)
	if err != nil {
		p.logf("pool %s: peer credentials: %v", p.name(), err)
		return
	}
	if !ok {
		send(c, reply{Error: fmt.Sprintf("uid %d may not use pool %s (only uid %d and root)", uid, p.name(), os.Geteuid())})
		return
	}
	var req request
	if err := json.Unmarshal(msg, &req); err != nil {
		send(c, reply{Error: "malformed request: " + err.Error()})
		return
	}
	switch req.Op {
	case poolwire.OpStatus:
		st := p.Status()
		send(c, reply{Status: &st})
	case poolwire.OpStop:
		send(c, reply{})
		p.cancel(errStopRequested)
	case poolwire.OpClaim:
		p.handleClaim(c, req)
	default:
		send(c, reply{Error: fmt.Sprintf("unknown request %q", req.Op)})
	}
}

func (p *Pool) handleClaim(c *net.UnixConn, req request) {
	ctx, cancel := context.WithTimeout(p.ctx, time.Duration(req.WaitMs)*time.Millisecond)
	e, err := p.take(ctx)
	cancel()
	if err != nil {
		if p.ctx.Err() != nil {
			send(c, reply{Error: p.stopErr().Error()})
			return
		}
		// Empty: hand over what the client needs to wire a namespace itself.
		send(c, reply{Empty: true, Bridge: p.cfg.Bridge, DHCP: p.cfg.DHCP, IfName: ifNameOr(p.cfg.IfName),
			DNS: addrStrings(p.cfg.DNS)}, p.bridgeNS.Fd())
		return
	}
	_, _, err = c.WriteMsgUnix(e.reply, unix.UnixRights(p.claimFds(e)...), nil)
	p.poke() // the reply is out: refills may start
	if err != nil {
		p.giveBack(e)
		return
	}
	waitClosed(c) // the slot is the client's until it closes (or dies)
	p.giveBack(e)
}

// claimReply is the reply that hands e over, made when e is wired.
func (p *Pool) claimReply(e *entry) ([]byte, error) {
	r := reply{Addr: e.addr.String(), IfName: ifNameOr(p.cfg.IfName), DNS: addrStrings(e.dns), Bridge: p.cfg.Bridge, DHCP: p.cfg.DHCP}
	if e.gw.IsValid() {
		r.Gateway = e.gw.String()
	}
	return json.Marshal(r)
}

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}
