package deps

import (
	_ "github.com/insomniacslk/dhcp/dhcpv4"
	_ "github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	_ "github.com/insomniacslk/dhcp/dhcpv4/server4"
	_ "github.com/jsimonetti/rtnetlink/v2"
	_ "github.com/mdlayher/netlink"
	_ "github.com/spf13/pflag"
	_ "golang.org/x/sys/unix"
)
