package pool

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/pool"
)

// stormLib is PoolStorm's nsbox-pool-lib: what a Go program built on nsbox
// writes to run n sandboxes at once from a running pool (`nsbox pool
// start NAME`), in this process: each of n goroutines claims a namespace
// through pool.Client, spawns the payload at path with nsclone in new IPC, PID and
// mount namespaces with a fresh /proc, joined to the claimed network
// namespace (with the pool's DNS bound over /etc/resolv.conf when it has
// any), as `nsbox run --pool NAME --ipc --pid --mount --no-init` does, waits
// for it and releases the slot (the pool destroys the namespace). dir holds
// the resolv.conf files. It returns how many sandboxes failed and the first
// failure.
func stormLib(ctx context.Context, poolName, dir, path string, n int) (int, error) {
	c, err := pool.NewClient(poolName)
	if err != nil {
		return n, err
	}
	env := os.Environ() // once, not once a spawn (Spec.Env nil)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = libSandbox(ctx, c, env, path, filepath.Join(dir, fmt.Sprintf("resolv-%d", i)))
		}()
	}
	wg.Wait()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	return failed, first
}

// libSandbox runs one sandbox of stormLib, the payload at path; resolv is
// where its resolv.conf goes if the slot has DNS servers.
func libSandbox(ctx context.Context, c *pool.Client, env []string, path, resolv string) error {
	slot, err := c.Claim(ctx, 5*time.Second)
	if err != nil {
		return err
	}
	defer slot.Release()
	spec := &nsclone.Spec{
		Path:       path,
		Args:       []string{"true"},
		Env:        env,
		Namespaces: nsclone.IPC | nsclone.PID | nsclone.Mnt,
		MountProc:  true,
		Join:       map[nsclone.Namespace]string{nsclone.Net: slot.Path()},
	}
	if conf := slot.ResolvConf(); conf != nil {
		if err := os.WriteFile(resolv, conf, 0o644); err != nil {
			return err
		}
		spec.Mounts = []nsclone.Mount{{Source: resolv, Target: "/etc/resolv.conf", Flags: unix.MS_BIND}}
	}
	st, err := nsclone.Run(ctx, spec)
	if err != nil {
		return err
	}
	if st.Code() != 0 {
		return fmt.Errorf("sandbox of %s: %s exited %d", slot.Addr(), path, st.Code())
	}
	return nil
}
