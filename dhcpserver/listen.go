package dhcpserver

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
)

// ListenUDP opens the server's socket: UDP port 67 on all addresses, bound
// to device dev (SO_BINDTODEVICE) with broadcast allowed, created by
// server4.NewIPv4UDPConn inside namespace ns (nil: the caller's) on a
// locked thread (netns.Do). The socket stays in that namespace.
//
// The returned conn can also seed the ARP table of its namespace, so that
// Serve unicasts OFFER and ACK to a client that has no address yet (RFC 2131
// 4.1, as dnsmasq does) instead of flooding every port of a bridge.
func ListenUDP(ns *netns.Handle, dev string) (net.PacketConn, error) {
	var conn net.PacketConn
	open := func() error {
		c, err := server4.NewIPv4UDPConn(dev, &net.UDPAddr{Port: dhcpv4.ServerPort})
		if err != nil {
			return err
		}
		conn = &udpConn{UDPConn: c, dev: dev}
		return nil
	}
	var err error
	if ns == nil {
		err = open()
	} else {
		err = netns.Do(ns, open)
	}
	if err != nil {
		return nil, fmt.Errorf("dhcpserver: listen on %s port 67: %w", dev, err)
	}
	return conn, nil
}

// arpSetter is implemented by conns that can add a neighbour entry, so a
// reply can be unicast to a client's hardware address before it has an IP.
type arpSetter interface {
	setARP(ip netip.Addr, mac net.HardwareAddr) error
}

// udpConn is the server socket with its device, for SIOCSARP.
type udpConn struct {
	*net.UDPConn
	dev string
}

// arpreq is struct arpreq of <net/if_arp.h>.
type arpreq struct {
	pa      [16]byte // struct sockaddr_in
	ha      [16]byte // struct sockaddr, sa_family ARPHRD_ETHER
	flags   int32
	netmask [16]byte
	dev     [16]byte
}

// setARP adds (or replaces) the neighbour entry ip -> mac on the device, in
// the socket's namespace.
func (c *udpConn) setARP(ip netip.Addr, mac net.HardwareAddr) error {
	if len(mac) != 6 || !ip.Is4() {
		return fmt.Errorf("set arp %s: need an IPv4 and an Ethernet address", ip)
	}
	var r arpreq
	binary.NativeEndian.PutUint16(r.pa[0:], unix.AF_INET)
	a := ip.As4()
	copy(r.pa[4:8], a[:])
	binary.NativeEndian.PutUint16(r.ha[0:], unix.ARPHRD_ETHER)
	copy(r.ha[2:8], mac)
	r.flags = 0x02 // ATF_COM
	copy(r.dev[:15], c.dev)
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("set arp %s: %w", ip, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.SIOCSARP, uintptr(unsafe.Pointer(&r)))
		if e != 0 {
			serr = e
		}
	}); err != nil {
		return fmt.Errorf("set arp %s: %w", ip, err)
	}
	if serr != nil {
		return fmt.Errorf("set arp %s on %s: %w", ip, c.dev, serr)
	}
	return nil
}
