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
package cpupin

/*
#define _GNU_SOURCE
#include <dirent.h>
#include <sched.h>
#include <stdlib.h>

cpu_set_t nsb_pinned_cpus;   // the affinity before the pin
int nsb_pinned_cpus_saved;   // 1: the constructor pinned the process

// nsb_unpin_cpus sets every thread's affinity back to nsb_pinned_cpus:
// the affinity is per thread, and the runtime's threads were made while
// the process was pinned. A thread the runtime starts while this runs may
// keep the pin: slower, never wrong (as any failure here).
static void nsb_unpin_cpus(void)
{
	struct dirent *e;
	DIR *d;

	if (!nsb_pinned_cpus_saved)
		return;
	nsb_pinned_cpus_saved = 0;
	if (!(d = opendir("/proc/self/task"))) {
		(void)sched_setaffinity(0, sizeof nsb_pinned_cpus, &nsb_pinned_cpus);
		return;
	}
	while ((e = readdir(d)))
		if (e->d_name[0] >= '1' && e->d_name[0] <= '9')
			(void)sched_setaffinity(atoi(e->d_name), sizeof nsb_pinned_cpus, &nsb_pinned_cpus);
	closedir(d);
}
*/
import "C"

func init() { C.nsb_unpin_cpus() }
