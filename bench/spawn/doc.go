// Package spawn holds the spawn benchmarks of nsbox: nsclone.Run of /bin/true
// in new IPC, PID and mount namespaces with /proc, side by side with a raw C
// loop of the walkthrough's clone made safe (csrc/bench_clone.c, through cgo
// in this process, so that its clone copies this process's page tables as
// the walkthrough's would), os/exec with SysProcAttr.Cloneflags (no /proc
// mount: os/exec cannot), and exec of unshare; the same with a big touched
// heap in the caller; and bin/nsbox run (the C fast path, and the Go path with
// NSBOX_NO_FASTPATH=1) against unshare --fork --ipc --pid --mount --mount-proc
// as whole processes. The machine's noise is large: run many short counts and
// compare medians (cmd/nsbox-bench does).
//
// They need root. Under `make test` (-benchtime=1x) they use a 64 MiB heap;
// NSBOX_BENCH_FULL=1 (make bench) uses 2 GiB.
//
//	go test -run '^$' -bench . -benchtime 200x ./bench/spawn
package spawn
