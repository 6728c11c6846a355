package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/poolwire"
	"github.com/nsbox/nsbox/netns"
)

// ErrNotRunning is wrapped when no pool serves the socket.
var ErrNotRunning = errors.New("pool is not running")

// ErrForeign is wrapped when the pool's socket belongs to another user.
var ErrForeign = errors.New("socket belongs to another user")

// EmptyError is Client.Claim's error when the pool had nothing ready in
// time. It carries what the caller needs to wire a namespace itself: the
// bridge's namespace (BridgeNS, which the caller must close), the bridge,
// and whether the pool leases by DHCP.
type EmptyError struct {
	Pool     string
	Waited   time.Duration
	Bridge   string
	DHCP     bool
	IfName   string
	DNS      []netip.Addr
	BridgeNS *netns.Handle
}

func (e *EmptyError) Error() string {
	return fmt.Sprintf("pool %s: no namespace ready within %s", e.Pool, e.Waited)
}

// Client talks to the pool of another process through its socket. Its
// methods are safe for concurrent use.
type Client struct {
	name, path string
	// bufs holds reply buffers (*[]byte of maxMessage) for reuse: a new
	// 64 KiB buffer an exchange was 12.8 MB to clear and collect in a
	// storm of 200 claims (bench/pool's nsbox-pool-lib).
	bufs sync.Pool
}

// NewClient returns a client of the pool called name.
func NewClient(name string) (*Client, error) {
	if err := ValidateName(name); err != nil {
		return nil, &Error{Op: "dial", Object: name, Err: err}
	}
	return &Client{name: name, path: SocketPath(name)}, nil
}

// dial connects, refusing a socket owned by neither the caller nor root.
func (c *Client) dial(ctx context.Context) (*net.UnixConn, error) {
	var st unix.Stat_t
	if err := unix.Stat(c.path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%w (no %s; start it with nsbox pool start %s ...)", ErrNotRunning, c.path, c.name)
		}
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, fmt.Errorf("%s is not a socket", c.path)
	}
	if st.Uid != 0 && st.Uid != uint32(os.Geteuid()) {
		return nil, fmt.Errorf("%w: %s is owned by uid %d", ErrForeign, c.path, st.Uid)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unixpacket", c.path)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (%s is left from a pool that died)", ErrNotRunning, c.path)
		}
		return nil, err
	}
	return conn.(*net.UnixConn), nil
}

// exchange sends req and reads the reply and the fds it carries.
func (c *Client) exchange(ctx context.Context, conn *net.UnixConn, req request) (reply, []int, error) {
	b, _ := json.Marshal(req)
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write(b); err != nil {
		return reply{}, nil, err
	}
	bp, _ := c.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, maxMessage)
		bp = &b
	}
	defer c.bufs.Put(bp)
	buf := *bp
	oob := make([]byte, unix.CmsgSpace((poolwire.ClaimFds+1)*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return reply{}, nil, err
	}
	conn.SetDeadline(time.Time{})
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for i := range msgs {
				if got, err := unix.ParseUnixRights(&msgs[i]); err == nil {
					fds = append(fds, got...)
				}
			}
		}
	}
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if n == 0 {
		closeAll()
		return reply{}, nil, errors.New("empty reply")
	}
	var r reply
	if err := json.Unmarshal(buf[:n], &r); err != nil {
		closeAll()
		return reply{}, nil, fmt.Errorf("malformed reply: %w", err)
	}
	if r.Error != "" {
		closeAll()
		return r, nil, errors.New(r.Error)
	}
	return r, fds, nil
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// handle turns a received fd into a namespace handle.
func handle(fd int) (*netns.Handle, error) {
	h, err := netns.Open("/proc/self/fd/" + strconv.Itoa(fd))
	unix.Close(fd)
	return h, err
}

func parseAddrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// Claim takes a ready namespace from the pool, letting the pool wait up to
// wait for one. An empty pool gives an *EmptyError. The slot is released
// (and destroyed by the pool) by Release or when this process dies.
func (c *Client) Claim(ctx context.Context, wait time.Duration) (*Slot, error) {
	wrap := func(err error) error { return &Error{Op: "claim", Object: c.name, Err: err} }
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	r, fds, err := c.exchange(ctx, conn, request{Op: poolwire.OpClaim, WaitMs: wait.Milliseconds()})
	if err != nil {
		conn.Close()
		return nil, wrap(err)
	}
	if r.Empty {
		conn.Close()
		if len(fds) != 1 {
			closeFds(fds)
			return nil, wrap(errors.New("empty reply without the bridge's namespace"))
		}
		h, err := handle(fds[0])
		if err != nil {
			return nil, wrap(err)
		}
		return nil, &EmptyError{Pool: c.name, Waited: wait, Bridge: r.Bridge, DHCP: r.DHCP, IfName: r.IfName,
			DNS: parseAddrs(r.DNS), BridgeNS: h}
	}
	if len(fds) == poolwire.ClaimFds+1 {
		// The resolv.conf file: this client writes its own from DNS.
		unix.Close(fds[poolwire.ClaimResolvFd])
		fds = fds[:poolwire.ClaimFds]
	}
	if len(fds) != poolwire.ClaimFds {
		closeFds(fds)
		conn.Close()
		return nil, wrap(errors.New("reply without the namespaces"))
	}
	h, err := handle(fds[0])
	if err != nil {
		unix.Close(fds[1])
		conn.Close()
		return nil, wrap(err)
	}
	bh, err := handle(fds[1])
	if err != nil {
		h.Close()
		conn.Close()
		return nil, wrap(err)
	}
	s := &Slot{ns: h, bridgeNS: bh, bridge: r.Bridge, ifName: r.IfName, dns: parseAddrs(r.DNS)}
	if s.addr, err = netip.ParsePrefix(r.Addr); err != nil {
		s.release = conn.Close
		s.Release()
		return nil, wrap(fmt.Errorf("reply address %q: %w", r.Addr, err))
	}
	if r.Gateway != "" {
		s.gw, _ = netip.ParseAddr(r.Gateway)
	}
	s.release = conn.Close
	return s, nil
}

// Status returns the pool's counters.
func (c *Client) Status(ctx context.Context) (Status, error) {
	wrap := func(err error) error { return &Error{Op: "status", Object: c.name, Err: err} }
	conn, err := c.dial(ctx)
	if err != nil {
		return Status{}, wrap(err)
	}
	defer conn.Close()
	r, fds, err := c.exchange(ctx, conn, request{Op: poolwire.OpStatus})
	closeFds(fds)
	if err != nil {
		return Status{}, wrap(err)
	}
	if r.Status == nil {
		return Status{}, wrap(errors.New("reply without status"))
	}
	return *r.Status, nil
}

// Stop asks the pool to stop and waits (until ctx ends) until its socket
// is gone, that is, until it has torn everything down.
func (c *Client) Stop(ctx context.Context) error {
	wrap := func(err error) error { return &Error{Op: "stop", Object: c.name, Err: err} }
	conn, err := c.dial(ctx)
	if err != nil {
		return wrap(err)
	}
	_, fds, err := c.exchange(ctx, conn, request{Op: poolwire.OpStop})
	conn.Close()
	closeFds(fds)
	if err != nil {
		return wrap(err)
	}
	for {
		if _, err := os.Stat(c.path); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		select {
		case <-ctx.Done():
			return wrap(ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
