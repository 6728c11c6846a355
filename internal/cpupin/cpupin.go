// The cgo half of package cpupin (see doc.go).

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
