package rtnl

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"syscall"
	"unsafe"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The request/reply path of a Conn. The kernel handles a route netlink
// request synchronously inside sendmsg and queues the whole reply (or the
// first part of a dump) before sendmsg returns, so the reply never has to be
// waited for in practice. mdlayher/netlink's Execute still pays for a general
// socket layer on every request: two entersyscall/exitsyscall pairs plus a
// peek, each of which lets the Go scheduler hand the P to another thread
// when the kernel takes more than ~20 µs (setting a bridge master does), a
// futex wake-up per request. Here the socket's own descriptor (from
// SyscallConn, still registered with the runtime poller, deadlines intact)
// is used with raw sendto/recvfrom: sendto blocks only as long as the kernel
// works on the request; recvfrom is non-blocking (MSG_DONTWAIT) and, on the
// rare EAGAIN, the goroutine parks in the poller like any network read.
// Replies are read into one reused buffer and copied out once per datagram.
//
// The price of the raw sendto: while the kernel works on a request (or waits
// for the RTNL lock), the goroutine keeps its P and a stop-the-world pause of
// this process waits for the request to end. For route netlink requests that
// is microseconds, milliseconds when another process holds the RTNL lock for
// long (a namespace being torn down).

// recvBufSize is the initial receive buffer: larger than any dump part the
// kernel builds (32 KiB at most), so a peek is needed only for a single
// oversized reply.
const recvBufSize = 64 << 10

// rawIO is the raw path's state: the socket's RawConn, the sequence
// counter and the reused buffers. nil when the socket offers no RawConn
// (a test fake), and then mdlayher/netlink's Execute is used.
type rawIO struct {
	// mu keeps a request and its reply together. A Conn is still for one
	// goroutine at a time; mu only stops a misuse from mixing the bytes
	// of two requests, as nl.Execute's own lock did.
	mu   sync.Mutex
	rc   syscall.RawConn
	seq  uint32
	wbuf []byte
	rbuf []byte
}

func newRawIO(nl *netlink.Conn) *rawIO {
	rc, err := nl.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawIO{rc: rc, seq: 1, rbuf: make([]byte, recvBufSize)}
}

// Execute sends one netlink request of type typ with flags (netlink.Request
// is always added) and body data on c's socket and returns the replies, as
// mdlayher/netlink's Conn.Execute would: the messages of a multi-part reply
// without its final NLMSG_DONE, an acknowledgement as a message of type
// netlink.Error, and a refusal by the kernel as a *netlink.OpError whose
// Err is the unix.Errno and whose Message is the extended-ack text. ctx's
// deadline, if any, bounds the request. It is meant for packages on top
// (bridge) that encode requests this package does not wrap; the returned
// Data slices are the caller's.
func (c *Conn) Execute(ctx context.Context, typ uint16, flags netlink.HeaderFlags, data []byte) ([]netlink.Message, error) {
	if c == nil || c.nl == nil {
		return nil, errors.New("rtnl: execute on a closed connection")
	}
	if err := c.deadline(ctx); err != nil {
		return nil, err
	}
	return c.exchange(typ, netlink.Request|flags, data, nil)
}

// exchange sends typ/flags with body data+extra and returns the replies.
func (c *Conn) exchange(typ uint16, flags netlink.HeaderFlags, data, extra []byte) ([]netlink.Message, error) {
	r := c.raw
	if r == nil {
		if len(extra) > 0 {
			data = append(data[:len(data):len(data)], extra...)
		}
		return c.nl.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: flags},
			Data:   data,
		})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	if r.seq == 0 {
		r.seq = 1
	}
	seq := r.seq
	n := unix.SizeofNlMsghdr + len(data) + len(extra)
	w := append(r.wbuf[:0], make([]byte, unix.SizeofNlMsghdr)...)
	w = append(w, data...)
	w = append(w, extra...)
	r.wbuf = w
	binary.NativeEndian.PutUint32(w[0:4], uint32(n))
	binary.NativeEndian.PutUint16(w[4:6], typ)
	binary.NativeEndian.PutUint16(w[6:8], uint16(flags))
	binary.NativeEndian.PutUint32(w[8:12], seq)
	binary.NativeEndian.PutUint32(w[12:16], 0)
	if err := r.send(w); err != nil {
		return nil, err
	}
	var out []netlink.Message
	for {
		b, err := r.recv()
		if err != nil {
			return nil, err
		}
		more, err := parseReplies(b, seq, &out)
		if err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
	}
}

// send writes one request with a raw sendto to the kernel (the socket's
// default destination).
func (r *rawIO) send(w []byte) error {
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for {
			_, _, errno = unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&w[0])), uintptr(len(w)), unix.MSG_DONTWAIT, 0, 0)
			if errno != unix.EINTR {
				break
			}
		}
		return errno != unix.EAGAIN
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return &netlink.OpError{Op: "send", Err: err}
	}
	return nil
}

