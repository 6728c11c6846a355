/*
 * cgroup_watch.c: the watcher that removes a sandbox's cgroups once its
 * caller is done with them or dies. nsclone creates the groups, then starts
 * the watcher with nsc_cg_watch: a process cloned with CLONE_VM on a stack the
 * caller allocated (no copy of the caller's page tables) that blocks on a
 * pipe whose write end only the caller holds. EOF comes when the caller
 * closes it after the payload ended, or when the caller dies, even of
 * SIGKILL; the watcher then kills what is left in the groups and removes
 * them. So no cgroup outlives the process that made it. The watcher makes raw
 * syscalls only (it shares the caller's memory and errno) and keeps every
 * signal blocked, so a Ctrl-C to the process group cannot stop it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

#include "cgroup_watch.h"
#include "nsc_syscall.h"

/* nsc_cg_write writes the string v to the file at path. */
static long nsc_cg_write(const char *path, const char *v)
{
	long fd = SYS3(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC), ret, n = 0;
	if (fd < 0)
		return fd;
	while (v[n])
		n++;
	ret = SYS3(SYS_write, fd, v, n);
	SYS1(SYS_close, fd);
	return ret;
}

/* nsc_cg_kill_listed sends SIGKILL to every pid in the cgroup.procs file at
 * path and returns how many it found. */
static int nsc_cg_kill_listed(const char *path)
{
	char buf[4096];
	long fd = SYS3(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC), n;
	int found = 0;
	long pid = 0;
	if (fd < 0)
		return 0;
	while ((n = SYS3(SYS_read, fd, buf, sizeof buf)) > 0) {
		for (long i = 0; i < n; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				pid = pid * 10 + (buf[i] - '0');
			} else if (pid > 0) {
				SYS2(SYS_kill, pid, SIGKILL);
				found++;
				pid = 0;
			}
		}
	}
	if (pid > 0) {
		SYS2(SYS_kill, pid, SIGKILL);
		found++;
	}
	SYS1(SYS_close, fd);
	return found;
}

static void nsc_cg_nap(void)
{
	struct timespec ts = {0, 1000000}; /* 1 ms */
	SYS2(SYS_nanosleep, &ts, 0);
}

/* nsc_cg_cleanup empties the groups (cgroup.kill on v2; on v1 the freezer
 * stops every task, each gets SIGKILL, then the thaw lets them die, so a fork
 * bomb cannot outrun the loop) and removes them, deepest first. Every loop
 * is bounded (about 5 s in all). */
void nsc_cg_cleanup(const struct nsc_cg_watch *w)
{
	if (w->kill)
		nsc_cg_write(w->kill, "1");
	if (w->freeze)
		nsc_cg_write(w->freeze, "FROZEN");
	for (int round = 0; round < 2000; round++) {
		int found = 0;
		for (int i = 0; i < w->n; i++)
			found += nsc_cg_kill_listed(w->procs[i]);
		if (!found)
			break;
		if (w->freeze && round == 0)
			nsc_cg_write(w->freeze, "THAWED");
		nsc_cg_nap();
	}
	if (w->freeze)
		nsc_cg_write(w->freeze, "THAWED");
	for (int i = 0; i < w->n; i++)
		for (int tries = 0; tries < 3000; tries++) {
			long ret = SYS1(SYS_rmdir, w->dirs[i]);
			if (ret == 0 || ret == -ENOENT)
				break;
			nsc_cg_kill_listed(w->procs[i]);
			nsc_cg_nap();
		}
	/* The default parent goes with the last group in it; while another
	 * sandbox's group is there rmdir says EBUSY, and that is fine. */
	for (int i = 0; i < w->np; i++)
		(void)SYS1(SYS_rmdir, w->parents[i]);
}

static int nsc_cg_watcher(void *arg)
{
	const struct nsc_cg_watch *w = arg;
	char b;
	long ret;
	/* Only the pipe's read end stays open: the watcher must not keep
	 * other spawns' pipes (or the caller's files) alive. */
	if (w->rd > 0)
		SYS3(SYS_close_range, 0, w->rd - 1, 0);
	SYS3(SYS_close_range, w->rd + 1, ~0U, 0);
	do
		ret = SYS3(SYS_read, w->rd, &b, 1);
	while (ret == -EINTR || ret > 0);
	nsc_cg_cleanup(w);
	SYS1(SYS_exit_group, 0);
	return 0; /* not reached */
}

int nsc_cg_watch(const struct nsc_cg_watch *w, void *stack, long stack_len)
{
	unsigned long all = ~0UL, old;
	char *top = (char *)(((uintptr_t)stack + stack_len) & ~(uintptr_t)15);
	int pid, err;
	/* The watcher inherits the blocked mask and keeps it. */
	SYS4(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);
	pid = clone(nsc_cg_watcher, top, CLONE_VM | SIGCHLD, (void *)w);
	err = errno;
	SYS4(SYS_rt_sigprocmask, SIG_SETMASK, &old, 0, 8);
	return pid < 0 ? -err : pid;
}
