// Package sockdiag counts the orphaned TCP connections of a network
// namespace through the kernel's socket diagnostics (NETLINK_SOCK_DIAG,
// inet_diag; what `ss` reads).
//
// An orphaned connection is one that no process holds any more (its owner
// closed it or exited) and that is still exchanging its last segments: a
// FIN not yet acknowledged (FIN_WAIT1, CLOSING, LAST_ACK) or a FIN_WAIT2
// kept as a full socket. The kernel finishes it on its own, but each one
// holds a reference on its network namespace: the namespace, and every
// link in it (the sandbox end of a veth, and with it the host end on a
// bridge), lives until the last one is done, which takes up to minutes when
// its segments cannot leave (the address it was sent from was removed).
// Sockets in TIME_WAIT, or in FIN_WAIT2 after the kernel turned them into
// timewait sockets, hold no reference and are not counted.
//
// Abort destroys the orphans that are left (SOCK_DESTROY, as `ss -K`).
//
// Orphans needs CAP_NET_ADMIN over the namespace's owner (root in
// practice) only to open the netlink socket in another namespace; the dump
// itself is open to anyone. To see the same by hand:
// nsenter --net=/proc/PID/ns/net ss -tanoe state fin-wait-1 (orphans show
// ino:0).
package sockdiag

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
)

// TCP states (include/net/tcp_states.h).
const (
	stateFinWait1 = 4
	stateFinWait2 = 5
	stateLastAck  = 9
	stateClosing  = 11
)

// timerTimeWait is inet_diag_msg's idiag_timer of a timewait socket.
const timerTimeWait = 3

// Message types of linux/sock_diag.h.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	sockDestroy      = 21 // SOCK_DESTROY
)

// sockIDLen is the size of struct inet_diag_sockid, at offset 4 of
// inet_diag_msg and 8 of inet_diag_req_v2.
const sockIDLen = 48

// Sizes of struct inet_diag_req_v2 and struct inet_diag_msg.
const (
	reqLen = 56
	msgLen = 72
)

// orphanStates is the idiag_states mask of the states an orphan can be in.
const orphanStates = 1<<stateFinWait1 | 1<<stateFinWait2 | 1<<stateLastAck | 1<<stateClosing

// Orphans returns the number of orphaned TCP connections (IPv4 and IPv6)
// in ns, a nil ns meaning the caller's namespace.
func Orphans(ctx context.Context, ns *netns.Handle) (int, error) {
	c, obj, err := dial(ns)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return count(ctx, c, obj)
}

// Wait polls ns every poll, over one netlink socket, until it has no
// orphaned TCP connection, for at most max. It returns how many are left
// then (0: all done) and how long it waited.
//
// A namespace without any TCP socket (the usual end of a sandbox) is told
// from its sockstat files, without a dump: a dump walks the kernel's TCP
// hash tables, which all namespaces share (0.47 ms for the two families on
// the 2-core VM, against 0.04 ms for the files; bench/pool's pool spent a
// fifth of its CPU there, one wait per destroyed namespace).
func Wait(ctx context.Context, ns *netns.Handle, max, poll time.Duration) (left int, waited time.Duration, err error) {
	start := time.Now()
	if n, err := tcpSockets(ns); err == nil && n == 0 {
		return 0, time.Since(start), nil
	}
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	c, obj, err := dial(ns)
	if err != nil {
		return 0, time.Since(start), err
	}
	defer c.Close()
	for {
		n, err := count(ctx, c, obj)
		if err != nil && left > 0 && (ctx.Err() != nil || timedOut(err)) {
			// The wait ran out during a dump (the socket's deadline
			// may fire before the context's): what the last one saw.
			return left, time.Since(start), nil
		}
		if err != nil || n == 0 {
			return n, time.Since(start), err
		}
		left = n
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return left, time.Since(start), nil
		case <-t.C:
		}
	}
}

// tcpSockets returns how many TCP sockets ns holds, IPv4 and IPv6, as
// "inuse" in its /proc/net/sockstat and sockstat6: every full socket in
// the kernel's hash tables (listening, connected, orphaned), not the
// timewait ones. A socket leaves them only once closed for good (or turned
// into a timewait socket), so 0 means no orphan. A missing sockstat6 (no
// IPv6) counts none.
func tcpSockets(ns *netns.Handle) (int, error) {
	n := 0
	read := func() error {
		for _, f := range []struct{ path, key string }{{"/proc/thread-self/net/sockstat", "TCP:"}, {"/proc/thread-self/net/sockstat6", "TCP6:"}} {
			b, err := os.ReadFile(f.path)
			if errors.Is(err, os.ErrNotExist) && f.key == "TCP6:" {
				continue
			}
			if err != nil {
				return err
			}
			c, err := inUse(b, f.key)
			if err != nil {
				return fmt.Errorf("%s: %w", f.path, err)
			}
			n += c
		}
		return nil
	}
	var err error
	if ns == nil {
		err = read()
	} else {
		err = netns.Do(ns, read)
	}
	if err != nil {
		return 0, fmt.Errorf("sockdiag: tcp sockets: %w", err)
	}
	return n, nil
}

