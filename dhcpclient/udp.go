package dhcpclient

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
)

// udpConn is the Conn of a real interface when the kernel will hand it
// broadcast replies through a plain UDP socket: port 68 on 0.0.0.0, bound to
// the device (SO_BINDTODEVICE), broadcast allowed. Unlike a packet socket
// (rawConn), closing it costs nothing: the kernel's packet_release waits
// for an RCU grace period (synchronize_net), 10 to 16 ms measured here,
// which was most of a one-shot client's run time. Replies reach it only
// when they are broadcast (the client sets the BROADCAST flag, RFC 2131
// 4.1) or sent to an address of the device, and only when reverse-path
// filtering does not drop packets from a server the interface has no route
// to yet: Listen uses it only where rp_filter is off.
type udpConn struct {
	c     *net.UDPConn
	guard readGuard
}

// rpFilterOff reports whether reverse-path filtering is off for dev in the
// calling thread's namespace (the kernel uses the larger of "all" and the
// device's value).
func rpFilterOff(dev string) bool {
	for _, name := range []string{"all", dev} {
		b, err := os.ReadFile(filepath.Join("/proc/sys/net/ipv4/conf", name, "rp_filter"))
		if err != nil || string(bytes.TrimSpace(b)) != "0" {
			return false
		}
	}
	return true
}

// listenUDP opens the UDP socket on dev in the calling thread's namespace.
func listenUDP(dev string) (*udpConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	for _, o := range []struct{ level, opt int }{
		{unix.SOL_SOCKET, unix.SO_REUSEADDR}, {unix.SOL_SOCKET, unix.SO_BROADCAST},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("udp socket: setsockopt: %w", err)
		}
	}
	// Only replies to this interface's hardware address reach user
	// space: with BROADCAST set, every client's replies are broadcast.
	if ifi, err := net.InterfaceByName(dev); err == nil && len(ifi.HardwareAddr) == 6 {
		prog, err := chaddrFilter(ifi.HardwareAddr)
		if err == nil {
			err = unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, prog)
		}
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("udp socket: filter: %w", err)
		}
	}
	if err := unix.BindToDevice(fd, dev); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind to device %s: %w", dev, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: dhcpv4.ClientPort}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind port %d: %w", dhcpv4.ClientPort, err)
	}
	f := os.NewFile(uintptr(fd), "dhcp-udp-"+dev)
	pc, err := net.FilePacketConn(f)
	f.Close() // FilePacketConn holds a dup
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	return &udpConn{c: pc.(*net.UDPConn)}, nil
}

// chaddrFilter is a classic BPF program for a UDP socket (which sees the
// datagram from its UDP header on): it keeps DHCP messages whose chaddr
// (8 bytes of UDP header, then offset 28) is mac and drops the rest.
func chaddrFilter(mac net.HardwareAddr) (*unix.SockFprog, error) {
	hi := uint32(mac[0])<<24 | uint32(mac[1])<<16 | uint32(mac[2])<<8 | uint32(mac[3])
	lo := uint32(mac[4])<<8 | uint32(mac[5])
	raw, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 8 + 28, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: hi, SkipTrue: 3},
		bpf.LoadAbsolute{Off: 8 + 32, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: lo, SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		return nil, err
	}
	ins := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		ins[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return &unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]}, nil
}

// broadcastReplies tells the client to set the BROADCAST flag while it has
// no address: this socket cannot see a reply unicast to an address the
// interface does not hold yet.
func (u *udpConn) broadcastReplies() bool { return true }

func (u *udpConn) Send(ctx context.Context, msg []byte, src, dst netip.Addr) error {
	return u.send(ctx, msg, src, dst, false)
}

// sendLast is Send that waits for a unicast datagram to leave (lastSender).
func (u *udpConn) sendLast(ctx context.Context, msg []byte, src, dst netip.Addr) error {
	return u.send(ctx, msg, src, dst, true)
}

func (u *udpConn) send(ctx context.Context, msg []byte, src, dst netip.Addr, wait bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	to := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	if dst.IsValid() {
		to.IP = dst.AsSlice()
	}
	if _, err := u.c.WriteTo(msg, to); err != nil {
		return err
	}
	if wait && dst.IsValid() {
		// A unicast datagram may wait for the server's link address:
		// see waitSent.
		if rc, err := u.c.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { waitSent(ctx, int(fd)) })
		}
	}
	return nil
}

func (u *udpConn) Recv(ctx context.Context) ([]byte, error) {
	return u.guard.read(ctx, u.c)
}

func (u *udpConn) Close() error { return u.c.Close() }

// listenFast opens a udpConn inside ns when rp_filter allows it; nil
// otherwise (the caller falls back to the packet socket).
func listenFast(ns *netns.Handle, dev string) *udpConn {
	var u *udpConn
	open := func() error {
		if !rpFilterOff(dev) {
			return nil
		}
		c, err := listenUDP(dev)
		if err == nil {
			u = c
		}
		return nil
	}
	if ns == nil {
		_ = open()
	} else {
		_ = netns.Do(ns, open)
	}
	return u
}
