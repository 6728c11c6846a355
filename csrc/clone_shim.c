/*
 * clone_shim.c: spawn a process in new namespaces. The parent entry point
 * nsc_spawn takes a spec that Go built completely, clones the child on a stack
 * alloca'd in its own frame with CLONE_VM (no copy of the caller's page
 * tables) and does not return until the child has exec'd (EOF on a
 * close-on-exec pipe) or reported {stage, errno} on it. The child shares the
 * caller's memory and thread-local state (errno), so it makes raw syscalls
 * only, allocates nothing, takes no lock and leaves with exit_group. With an
 * init, the child is cloned without CLONE_VM (it outlives nsc_spawn) and forks
 * the payload. See README.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <alloca.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clone_shim.h"

/* NSC_API is empty for nsclone; csrc/run_fast.c includes this file with
 * NSC_API static to get a private copy for nsbox run's C fast path. */
#ifndef NSC_API
#define NSC_API
#endif

#define NSC_PROBE_BYTE 0xa5

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

#include "nsc_syscall.h"
#include "nsc_init_loop.h"

/* The kernel's struct sigaction (x86_64 and arm64 share this layout). */
struct nsc_sigaction {
	unsigned long handler, flags, restorer, mask;
};

/* What the child reads; it lives in nsc_spawn's frame. */
struct nsc_child {
	const struct nsc_spec *s;
	int errfd;            /* write end of the error pipe */
	int gofd;             /* read end of the go-ahead pipe (-1 without a hook) */
	unsigned long oldmask; /* the calling thread's signal mask */
	int placed;           /* clone3 put it in its cgroup already */
};

/* nsc_fail reports {stage, errno, index} on the error pipe and exits. */
static void __attribute__((noreturn)) nsc_fail(int errfd, int stage, long ret, int index)
{
	int rep[3] = {stage, (int)-ret, index};
	SYS3(SYS_write, errfd, rep, sizeof rep);
	for (;;)
		SYS1(SYS_exit_group, 127);
}

#include "view.c"
#include "limits.c"

/* nsc_close_strays closes every fd except the ones the child needs, so that
 * pipe ends of concurrent spawns never stay open in this child. */
static void nsc_close_strays(const struct nsc_child *c)
{
	const struct nsc_spec *s = c->s;
	long lo = 0;
	for (;;) {
		long next = -1;
		for (int i = 0; i < s->nkeep + 2; i++) {
			long k = i < s->nkeep ? s->keep[i] : (i == s->nkeep ? c->errfd : c->gofd);
			if (k >= lo && (next < 0 || k < next))
				next = k;
		}
		if (next < 0) {
			SYS3(SYS_close_range, lo, ~0U, 0);
			return;
		}
		if (next > lo)
			SYS3(SYS_close_range, lo, next - 1, 0);
		lo = next + 1;
	}
}

/* nsc_exec_init execs nsinit from its memfd: the error pipe stays open
 * across that exec (nsinit closes it by exec'ing the payload) and signals
 * stay blocked (exec resets the handlers; nsinit restores the mask for the
 * payload). */
