// Package limits holds the benchmarks of what a sandbox may do (issue 11):
//
//   - BenchmarkSandboxCLI: `nsbox run --sandbox -- /bin/true` against the
//     bubblewrap line of the same posture (`bwrap --unshare-all
//     --die-with-parent --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp
//     --cap-drop ALL --seccomp FD`, FD holding nsbox's compiled default
//     program, so both load a filter of the same size) and against plain
//     `nsbox run -- /bin/true` (named run-plain so that the report takes it
//     as the reference).
//   - BenchmarkCgroupCLI: `run --memory 64m --pids 100` against plain run:
//     the price of a cgroup (made, joined by the child, removed by the
//     watcher) on this machine's hierarchy (v1 here).
//   - BenchmarkSeccompSpawn: nsclone.Run with the default profile against
//     the same spawn without it (both with no_new_privs): the load cost.
//   - BenchmarkSeccompAlternated: the same two, alternated in one loop;
//     added-ms is the median of the rounds' differences.
//   - BenchmarkSeccompLoad: the seccomp(2) call alone, in a forked child.
//   - BenchmarkSeccompCompile: the default profile's lookup against
//     compiling it (what a profile FILE costs).
//
// They need root (BenchmarkSandboxCLI also bwrap):
//
//	go test -run '^$' -bench . -benchtime 200x ./bench/limits
package limits