// recv reads one datagram and returns a copy of it (the caller keeps it).
func (r *rawIO) recv() ([]byte, error) {
	for {
		var n uintptr
		var errno syscall.Errno
		err := r.rc.Read(func(fd uintptr) bool {
			for {
				n, _, errno = unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.rbuf[0])), uintptr(len(r.rbuf)),
					unix.MSG_DONTWAIT|unix.MSG_PEEK|unix.MSG_TRUNC, 0, 0)
				if errno != unix.EINTR {
					break
				}
			}
			return errno != unix.EAGAIN
		})
		if err == nil && errno != 0 {
			err = errno
		}
		if err != nil {
			return nil, &netlink.OpError{Op: "receive", Err: err}
		}
		if int(n) > len(r.rbuf) {
			// A datagram larger than the buffer: grow and peek again.
			r.rbuf = make([]byte, int(n)+4096)
			continue
		}
		// The peek filled the buffer; consume the datagram without copying
		// it again (a zero-length read discards it).
		err = r.rc.Read(func(fd uintptr) bool {
			for {
				_, _, errno = unix.RawSyscall6(unix.SYS_RECVFROM, fd, 0, 0, unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
				if errno != unix.EINTR {
					break
				}
			}
			return errno != unix.EAGAIN
		})
		if err == nil && errno != 0 {
			err = errno
		}
		if err != nil {
			return nil, &netlink.OpError{Op: "receive", Err: err}
		}
		return append([]byte(nil), r.rbuf[:n]...), nil
	}
}

// parseReplies appends the messages of datagram b that answer seq to out.
// It reports whether more datagrams belong to the reply (a multi-part reply
// not yet done). Messages of other sequence numbers (late replies to a
// request whose wait was cut short) are skipped.
func parseReplies(b []byte, seq uint32, out *[]netlink.Message) (more bool, err error) {
	sawOurs := false
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return false, &netlink.OpError{Op: "receive", Err: errors.New("malformed netlink message")}
		}
		h := netlink.Header{
			Length:   uint32(l),
			Type:     netlink.HeaderType(binary.NativeEndian.Uint16(b[4:6])),
			Flags:    netlink.HeaderFlags(binary.NativeEndian.Uint16(b[6:8])),
			Sequence: binary.NativeEndian.Uint32(b[8:12]),
			PID:      binary.NativeEndian.Uint32(b[12:16]),
		}
		m := netlink.Message{Header: h, Data: b[unix.SizeofNlMsghdr:l:l]}
		next := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if next > len(b) {
			next = len(b)
		}
		b = b[next:]
		if h.Sequence != seq {
			continue
		}
		sawOurs = true
		if err := checkReply(m); err != nil {
			return false, err
		}
		if h.Type == netlink.Done && h.Flags&netlink.Multi != 0 {
			return false, nil
		}
		more = h.Flags&netlink.Multi != 0
		*out = append(*out, m)
	}
	if !sawOurs {
		return true, nil // only stale messages: read on
	}
	return more, nil
}

// checkReply turns an NLMSG_ERROR with a non-zero code, or an NLMSG_DONE
// carrying one, into a *netlink.OpError with the extended-ack message.
func checkReply(m netlink.Message) error {
	hasHeader := false
	switch {
	case m.Header.Type == netlink.Error:
		hasHeader = true
	case m.Header.Type == netlink.Done && m.Header.Flags&netlink.Multi != 0:
		if len(m.Data) == 0 {
			return nil
		}
	default:
		return nil
	}
	if len(m.Data) < 4 {
		return &netlink.OpError{Op: "receive", Err: errors.New("short netlink error message")}
	}
	code := int32(binary.NativeEndian.Uint32(m.Data[:4]))
	if code == 0 {
		return nil
	}
	oe := &netlink.OpError{Op: "receive", Err: syscall.Errno(-code), Sequence: m.Header.Sequence}
	if m.Header.Flags&netlink.AcknowledgeTLVs == 0 {
		return oe
	}
	off := 4
	if hasHeader {
		if len(m.Data) < 4+unix.SizeofNlMsghdr {
			return oe
		}
		off = 4 + int(binary.NativeEndian.Uint32(m.Data[4:8]))
		if m.Header.Flags&netlink.Capped != 0 {
			off = 4 + unix.SizeofNlMsghdr
		}
		if off > len(m.Data) {
			return oe
		}
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[off:])
	if err != nil {
		return oe
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NLMSGERR_ATTR_MSG:
			oe.Message = ad.String()
		case unix.NLMSGERR_ATTR_OFFS:
			oe.Offset = int(ad.Uint32())
		}
	}
	return oe
}

// linkIndex returns the index of the link called name. On a real socket it
// asks with ioctl(SIOCGIFINDEX) on the netlink socket itself (the kernel
// resolves the name in the socket's namespace, as if_nametoindex does): a
// hash lookup, where an RTM_GETLINK makes the kernel build and the caller
// decode a whole link message. Errors have getLink's shape, so a missing
// link fails with an error wrapping unix.ENODEV.
func (c *Conn) linkIndex(ctx context.Context, name string) (int, error) {
	if c.raw == nil {
		l, err := c.getLink(ctx, name, &rtnetlink.LinkMessage{
			Attributes: &rtnetlink.LinkAttributes{Name: name, ExtMask: skipStats()},
		})
		return l.Index, err
	}
	if err := ctx.Err(); err != nil {
		return 0, &Error{Op: "get link", Object: name, Err: err}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, &Error{Op: "get link", Object: name, Err: err}
	}
	var errno syscall.Errno
	err = c.raw.rc.Control(func(fd uintptr) {
		_, _, errno = unix.RawSyscall(unix.SYS_IOCTL, fd, unix.SIOCGIFINDEX, uintptr(unsafe.Pointer(ifr)))
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return 0, &Error{Op: "get link", Object: name, Err: err}
	}
	return int(ifr.Uint32()), nil
}
