package bridge_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nsbox/nsbox/bridge"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// Add, AddPort and List are `brctl addbr`, `brctl addif` and `brctl show`,
// here inside the network namespace lab1.
func ExampleAdd() {
	ctx := context.Background()
	lab, err := netns.Open("lab1")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lab.Close()
	c, err := rtnl.Dial(lab)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	stp, delay := true, 4*time.Second
	if err := bridge.Add(ctx, c, "br0", &bridge.Config{STP: &stp, ForwardDelay: &delay}); err != nil {
		fmt.Println(err)
		return
	}
	if err := bridge.AddPort(ctx, c, "br0", "veth1"); err != nil {
		fmt.Println(err)
		return
	}
	brs, _ := bridge.List(ctx, c)
	for _, b := range brs {
		fmt.Println(b.Name, b.ID, b.STP)
	}
}
