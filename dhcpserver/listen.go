package dhcpserver

import (
	"fmt"
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/nsbox/nsbox/netns"
)

// ListenUDP opens the server's socket: UDP port 67 on all addresses, bound
// to device dev (SO_BINDTODEVICE) with broadcast allowed, created by
// server4.NewIPv4UDPConn inside namespace ns (nil: the caller's) on a
// locked thread (netns.Do). The socket stays in that namespace.
func ListenUDP(ns *netns.Handle, dev string) (net.PacketConn, error) {
	var conn net.PacketConn
	open := func() error {
		c, err := server4.NewIPv4UDPConn(dev, &net.UDPAddr{Port: dhcpv4.ServerPort})
		if err != nil {
			return err
		}
		conn = c
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
