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
