package dhcpclient

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
)

// udpPort68 is a classic BPF filter for the packet socket (which sees IP
// datagrams without the Ethernet header): only unfragmented UDP to port 68
// reaches user space. On a bridge full of clients the broadcasts of the
// others (to port 67) are dropped in the kernel instead of filling the
// socket's buffer.
var udpPort68 = func() []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 9, Size: 1},                                      // IP protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_UDP, SkipTrue: 6}, // not UDP: drop
		bpf.LoadAbsolute{Off: 6, Size: 2},                                      // flags, fragment offset
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 4},            // a later fragment: drop
		bpf.LoadMemShift{Off: 0},                                               // X = IP header length
		bpf.LoadIndirect{Off: 2, Size: 2},                                      // UDP destination port
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: dhcpv4.ClientPort, SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic("dhcpclient: bad BPF program: " + err.Error()) // a constant program: a bug
	}
	return prog
}()

// rawConn is the Conn of a real interface: an AF_PACKET socket (through
// nclient4's raw UDP conn) created inside the namespace, and short-lived
// UDP sockets, also created there, for unicast.
type rawConn struct {
	ns    *netns.Handle // nil: the caller's namespace
	dev   string
	pc    net.PacketConn
	guard readGuard
}

// readGuard lets one reader at a time end a blocking read when its context
// ends (a read deadline in the past), without a late cancellation of an
// earlier read reaching a later one.
type readGuard struct {
	mu  sync.Mutex
	gen uint64
}

// read returns the next datagram of pc (up to maxReplySize+100 bytes, room
// to notice an oversized reply), or ctx's error once ctx ends.
func (g *readGuard) read(ctx context.Context, pc net.PacketConn) ([]byte, error) {
	g.mu.Lock()
	g.gen++
	gen := g.gen
	g.mu.Unlock()
	if err := pc.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.gen == gen {
			_ = pc.SetReadDeadline(time.Unix(1, 0))
		}
	})
	b := make([]byte, maxReplySize+100)
	n, _, err := pc.ReadFrom(b)
	stop()
	g.mu.Lock()
	g.gen++
	g.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return b[:n], nil
}

// Listen opens the client's packet socket on dev inside ns (nil: the
// caller's namespace). The socket is created on a locked thread that entered
// the namespace (netns.Do); it keeps working after the thread left. ns must
// stay open while the Conn is used (unicast sends enter it again).
//
// Where reverse-path filtering is off (the default in a new namespace) it
// opens a UDP socket on port 68 bound to dev instead, and the client asks
// for broadcast replies: the same exchange without the 10-16 ms that
// closing a packet socket costs (see udpConn).
func Listen(ns *netns.Handle, dev string) (Conn, error) {
	if u := listenFast(ns, dev); u != nil {
		return u, nil
	}
	return ListenPacket(ns, dev)
}

// ListenPacket is Listen that always uses the packet socket (replies
// unicast to an address not yet configured are seen too).
func ListenPacket(ns *netns.Handle, dev string) (Conn, error) {
	c := &rawConn{ns: ns, dev: dev}
	err := c.in(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		raw, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_IP, &packet.Config{Filter: udpPort68})
		if err != nil {
			return err
		}
		c.pc = nclient4.NewBroadcastUDPConn(raw, &net.UDPAddr{Port: dhcpv4.ClientPort})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dhcpclient: open packet socket on %s: %w", dev, err)
	}
	return c, nil
}

// in runs fn inside the Conn's namespace.
func (c *rawConn) in(fn func() error) error {
	if c.ns == nil {
		return fn()
	}
	return netns.Do(c.ns, fn)
}

func (c *rawConn) Send(ctx context.Context, msg []byte, src, dst netip.Addr) error {
	return c.send(ctx, msg, src, dst, false)
}

// sendLast is Send that waits for a unicast datagram to leave (lastSender).
func (c *rawConn) sendLast(ctx context.Context, msg []byte, src, dst netip.Addr) error {
	return c.send(ctx, msg, src, dst, true)
}

func (c *rawConn) send(ctx context.Context, msg []byte, src, dst netip.Addr, wait bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !dst.IsValid() {
		_, err := c.pc.WriteTo(msg, &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort})
		return err
	}
	return c.in(func() error { return sendUDP(ctx, c.dev, msg, src, dst, wait) })
}

// sendUDP sends one datagram from src:68 (or an ephemeral port when 68 is
// taken) to dst:67 through dev, on the calling thread's namespace; with
// wait, it returns once the datagram has left the socket (waitSent).
func sendUDP(ctx context.Context, dev string, msg []byte, src, dst netip.Addr, wait bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return fmt.Errorf("udp socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("udp socket: %w", err)
	}
	if err := unix.BindToDevice(fd, dev); err != nil {
		return fmt.Errorf("bind to device %s: %w", dev, err)
	}
	sa := &unix.SockaddrInet4{Port: dhcpv4.ClientPort}
	if src.Is4() {
		sa.Addr = src.As4()
	}
	if err := unix.Bind(fd, sa); err != nil {
		sa.Port = 0
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
	}
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Port: dhcpv4.ServerPort, Addr: dst.As4()}); err != nil {
		return fmt.Errorf("send to %s: %w", dst, err)
	}
	if wait {
		waitSent(ctx, fd) // before the close: see waitSent
	}
	return nil
}

func (c *rawConn) Recv(ctx context.Context) ([]byte, error) {
	return c.guard.read(ctx, c.pc)
}

func (c *rawConn) Close() error { return c.pc.Close() }
