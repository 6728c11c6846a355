/*
 * late_ns.c: the helper process of run's fast path that makes the
 * sandbox's network namespace while the rest of the setup goes on
 * (included by run_fast.c; the child's side is nsc_join_late in limits.c).
 *
 * Why: a new network namespace costs about 0.45 ms of kernel work (every
 * pernet subsystem's init), about a quarter of a whole `run --sandbox`.
 * Made by clone(CLONE_NEWNET) it runs inside the clone, in series with
 * everything else. Here a small CLONE_VM helper, cloned right before the
 * child, unshares it on the other CPU while nsbox clones the child and the
 * child builds its view; the child then joins it with setns on the
 * helper's pidfd. With --sandbox the helper brings lo up too (so the
 * child does not wait for the global RTNL lock the ioctl takes). The namespace is the same
 * kind of fresh namespace, owned by the same user namespace, and nothing
 * runs in it before the child: the payload cannot tell the difference.
 *
 * Lifetimes: the helper reports its result on a pipe (ready), then waits
 * for EOF on a second pipe (done) whose write ends are the caller's and
 * the child's; both are closed once the child has joined, exec'd or died,
 * and nsbox reaps the helper right then, so it is never among nsbox's
 * children once the payload runs. It dies with nsbox (PR_SET_PDEATHSIG),
 * and the child sees EOF on ready if it died before reporting.
 */

#include <sys/prctl.h>
#include "nsc_loopback.h"
#include "nsc_syscall.h"

/* nsb_late is one run's helper: the part the child reads (ns), and the
 * helper's own pipe ends. */
struct nsb_late {
	struct nsc_late_ns ns;
	int lo_up; /* bring lo up in the new network namespace */
	pid_t pid; /* the helper; -1: none */
	int ready_w, done_r;
	pid_t parent;
};

static char nsb_late_stack[8192] __attribute__((aligned(16)));

/* nsb_late_close_others closes every fd of the helper but a and b (a < b),
 * so that it never holds a lock, a pipe end or a group of nsbox's. */
static void nsb_late_close_others(int a, int b)
{
	if (a > 0)
		SYS3(SYS_close_range, 0, a - 1, 0);
	if (b > a + 1)
		SYS3(SYS_close_range, a + 1, b - 1, 0);
	SYS3(SYS_close_range, b + 1, ~0U, 0);
}

/* nsb_late_helper runs on nsbox's memory (CLONE_VM) with every signal
 * blocked: raw syscalls only, as the clone child's. */
static int nsb_late_helper(void *arg)
{
	const struct nsb_late *h = arg;
	int v[2] = {0, 0}, lo = h->ready_w < h->done_r ? h->ready_w : h->done_r, hi = h->ready_w ^ h->done_r ^ lo;
	long ret;
	char b;

	SYS2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
	if (SYS0(SYS_getppid) != h->parent)
		return 0; /* nsbox died before the prctl */
	nsb_late_close_others(lo, hi);
	if ((ret = SYS1(SYS_unshare, h->ns.type)) < 0) {
		v[0] = NSC_STAGE_SETNS_PIDFD;
		v[1] = (int)ret;
	} else if (h->lo_up && (ret = nsc_lo_up()) < 0) {
		v[0] = NSC_STAGE_LOOPBACK;
		v[1] = (int)ret;
	}
	SYS3(SYS_write, h->ready_w, v, sizeof v);
	SYS1(SYS_close, h->ready_w);
	do
		ret = SYS3(SYS_read, h->done_r, &b, 1);
	while (ret == -EINTR || ret > 0);
	return 0;
}

/* nsb_late_start clones the helper that unshares type (and brings lo up
 * there with lo_up). -1: no helper (the caller clones with the flags as
 * usual). */
static int nsb_late_start(struct nsb_late *h, unsigned long type, int lo_up)
{
	int rp[2], dp[2], pidfd = -1;
	sigset_t all, old;
	long pid;

	h->pid = -1;
	if (pipe2(rp, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(dp, O_CLOEXEC) < 0) {
		close(rp[0]);
		close(rp[1]);
		return -1;
	}
	h->ns.type = type;
	h->lo_up = lo_up;
	h->ns.ready_fd = rp[0];
	h->ns.done_fd = dp[1];
	h->ready_w = rp[1];
	h->done_r = dp[0];
	h->parent = getpid();
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	/* No exit signal: nsbox reaps it by pid (__WALL), and no SIGCHLD of
	 * it reaches a handler. */
	pid = clone(nsb_late_helper, nsb_late_stack + sizeof nsb_late_stack, CLONE_VM | CLONE_PIDFD, h, &pidfd);
	sigprocmask(SIG_SETMASK, &old, 0);
	close(rp[1]);
	close(dp[0]);
	if (pid < 0) {
		close(rp[0]);
		close(dp[1]);
		return -1;
	}
	h->pid = (pid_t)pid;
	h->ns.pidfd = pidfd;
	return 0;
}

/* nsb_late_release closes nsbox's ends once the child has them (or will
 * never run): the helper exits when the child's are gone too. */
static void nsb_late_release(struct nsb_late *h)
{
	if (h->pid < 0 || h->ns.pidfd < 0)
		return;
	close(h->ns.ready_fd);
	close(h->ns.done_fd);
	close(h->ns.pidfd);
	h->ns.pidfd = -1;
}

/* nsb_late_reap releases and reaps the helper. */
static void nsb_late_reap(struct nsb_late *h)
{
	int st;
	if (h->pid < 0)
		return;
	nsb_late_release(h);
	while (waitpid(h->pid, &st, __WALL) < 0 && errno == EINTR)
		;
	h->pid = -1;
}
