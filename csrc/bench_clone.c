/*
 * bench_clone.c: the walkthrough's spawn made safe, as a raw C loop for the
 * spawn benchmarks (bench/spawn builds it with gcc). Each iteration clones a
 * child into new IPC, PID and mount namespaces as the walkthrough does (no
 * CLONE_VM, so the page tables are copied; but no CLONE_FILES), makes the
 * mount tree private, mounts /proc, execs /bin/true, and waits for it; every
 * call is checked.
 *
 * bench_clone_loop(n) runs n spawns and returns their total nanoseconds, or
 * -1. bench/spawn calls it through cgo inside the Go benchmark process (so the
 * clone copies that process's page tables, big heap included, as the
 * walkthrough's would). Built alone it is a program:
 *
 * usage: bench_clone N [HEAP_MIB]   prints the total nanoseconds of N spawns
 * after touching a heap of HEAP_MIB MiB.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STACK_SIZE (64 * 1024)

static int callee(void *arg)
{
	(void)arg;
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		_exit(125);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		_exit(125);
	execl("/bin/true", "true", (char *)NULL);
	_exit(127);
}

static __attribute__((unused)) long long bench_clone_loop(long n)
{
	struct timespec t0, t1;
	char *stack = alloca(STACK_SIZE);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		int st;
		pid_t pid = clone(callee, stack + STACK_SIZE, SIGCHLD | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNS, NULL);
		if (pid < 0)
			return -1;
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				return -1;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
}

#ifndef BENCH_CLONE_NO_MAIN
int main(int argc, char **argv)
{
	long n, heap_mib = 0;
	long long ns;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_clone N [HEAP_MIB]\n");
		return 2;
	}
	n = atol(argv[1]);
	if (argc > 2)
		heap_mib = atol(argv[2]);
	if (heap_mib > 0) {
		size_t sz = (size_t)heap_mib << 20;
		char *heap = malloc(sz);
		if (!heap) {
			perror("malloc");
			return 1;
		}
		for (size_t i = 0; i < sz; i += 4096)
			heap[i] = 1;
	}
	ns = bench_clone_loop(n);
	if (ns < 0) {
		perror("spawn");
		return 1;
	}
	printf("%lld\n", ns);
	return 0;
}
#endif