static void __attribute__((noreturn)) nsc_exec_init(const struct nsc_child *c, int errfd, int init_fd)
{
	const struct nsc_spec *s = c->s;
	char *p = s->init_scratch, tmp[24];
	int i = 0;
	long ret;
	unsigned long v;

	if ((ret = SYS3(SYS_fcntl, errfd, F_SETFD, 0)) < 0)
		nsc_fail(errfd, NSC_STAGE_FDS, ret, errfd);
	v = (unsigned long)errfd;
	do
		tmp[i++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (i > 0)
		*p++ = tmp[--i];
	*p = 0;
	p = s->init_scratch + 24;
	v = c->oldmask;
	do
		tmp[i++] = "0123456789abcdef"[v % 16];
	while ((v /= 16) > 0);
	while (i > 0)
		*p++ = tmp[--i];
	*p = 0;
	nsc_lockdown(s, errfd);
	ret = nsc_sys(SYS_execveat, init_fd, (long)"", (long)s->init_argv, (long)s->envp, AT_EMPTY_PATH);
	nsc_fail(errfd, NSC_STAGE_EXEC, ret, 1);
}

/* nsc_caller_gone tells whether the caller has died: it holds the read end
 * of the error pipe until the exec, so the write end polls POLLERR once it
 * is gone. getppid() cannot tell: in a new PID namespace it is 0 whether or
 * not the caller lives. */
static int nsc_caller_gone(int errfd)
{
	struct pollfd p = {errfd, POLLOUT, 0};
	struct timespec zero = {0, 0};
	long ret = SYS5(SYS_ppoll, &p, 1, &zero, 0, 0);
	return ret < 0 || (p.revents & (POLLERR | POLLHUP));
}

/* nsc_payload drops ids, arranges the fds, resets signals and execs (or
 * execs nsinit, which forks the payload). */
static void __attribute__((noreturn)) nsc_payload(const struct nsc_child *c, int errfd)
{
	const struct nsc_spec *s = c->s;
	long ret;
	int n = s->nfds, base = n, init_fd = s->init ? s->init_fd : -1;

	nsc_set_rlimits(s, errfd);
	if (!s->late_ns)
		nsc_caps_bound(s, errfd);
	if (s->set_groups && (ret = SYS2(SYS_setgroups, s->ngroups, s->groups)) < 0)
		nsc_fail(errfd, NSC_STAGE_SETGROUPS, ret, 0);
	if (s->set_gid && (ret = SYS1(SYS_setgid, s->gid)) < 0)
		nsc_fail(errfd, NSC_STAGE_SETGID, ret, 0);
	if (s->set_uid && (ret = SYS1(SYS_setuid, s->uid)) < 0)
		nsc_fail(errfd, NSC_STAGE_SETUID, ret, 0);
	nsc_caps_set(s, errfd);
	if (s->dir && (ret = SYS1(SYS_chdir, s->dir)) < 0) {
		if (!s->dir_fallback || ret != -ENOENT)
			nsc_fail(errfd, NSC_STAGE_CHDIR, ret, 0);
		if ((ret = SYS1(SYS_chdir, "/")) < 0)
			nsc_fail(errfd, NSC_STAGE_CHDIR_ROOT, ret, 0);
	}

	/* Fds: sources below n could be clobbered by a dup3 onto them, so they
	 * (and the error pipe) move to base+i first; base is above every fd
	 * still open, since nsc_close_strays closed all the others. */
	for (int i = 0; i < s->nkeep; i++)
		if (s->keep[i] >= base)
			base = s->keep[i] + 1;
	if (errfd >= base)
		base = errfd + 1;
	if (errfd < n) {
		if ((ret = SYS3(SYS_dup3, errfd, base + n, O_CLOEXEC)) < 0)
			nsc_fail(errfd, NSC_STAGE_FDS, ret, errfd);
		errfd = base + n;
	}
	if (init_fd >= 0 && init_fd < n) {
		if ((ret = SYS3(SYS_dup3, init_fd, base + n + 1, O_CLOEXEC)) < 0)
			nsc_fail(errfd, NSC_STAGE_FDS, ret, init_fd);
		init_fd = base + n + 1;
	}
	for (int i = 0; i < n; i++) {
		int f = s->fds[i];
		if (f >= 0 && f < n && f != i && (ret = SYS3(SYS_dup3, f, base + i, O_CLOEXEC)) < 0)
			nsc_fail(errfd, NSC_STAGE_FDS, ret, i);
	}
	for (int i = 0; i < n; i++) {
		int f = s->fds[i];
		if (f < 0) {
			SYS1(SYS_close, i); /* already closed is fine */
			ret = 0;
		} else if (f == i)
			ret = SYS3(SYS_fcntl, i, F_SETFD, 0);
		else
			ret = SYS3(SYS_dup3, f < n ? base + i : f, i, 0);
		if (ret < 0)
			nsc_fail(errfd, NSC_STAGE_FDS, ret, i);
	}

	/* After the id drop, which would clear it. The check after it closes
	 * the window in which the caller died before the prctl. */
	if (s->parent_death_sig) {
		if ((ret = SYS2(SYS_prctl, PR_SET_PDEATHSIG, s->parent_death_sig)) < 0)
			nsc_fail(errfd, NSC_STAGE_SIGNALS, ret, 0);
		if (nsc_caller_gone(errfd))
			nsc_fail(errfd, NSC_STAGE_SIGNALS, -ESRCH, 0);
	}

	if (init_fd >= 0)
		nsc_exec_init(c, errfd, init_fd);

	/* Handled signals back to default, then the caller's mask. */
	for (int sig = 1; sig <= 64; sig++) {
		struct nsc_sigaction old, dfl = {0, 0, 0, 0};
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (SYS4(SYS_rt_sigaction, sig, 0, &old, 8) < 0)
			continue;
		if (old.handler != (unsigned long)SIG_DFL && old.handler != (unsigned long)SIG_IGN &&
		    (ret = SYS4(SYS_rt_sigaction, sig, &dfl, 0, 8)) < 0)
			nsc_fail(errfd, NSC_STAGE_SIGNALS, ret, sig);
	}
	if ((ret = SYS4(SYS_rt_sigprocmask, SIG_SETMASK, &c->oldmask, 0, 8)) < 0)
		nsc_fail(errfd, NSC_STAGE_SIGNALS, ret, 0);

	nsc_lockdown(s, errfd);
	ret = SYS3(SYS_execve, s->path, s->argv, s->envp);
	nsc_fail(errfd, NSC_STAGE_EXEC, ret, 0);
}

/* nsc_init is PID 1 (or a subreaper) on a copy of the caller's memory (no
 * CLONE_VM): it closes every fd and runs the loop it shares with nsinit. */
static void __attribute__((noreturn)) nsc_init(int payload)
{
	SYS3(SYS_close_range, 0, ~0U, 0);
	nsc_init_loop(payload);
}

/* nsc_mount_proc mounts a fresh /proc. Unless / was just made rprivate,
 * the /proc mount point is made private first (as util-linux unshare does):
 * a mount over a shared /proc would propagate to its peers, and the host's
 * /proc would then show the sandbox's dead PID namespace once it ended. */
static void nsc_mount_proc(int errfd, unsigned long propagation)
{
	long ret;
	if (propagation != (MS_REC | MS_PRIVATE) &&
	    (ret = SYS5(SYS_mount, "none", "/proc", 0, MS_REC | MS_PRIVATE, 0)) < 0)
		nsc_fail(errfd, NSC_STAGE_PROPAGATION, ret, 1);
	if ((ret = SYS5(SYS_mount, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0)) < 0)
		nsc_fail(errfd, NSC_STAGE_MOUNT_PROC, ret, 0);
}

static int nsc_child(void *arg)
{
	const struct nsc_child *c = arg;
	const struct nsc_spec *s = c->s;
	int errfd = c->errfd;
	long ret;

	nsc_close_strays(c);
	nsc_join_cgroups(s, errfd, c->placed);
	if (c->gofd >= 0) {
		char b = 0;
		do
			ret = SYS3(SYS_read, c->gofd, &b, 1);
		while (ret == -EINTR);
		if (ret != 1 || b != 'G')
			nsc_fail(errfd, NSC_STAGE_SYNC, ret < 0 ? ret : -ECANCELED, 0);
		SYS1(SYS_close, c->gofd);
	}
	if (s->join_pidfd_ns) {
		if ((ret = SYS2(SYS_setns, s->join_pidfd, s->join_pidfd_ns)) < 0)
			nsc_fail(errfd, NSC_STAGE_SETNS_PIDFD, ret, 0);
		SYS1(SYS_close, s->join_pidfd);
	}
	for (int i = 0; i < s->njoin; i++) {
		if ((ret = SYS2(SYS_setns, s->join_fd[i], s->join_type[i])) < 0)
			nsc_fail(errfd, NSC_STAGE_SETNS, ret, i);
		SYS1(SYS_close, s->join_fd[i]);
	}
	if ((s->enter & NSC_ENTER_ROOT) &&
	    ((ret = SYS1(SYS_fchdir, s->enter_root_fd)) < 0 || (ret = SYS1(SYS_chroot, ".")) < 0))
		nsc_fail(errfd, NSC_STAGE_ENTER_ROOT, ret, 0);
	if ((s->enter & NSC_ENTER_DIR) && (ret = SYS1(SYS_fchdir, s->enter_dir_fd)) < 0)
		nsc_fail(errfd, NSC_STAGE_ENTER_DIR, ret, 0);
	if (s->enter & NSC_ENTER_ROOT)
		SYS1(SYS_close, s->enter_root_fd);
	if (s->enter & NSC_ENTER_DIR)
		SYS1(SYS_close, s->enter_dir_fd);
	if (s->propagation &&
	    (ret = SYS5(SYS_mount, "none", "/", 0, s->propagation, 0)) < 0)
		nsc_fail(errfd, NSC_STAGE_PROPAGATION, ret, 0);
	if (s->view)
		nsc_view(s, errfd);
	if (s->mount_proc)
		nsc_mount_proc(errfd, s->propagation);
	for (int i = 0; i < s->nmounts; i++) {
		const struct nsc_mount *m = &s->mounts[i];
		if ((ret = SYS5(SYS_mount, m->source, m->target, m->fstype, m->flags, m->data)) < 0)
			nsc_fail(errfd, NSC_STAGE_MOUNT, ret, i);
	}
	if (s->hostname && (ret = SYS2(SYS_sethostname, s->hostname, s->hostname_len)) < 0)
		nsc_fail(errfd, NSC_STAGE_HOSTNAME, ret, 0);
	/* With a helper the child usually waits for it here: the bounding
	 * set (one prctl and one new cred per capability) is dropped first,
	 * off the run's longest branch. It takes no effective capability
	 * away, so the joins after it work as before. */
	if (s->late_ns)
		nsc_caps_bound(s, errfd);
	nsc_join_late(s, errfd);
	nsc_loopback_up(s, errfd);
	if (!s->init || s->init_fd >= 0)
		nsc_payload(c, errfd);

	SYS2(SYS_prctl, PR_SET_NAME, "nsbox-init");
	if (!(s->ns_flags & CLONE_NEWPID))
		SYS2(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1);
	ret = SYS5(SYS_clone, SIGCHLD, 0, 0, 0, 0); /* fork: no CLONE_VM, same stack copied */
	if (ret < 0)
		nsc_fail(errfd, NSC_STAGE_FORK, ret, 0);
	if (ret == 0) {
		if (s->pdeathsig)
			SYS2(SYS_prctl, PR_SET_PDEATHSIG, s->pdeathsig);
		nsc_payload(c, errfd);
	}
	nsc_init((int)ret);
}

/* nsc_pipe makes a close-on-exec pipe whose ends are both above 2: a caller
 * started with stdio closed would otherwise get 0, 1 or 2, which the child
 * hands to the payload as its stdio (the payload's output would then read as
 * a failure report). */
static int nsc_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		if (p[i] > 2)
			continue;
		int high = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
		if (high < 0) {
			int e = errno;
			close(p[0]);
			close(p[1]);
			errno = e;
			return -1;
		}
		close(p[i]);
		p[i] = high;
	}
	return 0;
}

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* struct clone_args of clone3(2), version 2 (with cgroup). */
struct nsc_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

