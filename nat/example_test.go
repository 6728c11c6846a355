package nat_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"

	"github.com/nsbox/nsbox/nat"
	"github.com/nsbox/nsbox/netns"
)

// Give the sandboxes of br0 (in the namespace "host") a way out, and
// publish port 80 of the sandbox 10.88.0.5 as port 8080 of the namespace,
// held by this process: if it dies, the next operation on the table removes
// the port.
func Example() {
	ctx := context.Background()
	h, err := netns.Open("host")
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	t, err := nat.Open(h)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	if err := t.AddMasquerade(ctx, nat.Masquerade{Bridge: "br0"}); err != nil {
		log.Fatal(err)
	}
	me, err := nat.Self("web")
	if err != nil {
		log.Fatal(err)
	}
	p := nat.Publish{Bridge: "br0", HostPort: 8080, Addr: netip.MustParseAddr("10.88.0.5"), Port: 80, Owner: me}
	if err := t.Publish(ctx, p); err != nil {
		log.Fatal(err) // e.g. "nat: publish tcp 0.0.0.0:8080: host port already published by ..."
	}
	defer t.Unpublish(ctx, p)
	entries, err := t.List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Fprintln(os.Stdout, e.Kind, e.Bridge, e.HostPort, e.Owner())
	}
}
