// Package sandbox benchmarks networked sandboxes (`nsbox run --net --bridge`)
// against the same job done by a shell script with unshare, ip and udhcpc,
// measured side by side in one run:
//
//   - Storm: N sandboxes started at once on one bridge (N=200 with
//     NSBOX_BENCH_FULL=1, 8 otherwise), each leased by DHCP from nsbox's
//     embedded server and running /bin/true in new IPC, PID, mount and
//     network namespaces as PID 1 (no init, as under the peer's `unshare
//     --fork --pid`); the time until all are done. Two nsbox variants:
//     one `nsbox run` process per sandbox (peak memory: the sum of their
//     maximum RSS, an upper bound of what they held at once), and one Go
//     program starting all of them through nsclone and nsnet (peak memory:
//     its maximum RSS).
//   - StaticStart: spawn to the payload's first instruction of one sandbox
//     with a static address, against a plain `nsbox run --net` of the same
//     payload.
//
// Everything runs inside namespaces the benchmark makes (a lab namespace
// holds the bridge and the server), on 10.80.0.0/22. Needs root.
package sandbox
