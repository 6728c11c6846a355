// Package cpupin gives the process back the CPU affinity that cmd/nsbox's
// ELF constructor narrowed to one CPU for a one-shot read-only command
// (csrc/run_fast.c, nsb_pin_one_cpu): the Go runtime sizes GOMAXPROCS from
// the affinity when it starts, so such a command runs with one P and
// starts no thread per goroutine the runtime and the libraries create at
// init. The affinity comes back in this package's init, which runs among
// the first (it needs only runtime/cgo and syscall), so that the rest of
// the start and the command itself may run on any CPU again.
//
// The saved mask lives here, in C, and the constructor writes it; a
// process whose constructor pinned nothing restores nothing. The affinity
// is per thread: every thread of /proc/self/task gets it back.
//
// This file has no cgo, so that a CGO_ENABLED=0 build of cmd/nsbox still
// reaches cmd/nsbox's own message that nsbox needs cgo.
package cpupin