// inUse returns the "inuse" count of the sockstat line that starts with key
// ("TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 117").
func inUse(sockstat []byte, key string) (int, error) {
	for _, l := range strings.Split(string(sockstat), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == key && f[1] == "inuse" {
			return strconv.Atoi(f[2])
		}
	}
	return 0, fmt.Errorf("no %s inuse line", key)
}

// timedOut reports whether err comes from the socket's deadline.
func timedOut(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &t) && t.Timeout())
}

// dial opens a NETLINK_SOCK_DIAG socket in ns by file descriptor (no
// thread of the caller changes namespace) and names ns for errors.
func dial(ns *netns.Handle) (*netlink.Conn, string, error) {
	cfg := &netlink.Config{}
	obj := "current namespace"
	if ns != nil {
		cfg.NetNS = ns.Fd()
		obj = ns.Name()
	}
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, cfg)
	if err != nil {
		return nil, obj, fmt.Errorf("sockdiag: dial in %s: %w", obj, err)
	}
	return c, obj, nil
}

// count dumps the TCP sockets of c's namespace in an orphan's states and
// counts the orphans.
func count(ctx context.Context, c *netlink.Conn, obj string) (int, error) {
	msgs, err := orphans(ctx, c, obj)
	return len(msgs), err
}

// orphans dumps the TCP sockets of c's namespace in an orphan's states and
// returns the inet_diag messages of the orphans.
func orphans(ctx context.Context, c *netlink.Conn, obj string) ([][]byte, error) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Time{}
	}
	if err := c.SetDeadline(d); err != nil {
		return nil, fmt.Errorf("sockdiag: deadline in %s: %w", obj, err)
	}
	var out [][]byte
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		msgs, err := c.Execute(netlink.Message{
			Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request | netlink.Dump},
			Data:   request(family),
		})
		if err != nil {
			return nil, fmt.Errorf("sockdiag: dump tcp sockets (family %d) in %s: %w", family, obj, err)
		}
		for _, m := range msgs {
			orphan, err := isOrphan(m.Data)
			if err != nil {
				return nil, fmt.Errorf("sockdiag: %s: %w", obj, err)
			}
			if orphan {
				out = append(out, m.Data)
			}
		}
	}
	return out, nil
}

// Abort destroys the orphaned TCP connections of ns (SOCK_DESTROY, what
// `ss -K` does; the kernel needs CONFIG_INET_DIAG_DESTROY): the kernel sends
// the peer a reset where the state calls for one and frees the socket, and
// with it its reference on ns. It returns how many it destroyed; one that
// ended meanwhile is not an error.
func Abort(ctx context.Context, ns *netns.Handle) (int, error) {
	c, obj, err := dial(ns)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	msgs, err := orphans(ctx, c, obj)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range msgs {
		_, err := c.Execute(netlink.Message{
			Header: netlink.Header{Type: sockDestroy, Flags: netlink.Request | netlink.Acknowledge},
			Data:   destroyRequest(m),
		})
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("sockdiag: destroy tcp socket in %s: %w", obj, err)
		}
		n++
	}
	return n, nil
}

// destroyRequest encodes the struct inet_diag_req_v2 naming the socket of
// the inet_diag message m: its family, its state and its socket id (ports,
// addresses, interface, cookie) as the dump gave them.
func destroyRequest(m []byte) []byte {
	b := make([]byte, reqLen)
	b[0] = m[0]
	b[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[4:8], 1<<m[1])
	copy(b[8:], m[4:4+sockIDLen])
	return b
}

// request encodes struct inet_diag_req_v2 for every TCP socket of family in
// an orphan's states.
func request(family uint8) []byte {
	b := make([]byte, reqLen)
	b[0] = family
	b[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[4:8], orphanStates)
	return b
}

// isOrphan decodes struct inet_diag_msg: an orphan has no inode (no
// process's file holds it) and is a full socket, not a timewait one.
func isOrphan(b []byte) (bool, error) {
	if len(b) < msgLen {
		return false, fmt.Errorf("inet_diag message of %d bytes, want %d", len(b), msgLen)
	}
	state, timer := b[1], b[2]
	inode := binary.NativeEndian.Uint32(b[68:72])
	if orphanStates&(1<<state) == 0 {
		return false, nil
	}
	return inode == 0 && timer != timerTimeWait, nil
}
