package pool

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/poolwire"
)

// An Exec claim (poolwire.Request.Exec) is the C fast path's claim when
// `run --pool` needs no process of its own around the payload: nsbox joins
// the namespace and execs the payload in place, as nsenter does without
// --fork. Its connection is close-on-exec, so it closes when the sandbox
// starts; the claim lasts instead until the process that connected exits,
// which the pool learns from a pidfd of it, or until that process sends
// OpRelease (it failed before its exec and gives the namespace back).

var (
	claimRequest     = mustJSON(poolwire.Request{Op: poolwire.OpClaim})
	claimExecRequest = mustJSON(poolwire.Request{Op: poolwire.OpClaim, Exec: true})
	releaseRequest   = mustJSON(poolwire.Request{Op: poolwire.OpRelease})
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// peerPidfd returns a pidfd (non-blocking, close-on-exec) of the process
// that connected socket fd: SO_PEERPIDFD (Linux 6.5), else pidfd_open of
// SO_PEERCRED's pid, which no other process can hold yet while that
// client waits for its reply (the caller asks before replying).
func peerPidfd(fd int, pid int32) (int, error) {
	pfd, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	if err != nil {
		if pid <= 0 {
			return -1, err
		}
		if pfd, err = unix.PidfdOpen(int(pid), unix.PIDFD_NONBLOCK); err != nil {
			return -1, err
		}
		return pfd, nil
	}
	if err := unix.SetNonblock(pfd, true); err != nil {
		unix.Close(pfd)
		return -1, err
	}
	return pfd, nil
}

// connPidfd is peerPidfd for a connection of the netpoller's.
func connPidfd(c *net.UnixConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	pfd, perr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) {
		var cred *unix.Ucred
		if cred, _, perr = peerCred(int(fd)); perr == nil {
			pfd, perr = peerPidfd(int(fd), cred.Pid)
		}
	}); err != nil {
		return -1, err
	}
	return pfd, perr
}

// endClaim waits until the claim of e by the client of c ends (an Exec
// claim when pidfd >= 0, which it closes), then gives e back.
func (p *Pool) endClaim(e *entry, c *net.UnixConn, pidfd int) {
	if pidfd >= 0 {
		p.waitExec(c, pidfd)
	} else {
		waitClosed(c)
	}
	p.giveBack(e)
}

// endClaimLater gives e back once its claim ends when its connection is
// lost to the pool: at once, or for an Exec claim (whose client may have
// exec'd already) once the client's process exits.
func (p *Pool) endClaimLater(e *entry, pidfd int) {
	if pidfd < 0 {
		p.giveBack(e)
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.waitExec(nil, pidfd)
		p.giveBack(e)
	}()
}

// waitExec holds an Exec claim until its client sends OpRelease on c, or
// until c is closed (or nil) and the process of pidfd (which it closes)
// has exited, or until the pool stops.
func (p *Pool) waitExec(c *net.UnixConn, pidfd int) {
	f := os.NewFile(uintptr(pidfd), "pidfd") // non-blocking: the netpoller's
	defer f.Close()
	buf := make([]byte, len(releaseRequest)+1)
	for c != nil {
		n, err := c.Read(buf)
		if err != nil {
			break // closed: by the exec, or by the client's end
		}
		if bytes.Equal(buf[:n], releaseRequest) {
			return
		}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		p.logf("pool %s: exec claim: %v", p.name(), err)
		return
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-p.ctx.Done():
			f.Close() // wakes the Read below
		case <-stop:
		}
	}()
	// A pidfd polls readable once its process has exited.
	err = rc.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 0)
		return err != nil && !errors.Is(err, unix.EINTR) || n > 0
	})
	if err != nil && p.ctx.Err() == nil {
		p.logf("pool %s: exec claim: wait: %v", p.name(), err)
	}
}