/* nsc_clone3 is clone3(a) whose child runs fn(arg) on a->stack and exits
 * with its result, as glibc's clone() does for clone(2) (libc has no clone3
 * wrapper). The child starts on the new stack with nothing of the caller's
 * frame, so it jumps to fn in the same asm statement. Returns the child's
 * pid or -errno; x86_64 only (elsewhere -ENOSYS, and the caller clones). */
static long nsc_clone3(struct nsc_clone_args *a, int (*fn)(void *), void *arg)
{
#if defined(__x86_64__)
	long ret;
	register long r12 __asm__("r12") = (long)fn;
	register long r13 __asm__("r13") = (long)arg;
	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t" /* the outermost frame */
			 "mov %%r13, %%rdi\n\t"
			 "call *%%r12\n\t"
			 "mov %%eax, %%edi\n\t"
			 "mov $231, %%eax\n\t" /* exit_group */
			 "syscall\n\t"
			 "hlt\n\t"
			 "1:\n\t"
			 : "=a"(ret)
			 : "a"((long)SYS_clone3), "D"(a), "S"(sizeof *a), "r"(r12), "r"(r13)
			 : "rcx", "r11", "memory");
	return ret;
#else
	(void)a;
	(void)fn;
	(void)arg;
	return -ENOSYS;
