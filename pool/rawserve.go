package pool

import (
	"bytes"
	"errors"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/poolwire"
)

// serveRaw is serve's fast form: the accept loop runs on a locked OS
// thread that blocks in accept4 and then in read on a blocking socket, and
// answers a claim that finds a namespace ready at once from that thread,
// by raw syscalls (the reply was made when the namespace was wired). Only
// then is the connection handed to the netpoller, for the wait until the
// client closes it, off the claim's clock. Anything else (status, stop, a
// claim that must wait, a refusal) goes to handle, as in serve.
//
// Why: with serve, a claim costs a netpoller wake-up for the accept, a new
// goroutine, a park on the read and a second wake-up for the request; in
// bench/pool the claim's round trip was 0.21 ms p50 for a status request
// against 0.04 ms for a C server doing what this does.
func (p *Pool) serveRaw(lfd int) {
	defer p.wg.Done()
	runtime.LockOSThread() // never unlocked: the thread ends with the loop
	// A claim is a few syscalls on this thread, and its client waits: ahead
	// of the pool's refills and of other processes when it wakes up (only
	// root may raise a thread's priority; otherwise it stays as it is).
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), claimNice)
	conns := newConnSet()
	go func() {
		<-p.ctx.Done()
		// Wake the blocked accept4: closing its socket would not.
		if fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0); err == nil {
			unix.Connect(fd, &unix.SockaddrUnix{Name: SocketPath(p.cfg.Name)})
			unix.Close(fd)
		}
		conns.closeAll()
	}()
	defer unix.Close(lfd)
	buf := make([]byte, maxMessage)
	for {
		cfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if p.ctx.Err() != nil {
			if err == nil {
				unix.Close(cfd)
			}
			return
		}
		switch {
		case err == nil:
		case errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED):
			continue
		case errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM):
			// Out of something for now: claims wait in the backlog.
			p.logf("pool %s: accept: %v", p.name(), err)
			time.Sleep(10 * time.Millisecond)
			continue
		default:
			p.logf("pool %s: accept: %v", p.name(), err)
			p.cancel(err)
			return
		}
		p.serveRawConn(cfd, buf, conns)
	}
}

// claimNice is the nice value of the claim server's thread.
const claimNice = -10

// claimRequest is the request of the C fast path (poolwire's, wait 0).
var claimRequest = []byte(`{"op":"` + poolwire.OpClaim + `"}`)

// serveRawConn answers one connection: a claim with a ready namespace
// here, anything else through handle.
func (p *Pool) serveRawConn(cfd int, buf []byte, conns *connSet) {
	// The client sends its request right after connecting; a slow one
	// cannot hold the thread for more than this.
	tv := unix.Timeval{Sec: 5}
	unix.SetsockoptTimeval(cfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	// A socket with SO_RCVTIMEO is not restarted after a signal handler
	// (man 7 signal), and Go preempts its threads with SIGURG: retry.
	n, err := unix.Read(cfd, buf)
	for errors.Is(err, unix.EINTR) {
		n, err = unix.Read(cfd, buf)
	}
	if err != nil || n <= 0 {
		unix.Close(cfd)
		return
	}
	var e *entry
	if _, ok, err := peerCred(cfd); err == nil && ok && bytes.Equal(buf[:n], claimRequest) {
		select {
		case e = <-p.ready:
			p.taken(e)
		default:
		}
	}
	if e != nil {
		rights := unix.UnixRights(p.claimFds(e)...)
		err := unix.Sendmsg(cfd, e.reply, rights, nil, 0)
		for errors.Is(err, unix.EINTR) {
			err = unix.Sendmsg(cfd, e.reply, rights, nil, 0)
		}
		p.poke() // the reply is out: refills may start
		if err != nil {
			unix.Close(cfd)
			p.giveBack(e)
			return
		}
	}
	c, err := fdConn(cfd)
	if err != nil {
		p.logf("pool %s: connection: %v", p.name(), err)
		if e != nil {
			p.giveBack(e)
		}
		return
	}
	if !conns.add(c, &p.wg) {
		c.Close()
		if e != nil {
			p.giveBack(e)
		}
		return
	}
	req := append([]byte(nil), buf[:n]...)
	go func() {
		defer p.wg.Done()
		if e != nil {
			waitClosed(c) // the slot is the client's until then
			p.giveBack(e)
		} else {
			p.handleRequest(c, req)
		}
		conns.remove(c)
		c.Close()
	}()
}

// fdConn turns an accepted socket into a *net.UnixConn (the netpoller's).
func fdConn(fd int) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), "pool-conn")
	c, err := net.FileConn(f) // a dup
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("not a unix socket")
	}
	return uc, nil
}

// waitClosed reads until the client closes c (or dies).
func waitClosed(c *net.UnixConn) {
	var b [1]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}

// startServing starts serveRaw on a blocking duplicate of the listener's
// socket, or serve with NSBOX_POOL_NETPOLL=1 (kept to compare the two in
// bench/pool).
func (p *Pool) startServing() error {
	if os.Getenv("NSBOX_POOL_NETPOLL") == "1" {
		p.wg.Add(1)
		go p.serve()
		return nil
	}
	rc, err := p.listener.SyscallConn()
	if err != nil {
		return err
	}
	lfd := -1
	if err := rc.Control(func(fd uintptr) { lfd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 3) }); err != nil {
		return err
	}
	if err != nil {
		return err
	}
	// The duplicate shares the listener's file description, so this makes
	// both blocking; the listener itself is never read (only closed).
	if err := unix.SetNonblock(lfd, false); err != nil {
		unix.Close(lfd)
		return err
	}
	p.wg.Add(1)
	go p.serveRaw(lfd)
	return nil
}
