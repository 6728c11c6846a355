// Package spawn holds the spawn benchmarks of nsbox: nsclone.Run of /bin/true
// in new IPC, PID and mount namespaces with /proc, side by side with a raw C
// loop of the walkthrough's clone made safe (csrc/bench_clone.c, built here
// with gcc), os/exec with SysProcAttr.Cloneflags, and exec of unshare; the
// same with a big touched heap in the caller; and bin/nsbox run against
// unshare --fork --ipc --pid --mount --mount-proc as whole processes.
//
// They need root. Under `make test` (-benchtime=1x) they use a 64 MiB heap;
// NSBOX_BENCH_FULL=1 (make bench) uses 2 GiB.
//
//	go test -run '^$' -bench . -benchtime 200x ./bench/spawn
package spawn
