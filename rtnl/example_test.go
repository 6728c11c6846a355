package rtnl_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// Dial a namespace and build what `ip link add veth0 type veth peer name
// veth1 netns lab1; ip addr add 192.168.5.5/24 dev veth0; ip link set
// veth0 up` builds, over one netlink socket.
func ExampleDial() {
	ctx := context.Background()
	lab, err := netns.Open("lab1")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lab.Close()
	c, err := rtnl.Dial(nil) // nil: the caller's own namespace
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if err := c.AddVeth(ctx, "veth0", "veth1", lab); err != nil {
		fmt.Println(err)
		return
	}
	_ = c.AddAddr(ctx, "veth0", netip.MustParsePrefix("192.168.5.5/24"), nil)
	_ = c.SetUp(ctx, "veth0")
	links, _ := c.Links(ctx)
	for _, l := range links {
		fmt.Println(l.Index, l.Name)
	}
}

// ValidateLinkName refuses what the kernel or the CLI would choke on.
func ExampleValidateLinkName() {
	fmt.Println(rtnl.ValidateLinkName("veth0"))
	fmt.Println(errors.Is(rtnl.ValidateLinkName("much-too-long-name0"), rtnl.ErrInvalidName))
	// Output:
	// <nil>
	// true
}

// List the addresses of links already listed, as `ip addr` prints them,
// with no second dump of the links.
func ExampleConn_QueryAddrs() {
	ctx := context.Background()
	c, err := rtnl.Dial(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	links, err := c.Links(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Index] = l.Name
	}
	addrs, err := c.QueryAddrs(ctx, rtnl.AddrQuery{Names: names})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range addrs {
		fmt.Println(a.Dev, a.Prefix)
	}
}
