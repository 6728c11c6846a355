package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/nsbox/nsbox/pool"
	"github.com/nsbox/nsbox/rtnl"
)

const poolUsage = `pool start NAME --bridge BR --size N (--dhcp | --range FROM-TO/PREFIX [--gateway IP])
           [--dns IP[,IP]] [--nat] [--ifname NAME] [--workers N] [--refill-delay D] [-v]
                               keep N network namespaces ready on BR (in -n NS), served on
                               /run/nsbox/pools/NAME.sock, until SIGINT/SIGTERM or pool stop
pool status NAME               ready, in_use, refilling, failures (-j: an object)
pool stop NAME                 tear the pool down and release every lease`

func poolCommand() *command {
	return &command{name: "pool", usage: poolUsage, run: runPool, noBatch: true}
}

// poolStartArgs are the checked arguments of nsbox pool start.
type poolStartArgs struct {
	cfg     pool.Config
	verbose bool
}

// parsePoolStart checks the arguments after "pool start"; every mistake is a
// usage error. It touches nothing.
func parsePoolStart(args []string) (poolStartArgs, error) {
	var a poolStartArgs
	fs := pflag.NewFlagSet("pool start", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.cfg.Bridge, "bridge", "", "bridge the namespaces' veths join")
	fs.IntVar(&a.cfg.Size, "size", 0, "namespaces kept ready")
	fs.BoolVar(&a.cfg.DHCP, "dhcp", false, "lease each address by DHCP")
	rng := fs.String("range", "", "static addresses FROM-TO/PREFIX")
	gw := fs.String("gateway", "", "default route of range addresses (default: the bridge's address)")
	dns := fs.String("dns", "", "DNS servers, comma-separated")
	fs.BoolVar(&a.cfg.NAT, "nat", false, "masquerade the bridge's subnets while the pool runs")
	fs.StringVar(&a.cfg.IfName, "ifname", "", "interface name inside the namespaces (default eth0)")
	fs.IntVar(&a.cfg.Workers, "workers", 0, "namespaces wired at once (default: --size, at least 8, at most 64)")
	fs.DurationVar(&a.cfg.RefillDelay, "refill-delay", pool.DefaultRefillDelay, "refill only this long after the last claim or release (while a quarter is ready; 0: at once)")
	fs.BoolVarP(&a.verbose, "verbose", "v", false, "log refills and DHCP to stderr")
	if err := fs.Parse(args); err != nil {
		return a, usagef("pool start: %s", printable(err.Error()))
	}
	rest := fs.Args()
	if len(rest) != 1 {
		return a, usagef("pool start: expected NAME, got %d argument(s)", len(rest))
	}
	a.cfg.Name = rest[0]
	if err := pool.ValidateName(a.cfg.Name); err != nil {
		return a, usagef("pool start: %v", err)
	}
	if a.cfg.Bridge == "" {
		return a, usagef("pool start: --bridge is required")
	}
	if err := rtnl.ValidateLinkName(a.cfg.Bridge); err != nil {
		return a, usagef("pool start: --bridge %q: %v", a.cfg.Bridge, errors.Unwrap(err))
	}
	if a.cfg.RefillDelay < 0 {
		return a, usagef("pool start: --refill-delay %s: want a duration of 0 or more", a.cfg.RefillDelay)
	}
	if a.cfg.RefillDelay == 0 {
		a.cfg.RefillDelay = -1 // at once (pool.Config's 0 is the default)
	}
	if a.cfg.Workers < 0 {
		return a, usagef("pool start: --workers %d: want at least 1", a.cfg.Workers)
	}
	if a.cfg.Size < 1 {
		return a, usagef("pool start: --size %d: want at least 1", a.cfg.Size)
	}
	if a.cfg.DHCP == (*rng != "") {
		return a, usagef("pool start: need exactly one of --dhcp and --range")
	}
	if *rng != "" {
		r, err := pool.ParseRange(*rng)
		if err != nil {
			return a, usagef("pool start: --%v", err)
		}
		a.cfg.Range = r // a range smaller than --size is pool.Start's error (exit 1)
	}
	if *gw != "" {
		if a.cfg.DHCP {
			return a, usagef("pool start: --gateway goes with --range (DHCP gives its own)")
		}
		g, err := netip.ParseAddr(*gw)
		if err != nil || !g.Is4() {
			return a, usagef("pool start: --gateway %q: not an IPv4 address", *gw)
		}
		if !a.cfg.Range.Prefix().Contains(g) {
			return a, usagef("pool start: --gateway %s is outside %s", g, a.cfg.Range.Prefix())
		}
		a.cfg.Gateway = g
	}
	if *dns != "" {
		for _, s := range strings.Split(*dns, ",") {
			d, err := netip.ParseAddr(s)
			if err != nil {
				return a, usagef("pool start: --dns %q: not an IP address", s)
			}
			a.cfg.DNS = append(a.cfg.DNS, d)
		}
	}
	if a.cfg.IfName != "" {
		if err := rtnl.ValidateLinkName(a.cfg.IfName); err != nil {
			return a, usagef("pool start: --ifname %q: %v", a.cfg.IfName, errors.Unwrap(err))
		}
	}
	return a, nil
}

