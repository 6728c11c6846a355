package rtnl

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/names"
	"github.com/nsbox/nsbox/netns"
)

// maxDumpTries bounds how often a dump that the kernel marked interrupted
// (NLM_F_DUMP_INTR: the table changed while it was read) is started again.
const maxDumpTries = 10

// rtextFilterSkipStats asks the kernel to leave the statistics out of link
// replies (RTEXT_FILTER_SKIP_STATS): smaller messages, faster lookups.
const rtextFilterSkipStats = 1 << 3

// Error is the one error shape of this package, e.g.
// "rtnl: add veth veth0: file exists". Err is the cause (a unix.Errno when
// the kernel refused); Message is the kernel's extended-ack text, if any.
type Error struct {
	Op      string // the operation, e.g. "add veth", "set mtu", "list links"
	Object  string // the object, e.g. a device name or a prefix
	Err     error  // the cause
	Message string // the kernel's extended acknowledgement message, or ""
}

// Error renders "rtnl: OP OBJECT: cause (kernel message)".
func (e *Error) Error() string {
	s := "rtnl: " + e.Op
	if e.Object != "" {
		s += " " + e.Object
	}
	s += ": " + e.Err.Error()
	if e.Message != "" {
		s += " (" + e.Message + ")"
	}
	return s
}

// Unwrap returns the cause, so errors.Is(err, unix.ENODEV) works.
func (e *Error) Unwrap() error { return e.Err }

// wrap turns an error of the netlink layer into an *Error, keeping the
// errno as the cause and the extended-ack message beside it.
func wrap(op, object string, err error) error {
	if err == nil {
		return nil
	}
	var re *Error
	if errors.As(err, &re) {
		return err
	}
	e := &Error{Op: op, Object: object, Err: err}
	var oe *netlink.OpError
	if errors.As(err, &oe) {
		e.Message = strings.TrimSpace(oe.Message)
		if oe.Err != nil {
			e.Err = oe.Err
			var se *net.OpError
			if errors.As(oe.Err, &se) && se.Err != nil {
				e.Err = se.Err
			}
		}
	}
	return e
}

// Conn is a route netlink connection opened inside one network namespace.
// It is safe for use by one goroutine at a time.
type Conn struct {
	nl   *netlink.Conn
	nsfd int // a duplicate of the namespace's fd, or -1: the caller's namespace

	hasDeadline bool   // a deadline from a context is set on nl
	raw         *rawIO // the raw request path on nl's descriptor; nil: nl.Execute

	mu sync.Mutex
	rt *rtnetlink.Conn // dialled by Netlink on first use
}

// Dial opens a connection inside the namespace ns; a nil ns means the
// caller's namespace. The socket is opened in ns by file descriptor
// (netlink.Config{NetNS: fd}); no thread of the caller changes namespace.
// The handle may be closed once Dial returns.
func Dial(ns *netns.Handle) (*Conn, error) {
	cfg := &netlink.Config{}
	nsfd := -1
	obj := ""
	if ns != nil {
		obj = ns.Name()
		fd, err := unix.FcntlInt(uintptr(ns.Fd()), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, &Error{Op: "dial", Object: obj, Err: err}
		}
		nsfd = fd
		cfg.NetNS = fd
	}
	nl, err := netlink.Dial(unix.NETLINK_ROUTE, cfg)
	if err != nil {
		if nsfd >= 0 {
			unix.Close(nsfd)
		}
		return nil, wrap("dial", obj, err)
	}
	c := newConn(nl)
	c.nsfd = nsfd
	return c, nil
}

// newConn wraps an open netlink connection (a real one or a test fake).
func newConn(nl *netlink.Conn) *Conn {
	// Extended acks carry the kernel's reason in errors; an old kernel
	// without them still works, with bare errnos.
	_ = nl.SetOption(netlink.ExtendedAcknowledge, true)
	return &Conn{nl: nl, nsfd: -1, raw: newRawIO(nl)}
}

