package dhcpclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
)

// ARPProber is the RFC 5227 probe over an AF_PACKET socket (ETH_P_ARP)
// created inside the interface's namespace. The zero values of Probes and
// Interval mean 3 probes 200 ms apart (RFC 5227 uses 1 to 2 s; labs need
// less), and the wait after the last probe is one Interval.
type ARPProber struct {
	NS       *netns.Handle // nil: the caller's namespace
	Dev      string
	HW       net.HardwareAddr
	Probes   int
	Interval time.Duration
}

// arpPacket builds an ARP request (RFC 826) for Ethernet and IPv4.
func arpPacket(op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(b[2:], 0x0800) // IPv4
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], op)
	copy(b[8:14], sha)
	s := spa.As4()
	copy(b[14:18], s[:])
	copy(b[18:24], tha)
	tp := tpa.As4()
	copy(b[24:28], tp[:])
	return b
}

// arpConflict reports whether an ARP packet from another host claims addr:
// its sender address is addr, or it is another host's probe for addr.
func arpConflict(b []byte, own net.HardwareAddr, addr netip.Addr) bool {
	if len(b) < 28 || binary.BigEndian.Uint16(b[2:]) != 0x0800 || b[4] != 6 || b[5] != 4 {
		return false
	}
	sha := net.HardwareAddr(b[8:14])
	if bytes.Equal(sha, own) {
		return false
	}
	spa := netip.AddrFrom4([4]byte(b[14:18]))
	tpa := netip.AddrFrom4([4]byte(b[24:28]))
	op := binary.BigEndian.Uint16(b[6:])
	return spa == addr || (op == 1 && spa.IsUnspecified() && tpa == addr)
}

// Probe sends the ARP probes for addr and reports whether any other host
// answered or probed for it meanwhile.
func (p *ARPProber) Probe(ctx context.Context, addr netip.Addr) (bool, error) {
	probes, interval := p.Probes, p.Interval
	if probes <= 0 {
		probes = 3
	}
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	var c *packet.Conn
	open := func() error {
		ifi, err := net.InterfaceByName(p.Dev)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Datagram, unix.ETH_P_ARP, nil)
		return err
	}
	var err error
	if p.NS == nil {
		err = open()
	} else {
		err = netns.Do(p.NS, open)
	}
	if err != nil {
		return false, fmt.Errorf("arp probe on %s: %w", p.Dev, err)
	}
	defer c.Close()
	found := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		b := make([]byte, 128)
		for {
			n, _, err := c.ReadFrom(b)
			if err != nil {
				return
			}
			if arpConflict(b[:n], p.HW, addr) {
				close(found)
				return
			}
		}
	}()
	defer func() { _ = c.SetReadDeadline(time.Unix(1, 0)); <-readDone }()
	bcast := &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	probe := arpPacket(1, p.HW, netip.IPv4Unspecified(), make(net.HardwareAddr, 6), addr)
	for i := 0; i < probes; i++ {
		if _, err := c.WriteTo(probe, bcast); err != nil {
			return false, fmt.Errorf("arp probe on %s: send: %w", p.Dev, err)
		}
		t := time.NewTimer(interval)
		select {
		case <-found:
			t.Stop()
			return true, nil
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
	}
	return false, nil
}

var _ Prober = (*ARPProber)(nil)