#endif
}

static int nsc_spawn_impl(const struct nsc_spec *s, struct nsc_result *r, long *probe)
{
	int errp[2], gop[2] = {-1, -1}, pidfd = -1, rep[3] = {0, 0, 0}, hook_failed = 0;
	unsigned long all = ~0UL;
	struct nsc_child c;
	char *stack, *top;
	unsigned long flags;
	long pid, n = 0;

	memset(r, 0, sizeof *r);
	r->pidfd = -1;
	if (nsc_pipe(errp) < 0) {
		r->stage = NSC_STAGE_PIPE;
		r->err = errno;
		return r->stage;
	}
	if (s->hook && nsc_pipe(gop) < 0) {
		r->stage = NSC_STAGE_PIPE;
		r->err = errno;
		close(errp[0]);
		close(errp[1]);
		return r->stage;
	}
	c.s = s;
	c.errfd = errp[1];
	c.gofd = gop[0];
	stack = alloca(NSC_STACK_SIZE);
	if (probe)
		memset(stack, NSC_PROBE_BYTE, NSC_STACK_SIZE);
	top = (char *)(((uintptr_t)stack + NSC_STACK_SIZE) & ~(uintptr_t)15);

	SYS4(SYS_rt_sigprocmask, SIG_SETMASK, &all, &c.oldmask, 8);
	flags = s->ns_flags | CLONE_PIDFD | (s->init && s->init_fd < 0 ? 0 : CLONE_VM);
	pid = -ENOSYS;
	c.placed = 0;
	if (s->lim.into_cgroup) {
		/* The child reads c.placed: set before it exists. */
		struct nsc_clone_args a = {.flags = flags | CLONE_INTO_CGROUP, .pidfd = (uintptr_t)&pidfd,
					   .exit_signal = SIGCHLD, .stack = (uintptr_t)stack,
					   .stack_size = (uintptr_t)(top - stack), .cgroup = (uint64_t)s->lim.cgroup_dirfd};
		c.placed = 1;
		pid = nsc_clone3(&a, nsc_child, &c);
		n = -pid;
	}
	if (pid == -ENOSYS || pid == -E2BIG || pid == -EINVAL) {
		c.placed = 0;
		pid = clone(nsc_child, top, (int)(flags | SIGCHLD), &c, &pidfd);
		n = errno;
	}
	r->placed = pid > 0 && c.placed;
	SYS4(SYS_rt_sigprocmask, SIG_SETMASK, &c.oldmask, 0, 8);
	close(errp[1]);
	if (gop[0] >= 0)
		close(gop[0]);
	if (pid < 0) {
		close(errp[0]);
		if (gop[1] >= 0)
			close(gop[1]);
		r->stage = NSC_STAGE_CLONE;
		r->err = (int)n;
		return r->stage;
	}
	if (s->hook) {
		if (s->hook(s->hook_ctx, (int)pid) == 0) {
			while (write(gop[1], "G", 1) < 0 && errno == EINTR)
				;
		} else {
			hook_failed = 1;
			kill((pid_t)pid, SIGKILL);
		}
		close(gop[1]);
	}
	do
		n = read(errp[0], rep, sizeof rep);
	while (n < 0 && errno == EINTR);
	close(errp[0]);
	if (probe) {
		long i = 0;
		while (i < NSC_STACK_SIZE && (unsigned char)stack[i] == NSC_PROBE_BYTE)
			i++;
		*probe = (top - stack) - i;
	}
	if (n == 0 && !hook_failed) {
		r->pid = (int)pid;
		r->pidfd = pidfd;
		return NSC_OK;
	}
	if (hook_failed) {
		r->stage = NSC_STAGE_HOOK;
	} else if (n == (long)sizeof rep) {
		r->stage = rep[0];
		r->err = rep[1];
		r->index = rep[2];
	} else {
		r->stage = NSC_STAGE_SYNC;
		r->err = n < 0 ? errno : EPROTO;
	}
	{
		int st;
		while (waitpid((pid_t)pid, &st, __WALL) < 0 && errno == EINTR)
			;
	}
	if (pidfd >= 0)
		close(pidfd);
	return r->stage;
}

NSC_API int nsc_spawn(const struct nsc_spec *s, struct nsc_result *r)
{
	return nsc_spawn_impl(s, r, 0);
}

NSC_API long nsc_stack_probe(const struct nsc_spec *s, struct nsc_result *r)
{
	long used = -1;
	nsc_spawn_impl(s, r, &used);
	return used;
}
