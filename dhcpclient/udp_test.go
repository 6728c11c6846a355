package dhcpclient

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
)

// TestUDPConnFiltersChaddr: in a namespace with rp_filter off, Listen gives
// the UDP socket; of two replies broadcast by another namespace to port 68,
// only the one for the interface's own chaddr reaches Recv.
func TestUDPConnFiltersChaddr(t *testing.T) {
	lab := testutil.NewDHCPLab(t, 1, true)
	h, err := netns.Open(lab.Clients[0])
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := Listen(h, lab.ClientDev)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*udpConn); !ok {
		t.Fatalf("Listen gave %T, want the UDP socket (rp_filter is 0 in a new namespace)", c)
	}
	var mine net.HardwareAddr
	if err := netns.Do(h, func() error {
		ifi, err := net.InterfaceByName(lab.ClientDev)
		if err == nil {
			mine = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	reply := func(hw net.HardwareAddr, xid byte) []byte {
		m, err := dhcpv4.New(dhcpv4.WithReply(&dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootRequest, ClientHWAddr: hw}),
			dhcpv4.WithTransactionID(dhcpv4.TransactionID{0, 0, 0, xid}), dhcpv4.WithHwAddr(hw))
		if err != nil {
			t.Fatal(err)
		}
		return m.ToBytes()
	}
	srv, err := netns.Open(lab.ServerNS)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The pair is sent again every 100 ms until one arrives: the lab's
	// veth may not carry anything yet (its carrier comes when the kernel's
	// link watcher runs, late on a loaded machine), and whichever pair
	// arrives first, the stranger's reply comes before ours.
	theirs, ours := reply(net.HardwareAddr{2, 9, 9, 9, 9, 9}, 1), reply(mine, 2)
	sent := make(chan error, 1)
	go func() {
		for {
			err := netns.Do(srv, func() error {
				if err := sendBroadcast(lab.Bridge, theirs); err != nil {
					return err
				}
				return sendBroadcast(lab.Bridge, ours)
			})
			if err != nil {
				sent <- err
				return
			}
			select {
			case <-ctx.Done():
				sent <- nil
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	b, err := c.Recv(ctx)
	cancel()
	if serr := <-sent; serr != nil {
		t.Fatal(serr)
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := dhcpv4.FromBytes(b)
	if err != nil || m.TransactionID[3] != 2 {
		t.Fatalf("first datagram received: %v %v, want the reply for %s (xid 2)", m, err, mine)
	}
}

// sendBroadcast sends b from port 67 to 255.255.255.255:68 through dev, in
// the calling thread's namespace.
func sendBroadcast(dev string, b []byte) error {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return err
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = bindBroadcast(int(fd), dev)
	}); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	_, err = c.WriteTo(b, &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
	return err
}

func bindBroadcast(fd int, dev string) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
		return err
	}
	return unix.BindToDevice(fd, dev)
}