// Close closes the connection.
func (c *Conn) Close() error {
	if c == nil || c.nl == nil {
		return nil
	}
	err := c.nl.Close()
	c.mu.Lock()
	if c.rt != nil {
		_ = c.rt.Close()
		c.rt = nil
	}
	c.mu.Unlock()
	if c.nsfd >= 0 {
		unix.Close(c.nsfd)
		c.nsfd = -1
	}
	return err
}

// Netlink returns an rtnetlink connection in the same namespace, for
// packages on top (bridge) that need requests this package does not wrap.
// It is dialled on first use and closed by Close; it returns nil only if
// that dial fails (for example when out of file descriptors).
func (c *Conn) Netlink() *rtnetlink.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rt != nil {
		return c.rt
	}
	cfg := &netlink.Config{}
	if c.nsfd >= 0 {
		cfg.NetNS = c.nsfd
	}
	rt, err := rtnetlink.Dial(cfg)
	if err != nil {
		return nil
	}
	_ = rt.SetOption(netlink.ExtendedAcknowledge, true)
	c.rt = rt
	return rt
}

// deadline applies ctx's deadline (if any) to the socket and reports a
// context that is already done.
func (c *Conn) deadline(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		c.hasDeadline = true
		return c.nl.SetDeadline(d)
	}
	if c.hasDeadline {
		c.hasDeadline = false
		return c.nl.SetDeadline(time.Time{})
	}
	return nil
}

// request sends one request built from m (plus extra, already encoded
// attributes) and returns the replies.
func (c *Conn) request(ctx context.Context, op, obj string, typ uint16, flags netlink.HeaderFlags, m encoding.BinaryMarshaler, extra []byte) ([]netlink.Message, error) {
	if err := c.deadline(ctx); err != nil {
		return nil, &Error{Op: op, Object: obj, Err: err}
	}
	data, err := m.MarshalBinary()
	if err != nil {
		return nil, &Error{Op: op, Object: obj, Err: fmt.Errorf("encode: %w", err)}
	}
	msgs, err := c.exchange(typ, netlink.Request|flags, data, extra)
	if err != nil {
		return nil, wrap(op, obj, err)
	}
	return msgs, nil
}

// ack sends a request that expects only an acknowledgement.
func (c *Conn) ack(ctx context.Context, op, obj string, typ uint16, flags netlink.HeaderFlags, m encoding.BinaryMarshaler, extra []byte) error {
	_, err := c.request(ctx, op, obj, typ, flags|netlink.Acknowledge, m, extra)
	return err
}

// errDumpInterrupted is the cause when every try of a dump was interrupted.
var errDumpInterrupted = errors.New("dump interrupted by concurrent changes too many times")

// dump runs a dump request and returns its messages of type want. A dump the
// kernel marks interrupted is started again, at most maxDumpTries times; a
// half or inconsistent dump is never returned.
func (c *Conn) dump(ctx context.Context, op string, typ, want uint16, m encoding.BinaryMarshaler) ([]netlink.Message, error) {
	for try := 0; try < maxDumpTries; try++ {
		msgs, err := c.request(ctx, op, "", typ, netlink.Dump, m, nil)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue // some kernels report an interrupted dump as EINTR
			}
			return nil, err
		}
		interrupted := false
		out := msgs[:0]
		for _, nm := range msgs {
			if nm.Header.Flags&netlink.DumpInterrupted != 0 {
				interrupted = true
				break
			}
			if uint16(nm.Header.Type) == want {
				out = append(out, nm)
			}
		}
		if !interrupted {
			return out, nil
		}
	}
	return nil, &Error{Op: op, Err: errDumpInterrupted}
}

// ValidateLinkName refuses names the kernel would refuse or that would
// confuse the CLI or a reader of `ip link` (the rule names.Link): empty, over
// 15 bytes, containing '/', ':', '%' (a kernel name template), white space
// or another control character, not valid UTF-8, "." or "..".
func ValidateLinkName(name string) error {
	if why := names.Link.Check(name); why != "" {
		return &Error{Op: "validate name", Object: fmt.Sprintf("%q", name), Err: fmt.Errorf("%w: %s", ErrInvalidName, why)}
	}
	return nil
}

// ErrInvalidName is wrapped by the errors of ValidateLinkName.
var ErrInvalidName = errors.New("invalid interface name")
