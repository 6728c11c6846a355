package pool

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// announce sends one gratuitous ARP request for addr from dev inside ns.
//
// Why: an address handed out again (a released lease, a range address)
// belongs to a new MAC, but the gateway's neighbour entry still names the
// old one, and Linux ignores a changed MAC from an ordinary ARP request
// within the entry's locktime (1 s), so the sandbox's first connection
// would wait for a retransmission. A gratuitous ARP overrides the entry at
// once, and the pool sends it while wiring, off the claim's clock.
func announce(ctx context.Context, ns *netns.Handle, dev string, addr netip.Addr) error {
	c, err := rtnl.Dial(ns)
	if err != nil {
		return err
	}
	l, err := c.LinkByName(ctx, dev)
	c.Close()
	if err != nil {
		return err
	}
	if len(l.HardwareAddr) != 6 || !addr.Is4() {
		return nil
	}
	frame := make([]byte, 42)
	copy(frame[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(frame[6:12], l.HardwareAddr)
	binary.BigEndian.PutUint16(frame[12:14], unix.ETH_P_ARP)
	arp := frame[14:]
	binary.BigEndian.PutUint16(arp[0:2], 1) // Ethernet
	binary.BigEndian.PutUint16(arp[2:4], unix.ETH_P_IP)
	arp[4], arp[5] = 6, 4
	binary.BigEndian.PutUint16(arp[6:8], 1) // request
	a := addr.As4()
	copy(arp[8:14], l.HardwareAddr)
	copy(arp[14:18], a[:])
	copy(arp[24:28], a[:]) // target = sender: gratuitous
	return netns.Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: l.Index, Halen: 6}
		copy(sa.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		if err := unix.Sendto(fd, frame, 0, sa); err != nil {
			return fmt.Errorf("send gratuitous ARP: %w", err)
		}
		return nil
	})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
