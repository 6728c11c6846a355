package pool_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/pool"
)

// A program that runs many networked sandboxes keeps its own pool: 32
// namespaces on br0 (in the namespace "lab"), leased by DHCP. Each sandbox
// joins a ready namespace, so its first instruction already has an
// address, a default route and DNS, in new IPC, PID and mount namespaces
// with its own /proc (as `nsbox run --pool NAME --ipc --pid --mount`);
// Release destroys the namespace.
func Example() {
	ctx := context.Background()
	lab, err := netns.Open("lab")
	if err != nil {
		log.Fatal(err)
	}
	defer lab.Close()
	p, err := pool.Start(ctx, pool.Config{Bridge: "br0", BridgeNS: lab, Size: 32, DHCP: true})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < 1000; i++ {
		slot, err := p.Claim(ctx)
		if err != nil {
			log.Fatal(err)
		}
		st, err := nsclone.Run(ctx, &nsclone.Spec{
			Path:       "/bin/ip",
			Args:       []string{"ip", "-br", "addr", "show", "eth0"},
			Namespaces: nsclone.IPC | nsclone.PID | nsclone.Mnt,
			MountProc:  true,
			Join:       map[nsclone.Namespace]string{nsclone.Net: slot.Path()},
			Stdout:     os.Stdout,
		})
		slot.Release()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(slot.Addr(), st.Code())
	}
}

// Another process's pool (nsbox pool start web --bridge br0 --size 8 --dhcp)
// is reached through its socket; the slot goes back when released or when
// this process dies.
func ExampleClient() {
	c, err := pool.NewClient("web")
	if err != nil {
		log.Fatal(err)
	}
	slot, err := c.Claim(context.Background(), 5*time.Second)
	if err != nil {
		log.Fatal(err) // *pool.EmptyError when nothing was ready in 5 s
	}
	defer slot.Release()
	fmt.Println(slot.Addr(), slot.Gateway(), slot.Path())
}

// Many sandboxes at once from another process's pool (nsbox pool start web
// --bridge br0 --size 200 --dhcp): each goroutine claims a namespace and
// runs its payload in new IPC, PID and mount namespaces with its own /proc,
// joined to it (what `nsbox run --pool web --ipc --pid --mount --no-init`
// does, without a process of nsbox for each). bench/pool's PoolStorm times
// this as nsbox-pool-lib.
func ExampleClient_storm() {
	c, err := pool.NewClient("web")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	env := os.Environ()
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slot, err := c.Claim(ctx, 5*time.Second)
			if err != nil {
				log.Print(err)
				return
			}
			defer slot.Release()
			st, err := nsclone.Run(ctx, &nsclone.Spec{
				Path:       "/bin/true",
				Env:        env,
				Namespaces: nsclone.IPC | nsclone.PID | nsclone.Mnt,
				MountProc:  true,
				Join:       map[nsclone.Namespace]string{nsclone.Net: slot.Path()},
			})
			if err != nil || st.Code() != 0 {
				log.Print(slot.Addr(), err, st.Code())
			}
		}()
	}
	wg.Wait()
}
