package nsnet_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/nsnet"
	"github.com/nsbox/nsbox/rtnl"
)

// The README's library example: a lab namespace with a bridge, and a
// sandbox whose eth0 is on that bridge, addressed and routed before its
// first instruction (Attach runs while the child waits).
func ExampleAttach() {
	ctx := context.Background()
	// A lab namespace with a bridge, like `ip netns add lab; ip -n lab link add br0 type bridge`.
	if err := netns.Add(ctx, "lab"); err != nil {
		fmt.Println(err)
		return
	}
	defer netns.Delete(ctx, "lab")
	lab, err := netns.Open("lab")
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
	_ = c.AddBridge(ctx, "br0")
	_ = c.AddAddr(ctx, "br0", netip.MustParsePrefix("10.9.0.1/24"), nil)
	_ = c.SetUp(ctx, "br0")

	// A sandbox in fresh namespaces whose eth0 is on br0 before its first instruction.
	cfg := &nsnet.Config{Bridge: "br0", BridgeNS: lab, Addr: netip.MustParsePrefix("10.9.0.2/24")}
	var att *nsnet.Attachment
	st, err := nsclone.Run(ctx, &nsclone.Spec{
		Path: "/bin/ping", Args: []string{"ping", "-c1", "10.9.0.1"},
		Namespaces: nsclone.IPC | nsclone.PID | nsclone.Mnt | nsclone.Net, MountProc: true, Init: true,
		Stdout: os.Stdout, Stderr: os.Stderr,
		BeforeExec: func(pid int) (err error) { att, err = nsnet.Attach(ctx, cfg, pid); return err },
	})
	if att != nil {
		att.Detach(ctx)
	}
	fmt.Println("exit", st.Code(), err)
}

// The host end of a sandbox's veth is named after the child's pid, so `ip
// link` and `bridge show` tell which sandbox a port belongs to.
func ExampleHostIfName() {
	fmt.Println(nsnet.HostIfName(4660))
	// Output: nsb1234
}

// While a link has that name (the host end of a dead sandbox with the same
// pid, until the kernel has destroyed its namespace), Attach takes the
// next one.
func ExampleHostIfNameTry() {
	for try := 0; try < 3; try++ {
		fmt.Println(nsnet.HostIfNameTry(4660, try))
	}
	fmt.Println(nsnet.HostIfNameTry(1<<22-1, nsnet.HostIfNameTries-1))
	// Output:
	// nsb1234
	// nsb1234-1
	// nsb1234-2
	// nsb3fffff-f
}

// CheckBridge refuses a missing bridge before anything is spawned, and its
// result, set as Config.Checked, is what Attach then uses: one connection
// and one lookup of the bridge for the sandbox.
func ExampleCheckBridge() {
	ctx := context.Background()
	cfg := &nsnet.Config{Bridge: "br0", Addr: netip.MustParsePrefix("10.9.0.3/24")}
	br, err := nsnet.CheckBridge(ctx, cfg)
	if err != nil {
		fmt.Println(err) // nsnet: bridge br0 does not exist (create it with nsbox bridge add br0)
		return
	}
	defer br.Close()
	cfg.Checked = br
	var att *nsnet.Attachment
	st, err := nsclone.Run(ctx, &nsclone.Spec{
		Path: "/bin/true", Namespaces: nsclone.Net,
		BeforeExec: func(pid int) (err error) { att, err = nsnet.Attach(ctx, cfg, pid); return err },
	})
	if att != nil {
		att.Detach(ctx)
	}
	fmt.Println("exit", st.Code(), err)
}
