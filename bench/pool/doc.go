// Package pool benchmarks warm pools (`nsbox run --pool`) side by side with
// the other ways to start a networked sandbox, in one run:
//
//   - NetStart/seq and NetStart/concurrent: spawn to the payload's first
//     successful TCP connect to the gateway (testdata/connect.c, static) for
//     `run --pool` of a DHCP pool (nsbox-pool) against `run --net --bridge
//     BR --dhcp` (bridge-dhcp), the static `--addr` of the C fast path
//     (bridge-static) and `run --net` with loopback only, where the payload
//     only writes its byte (net-loopback, on the C fast path, and
//     net-loopback-go-path, on the Go path that run --pool takes). seq runs
//     1000 sandboxes one at a time (50 without NSBOX_BENCH_FULL=1) from a
//     pool of 16, concurrent 100 at once (8) from a pool of as many; both
//     report the p50 and p99 of every start as ms-p50 and ms-p99. Static
//     addresses rotate over 250, so that none comes back within the
//     gateway's ARP locktime (1 s) with a new MAC.
//   - PoolStorm: 200 sandboxes (8 without NSBOX_BENCH_FULL=1) from a warm
//     pool of as many, each running a payload in new IPC, PID and mount
//     namespaces, through the CLI (nsbox-pool) and through the library in
//     the benchmark's process (nsbox-pool-lib: pool.Client and nsclone),
//     against the shell script of bench/internal/shellpeer (unshare, ip, udhcpc),
//     until all are done; with the CPU time each spent in the window. The
//     payload is /bin/true (bin-true), then the static testdata/true.c
//     (static): /bin/true's dynamic start alone costs this VM about 1.2 ms
//     of CPU, most of a pool sandbox's cost.
//   - Publish: a static sandbox with `--publish 8080:80` (its bridge with
//     and without an nsbox table already) against the same
//     without it on the C fast path (as a user runs it) and on the Go path,
//     alternated; to the first byte and to the process's end; 300 rounds
//     (50).
//
// Everything runs in namespaces the benchmark makes (10.81.0.0/22). Needs
// root, gcc (for the payload, built static with musl-gcc where it is installed, see payloadCC), busybox and unshare.
package pool
