package dhcpserver_test

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/nsbox/nsbox/dhcpserver"
)

// A server for 10.66.0.10-20 answers a DISCOVER with an OFFER of the first
// free address. Serve runs the same logic on a UDP socket bound to the
// bridge (see `nsbox dhcpd`); Handle is the socket-free core.
func ExampleServer_Handle() {
	srv, err := dhcpserver.New(netip.MustParsePrefix("10.66.0.1/24"),
		netip.MustParseAddr("10.66.0.10"), netip.MustParseAddr("10.66.0.20"),
		dhcpserver.WithRouter(netip.MustParseAddr("10.66.0.1")))
	if err != nil {
		panic(err)
	}
	discover, err := dhcpv4.NewDiscovery(net.HardwareAddr{0x02, 0, 0, 0, 0, 1})
	if err != nil {
		panic(err)
	}
	offer, _, err := srv.Handle(discover)
	if err != nil {
		panic(err)
	}
	fmt.Println(offer.MessageType(), offer.YourIPAddr, offer.Router())
	// Output:
	// OFFER 10.66.0.10 [10.66.0.1]
}

// A REQUEST in the INIT-REBOOT form from a client the server never offered
// anything to gets no answer (RFC 2131 4.3.2); a giaddr is trusted only in
// a request that came from that relay's port 67.
func ExampleServer_HandleFrom() {
	srv, err := dhcpserver.New(netip.MustParsePrefix("10.66.0.1/24"),
		netip.MustParseAddr("10.66.0.10"), netip.MustParseAddr("10.66.0.20"))
	if err != nil {
		panic(err)
	}
	hw := net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	spoofed, err := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 66, 0, 15))))
	if err != nil {
		panic(err)
	}
	reply, _, err := srv.HandleFrom(spoofed, &net.UDPAddr{IP: net.IPv4zero, Port: 68})
	fmt.Println(reply == nil, err)

	relay := net.IPv4(10, 99, 0, 1)
	discover, err := dhcpv4.NewDiscovery(hw, dhcpv4.WithGatewayIP(relay))
	if err != nil {
		panic(err)
	}
	_, dst, _ := srv.HandleFrom(discover, &net.UDPAddr{IP: net.IPv4zero, Port: 68})
	fmt.Println("from the client:", dst)
	_, dst, _ = srv.HandleFrom(discover, &net.UDPAddr{IP: relay, Port: 67})
	fmt.Println("from the relay:", dst)
	// Output:
	// true init-reboot request from hw:02:00:00:00:00:02 for 10.66.0.15: no record of the client, silent
	// from the client: 255.255.255.255:68
	// from the relay: 10.99.0.1:67
}