func runPool(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("pool: missing subcommand (start, status, stop; try nsbox -h)")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "start":
		return runPoolStart(ctx, e, rest)
	case "status", "stop":
		if len(rest) != 1 {
			return usagef("pool %s: expected NAME, got %d argument(s)", sub, len(rest))
		}
		c, err := pool.NewClient(rest[0])
		if err != nil {
			return usagef("pool %s: %v", sub, errors.Unwrap(err))
		}
		if sub == "stop" {
			ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			return c.Stop(ctx)
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if e.json {
			b, err := json.Marshal(st)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(e.stdout, string(b))
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "pool %s: ready %d, in use %d, refilling %d, failures %d\n", st.Name, st.Ready, st.InUse, st.Refilling, st.Failures)
		return err
	}
	return usagef("pool: unknown subcommand %q (start, status, stop)", sub)
}

// poolMinProcs is the least GOMAXPROCS of a pool process. Why: the claim
// server's thread (pool/rawserve.go) needs a P each time accept4 returns;
// with as many Ps as cores (2 here) and both held by refill goroutines, it
// waits until one of them blocks or is preempted (Go preempts after 10 ms),
// which is where bench/pool's 10 ms claims came from. A process that mostly
// waits on the kernel loses nothing by having spare Ps.
const poolMinProcs = 8

// poolGCPercent is a pool process's GOGC (unless GOGC is set). Why: a
// refill and a destruction allocate about 1 MB (netlink, DHCP, lease and
// resolv.conf files) against a live heap of about 4 MB, so at Go's 100 a
// pool collected after every 3 or 4 of them: 170-200 collections in
// bench/pool's 300 alternated rounds. Each marks on as many threads as it
// has idle Ps (8, poolMinProcs), that is on both cores of the VM, and
// in sched_switch traces of the slow `run --pool` starts (over 3x the
// median) the pool's process (collections, refills and destructions) took
// 5 of their 12 CPU-ms, against 0.6 of 2.3 in the others. At 400 it collects 8 times less often, for a
// heap of about 20 MB, and the pool's CPU time fell by about a fifth. The
// p99/p50 of run --pool went from 6.0-7.7 to 3.5-5.2 in six alternated
// pairs of 300 and 500 rounds, but two pairs of 1000 rounds later showed no
// difference (5.5 and 9.3 before, 8.0 and 5.9 after): on the shared VM the
// ratio follows the other tenants' load, as loopback-only run --net's does
// in the same rounds. 1600, or no GOGC and a 64 MiB limit, did no better.
const poolGCPercent = 400

// runPoolStart runs a pool in the foreground until SIGINT/SIGTERM, pool
// stop, or its bridge vanishing (an error: exit 1).
func runPoolStart(ctx context.Context, e *env, args []string) error {
	a, err := parsePoolStart(args)
	if err != nil {
		return err
	}
	if e.netns != "" {
		h, err := openNS(e.netns)
		if err != nil {
			return err
		}
		defer h.Close()
		a.cfg.BridgeNS = h
	}
	if a.verbose {
		a.cfg.Logf = func(format string, args ...any) {
			fmt.Fprintf(e.stderr, "nsbox: "+format+"\n", args...)
		}
	}
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < poolMinProcs {
		runtime.GOMAXPROCS(poolMinProcs)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(poolGCPercent)
	}
	p, err := pool.Start(ctx, a.cfg)
	if err != nil {
		return err
	}
	if a.verbose {
		go func() {
			if p.WaitReady(ctx) == nil {
				fmt.Fprintf(e.stderr, "nsbox: pool %s: %d namespaces ready on %s\n", a.cfg.Name, a.cfg.Size, a.cfg.Bridge)
			}
		}()
	}
	select {
	case <-ctx.Done():
		return p.Close()
	case <-p.Done():
	}
	if err := p.Err(); err != nil {
		return err
	}
	return p.Close()
}
