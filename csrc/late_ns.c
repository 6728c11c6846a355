/*
 * late_ns.c: run's early helper, the one process of run's fast path that
 * makes the sandbox's network namespace and its v1 pids group while the
 * rest of the setup goes on, and then watches the group (included by
 * run_fast.c; the child's side is nsc_join_late in limits.c).
 *
 * Why: a new network namespace costs about 0.45 ms of kernel work (every
 * pernet subsystem's init), and a v1 group about 0.2 ms more; inside the
 * clone, or before it, they run in series with everything else. Here a
 * small CLONE_VM helper, cloned right after the flags are parsed, unshares
 * the namespace, then makes the group (mkdir, pids.max, its tasks file
 * opened), one after the other (side by side the group's creation took 2-3
 * times as long), and with --sandbox brings lo up there after reporting
 * (so the child neither waits for the global RTNL lock the ioctl takes nor
 * for the step itself: it reads that result right before its exec, once
 * its ids, capabilities and filter are set), while nsbox reads
 * /etc, makes the init's memfd and clones the child, and the child builds
 * its view. The child then joins the group (pidfd_getfd of the helper's
 * tasks fd) and the namespace (setns on the helper's pidfd). The namespace
 * is the same kind of fresh namespace, owned by the same user namespace,
 * and nothing runs in it before the child: the payload cannot tell the
 * difference.
 *
 * Lifetimes: the helper reports its result on a pipe (ready), then reads
 * nsbox's control socket, whose other end only nsbox holds: 'R' once the
 * child has joined and exec'd (or died), and then the helper goes back to
 * nsbox's network namespace (setns on the fd it kept), so nothing outside
 * the sandbox holds the new one once the payload runs, and says so with
 * 'L' on ready. Without a group it exits there and nsbox reaps it. With a
 * group it is the group's watcher (instead of a second process): 'R'
 * carries a pidfd of the child, and the helper removes the group (after
 * killing what is left in it, and with the default parent when empty) as
 * soon as the child ends, on the same exit that wakes nsbox's wait, or on
 * EOF when nsbox failed or died (even of SIGKILL). nsbox closes its end
 * once the payload ended and reaps the helper, so the group is gone and
 * no helper outlives nsbox (a helper left to init would stay a zombie
 * under a PID 1 that never reaps, one a run). Removing the group on
 * nsbox's side and not waiting for the helper was 0.08-0.1 ms faster a
 * run here (two wake-ups of a halted vCPU; alternated runs, 1000 rounds),
 * but left that zombie; with the helper's rmdir first (no read of
 * cgroup.procs) the difference is 0.02-0.05 ms. It keeps every signal blocked and holds only its pipe
 * ends, never nsbox's stdio or another spawn's pipe. */

#include <poll.h>
#include "nsc_loopback.h"
#include "nsc_syscall.h"

/* nsb_late is one run's helper: the part the child reads (ns), the group
 * it makes (cg, NULL: none), and the pipe ends. */
struct nsb_late {
	struct nsc_late_ns ns;
	int want_cg;     /* the helper waits for 'P' (then cg) or 'N' after the namespace */
	struct nsb_cg *cg; /* set before 'P' */
	pid_t pid;       /* the helper; -1: none */
	int ready_w;     /* the helper's */
	int ctl_r;       /* the helper's end of nsbox's control socket */
	int ctl_w;       /* nsbox's; -1 once closed */
	int made;        /* the helper made the group (nsbox may remove it) */
	int waited;      /* nsbox has the helper's 'L' */
};

static char nsb_late_stack[16384] __attribute__((aligned(16)));

/* nsb_late_close_others closes every fd of the helper but the n sorted
 * fds in keep, so that it never holds a lock, a pipe end or a group of
 * nsbox's (nor the caller's stdio, which would keep a reader of nsbox's
 * output waiting). */
static void nsb_late_close_others(const int *keep, int n)
{
	unsigned lo = 0;
	for (int i = 0; i < n; i++) {
		if ((unsigned)keep[i] > lo)
			SYS3(SYS_close_range, lo, keep[i] - 1, 0);
		lo = (unsigned)keep[i] + 1;
	}
	SYS3(SYS_close_range, lo, ~0U, 0);
}

/* nsb_late_read1 reads one byte of the control socket: 1, or 0 at EOF. */
static long nsb_late_read1(int fd, char *b)
{
	long ret;
	do
		ret = SYS3(SYS_read, fd, b, 1);
	while (ret == -EINTR);
	return ret == 1;
}

/* nsb_late_group makes the planned v1 group: the default parent (there
 * already is fine), the group, its pids.max, and its tasks file opened for
 * the child. Returns the tasks fd or -errno, with *stage. */
static long nsb_late_group(struct nsb_late *h, int *stage)
{
	const struct nsb_cg *cg = h->cg;
	long ret, fd, n = 0;
	*stage = NSC_STAGE_CGROUP;
	/* Another run's watcher may remove the default parent between the
	 * two mkdirs (it is removed with its last group): then again, as
	 * cgroup.Create retries. */
	for (int try = 0;; try++) {
		if ((ret = SYS2(SYS_mkdir, cg->parent, 0755)) < 0 && ret != -EEXIST)
			return ret;
		if ((ret = SYS2(SYS_mkdir, cg->dir, 0755)) == 0)
			break;
		if (ret != -ENOENT || try == 2)
			return ret;
	}
	h->made = 1;
	if ((fd = SYS3(SYS_openat, AT_FDCWD, cg->max, O_WRONLY | O_CLOEXEC)) < 0)
		return fd;
	while (cg->num[n])
		n++;
	ret = SYS3(SYS_write, fd, cg->num, n);
	SYS1(SYS_close, fd);
	if (ret != n)
		return ret < 0 ? ret : -EIO;
	return SYS3(SYS_openat, AT_FDCWD, cg->join, O_WRONLY | O_CLOEXEC);
}

/* nsb_fd_msg is one byte on the control socket with room for one fd
 * (SCM_RIGHTS): nsbox's 'R' and the child's pidfd. */
struct nsb_fd_msg {
	char b;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov;
	struct msghdr m;
};

/* nsb_fd_msg_init points fm's header at its byte and its fd's room. */
static void nsb_fd_msg_init(struct nsb_fd_msg *fm, char b)
{
	__builtin_memset(fm, 0, sizeof *fm);
	fm->b = b;
	fm->iov.iov_base = &fm->b;
	fm->iov.iov_len = 1;
	fm->m.msg_iov = &fm->iov;
	fm->m.msg_iovlen = 1;
	fm->m.msg_control = fm->u.buf;
	fm->m.msg_controllen = sizeof fm->u.buf;
}

/* nsb_late_recv_r reads nsbox's 'R' and, with fd, the pidfd sent with it
 * (*fd stays -1 if none came). 1, or 0 at EOF or on anything else. */
static long nsb_late_recv_r(int ctl, int *fd)
{
	struct nsb_fd_msg fm;
	struct cmsghdr *c;
	long ret;
	nsb_fd_msg_init(&fm, 0);
	do
		ret = SYS3(SYS_recvmsg, ctl, &fm.m, MSG_CMSG_CLOEXEC);
	while (ret == -EINTR);
	c = ret == 1 ? CMSG_FIRSTHDR(&fm.m) : 0;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		int got;
		__builtin_memcpy(&got, CMSG_DATA(c), sizeof got);
		if (fd)
			*fd = got;
		else
			SYS1(SYS_close, got);
	}
	return ret == 1 && fm.b == 'R';
}

/* nsb_late_watch blocks until the child's pidfd (initfd; -1: none) polls
 * readable, or until the control socket does (EOF). */
static void nsb_late_watch(int ctl, int initfd)
{
	struct pollfd p[2] = {{.fd = ctl, .events = POLLIN}, {.fd = initfd, .events = POLLIN}};
	long ret;
	do
		ret = SYS5(SYS_ppoll, p, initfd >= 0 ? 2 : 1, 0, 0, 0);
	while (ret == -EINTR);
	if (initfd >= 0)
		SYS1(SYS_close, initfd);
}

/* nsb_late_helper runs on nsbox's memory (CLONE_VM) with every signal
 * blocked: raw syscalls only, as the clone child's. */
static int nsb_late_helper(void *arg)
{
	struct nsb_late *h = arg;
	int v[3] = {0, 0, -1}, keep[2], orig = -1, initfd = -1;
	long ret;
	char b = 0;

	keep[0] = h->ready_w < h->ctl_r ? h->ready_w : h->ctl_r;
	keep[1] = h->ready_w ^ h->ctl_r ^ keep[0];
	nsb_late_close_others(keep, 2);
	if (h->ns.type) {
		/* nsbox's namespace, to go back to once the child joined. */
		if ((orig = (int)SYS3(SYS_openat, AT_FDCWD, "/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
			v[0] = NSC_STAGE_SETNS_PIDFD;
			v[1] = orig;
		} else if ((ret = SYS1(SYS_unshare, h->ns.type)) < 0) {
			v[0] = NSC_STAGE_CLONE; /* the namespace the clone would have made */
			v[1] = (int)ret;
		}
	}
	/* nsbox names the group meanwhile: 'P' (cg is set), 'N' (it makes
	 * a v2 group itself), EOF (it gave up). */
	if (h->want_cg && !v[1] && nsb_late_read1(h->ctl_r, &b) && b == 'P') {
		if ((ret = nsb_late_group(h, &v[0])) < 0)
			v[1] = (int)ret;
		else
			v[2] = (int)ret;
	}
	if (!v[1])
		v[0] = 0;
	SYS3(SYS_write, h->ready_w, v, sizeof v);
	__atomic_store_n(&h->ns.written, 1, __ATOMIC_RELEASE);
	if (h->ns.lo_later) {
		/* lo up while the child joins and goes on; it reads this
		 * right before its exec (nsc_wait_lo). */
		int lo = v[1] ? -ECANCELED : (int)nsc_lo_up();
		SYS3(SYS_write, h->ready_w, &lo, sizeof lo);
		__atomic_store_n(&h->ns.written, 2, __ATOMIC_RELEASE);
	}
	/* 'R': the child joined (or will never), with a pidfd of the child
	 * when the helper watches a group; EOF: nsbox is gone. */
	ret = nsb_late_recv_r(h->ctl_r, h->made ? &initfd : 0);
	if (orig >= 0) {
		if (SYS2(SYS_setns, orig, CLONE_NEWNET) < 0)
			ret = 0; /* cannot leave it: the sandbox ends here */
		SYS1(SYS_close, orig);
	}
	if (v[2] >= 0)
		SYS1(SYS_close, v[2]);
	SYS3(SYS_write, h->ready_w, "L", 1);
	SYS1(SYS_close, h->ready_w);
	if (!h->made)
		return 0;
	/* The watcher: the group goes as soon as the child ends (its pidfd
	 * says so, on the same exit that wakes nsbox's wait), or when nsbox
	 * closes the control socket (it failed, or died even of SIGKILL).
	 * nsbox waits for this exit, so no helper outlives it; the group's
	 * removal runs here, beside nsbox's own end. */
	if (ret)
		nsb_late_watch(h->ctl_r, initfd);
	/* Empty (a PID namespace ends with its init): removed at once. */
	ret = SYS1(SYS_rmdir, h->cg->dir);
	if (ret == 0 || ret == -ENOENT) {
		(void)SYS1(SYS_rmdir, h->cg->parent); /* EBUSY while another sandbox is in it */
		return 0;
	}
	nsc_cg_cleanup(&h->cg->w);
	return 0;
}

/* nsb_late_idle_cpu tells whether a CPU that nsbox may use would sit idle
 * while nsbox runs: fewer runnable tasks on the machine (nsbox included,
 * /proc/loadavg's fourth field, an instant count) than CPUs in nsbox's
 * mask. 0 when it cannot tell. */
static int nsb_late_idle_cpu(const cpu_set_t *mask)
{
	char buf[128], *end;
	long running;
	int skip = 0;
	/* "0.88 1.56 3.48 1/90 1493": the fourth field's first number. */
	if (nsb_read_small(AT_FDCWD, "/proc/loadavg", buf, sizeof buf, 1) <= 0 ||
	    sscanf(buf, "%*s %*s %*s %n", &skip) != 0 || !skip)
		return 0;
	running = strtol(buf + skip, &end, 10);
	return end != buf + skip && *end == '/' && running < CPU_COUNT(mask);
}

/* nsb_late_elsewhere moves the new helper to another CPU when one is idle
 * (idle: nsb_late_idle_cpu, asked before the clone). This kernel queues a
 * new process on its parent's CPU and lets it wait there while an idle
 * CPU stays idle, and nsbox keeps its CPU busy (the /etc reads, the plan,
 * the memfd, the child's clone) until it first blocks: the helper's
 * namespace then started about 0.35 ms after its clone (timestamps, 300
 * runs) and the child waited for it. The mask is given back at once: the
 * helper is already queued elsewhere, and later wake-ups go where the
 * scheduler likes. On a busy machine it is left alone (a CPU that runs
 * something else would make it wait longer: +0.02-0.17 ms a run, paired
 * medians). Nothing else changes: the helper execs nothing and starts no
 * process that could inherit a mask. 1 when it moved it: the child may
 * then wait for it busily (nsc_late_spin) rather than sleep. */
static int nsb_late_elsewhere(pid_t pid, const cpu_set_t *all)
{
	cpu_set_t other = *all;
	int cpu = sched_getcpu();
	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return 0;
	CPU_CLR(cpu, &other);
	if (CPU_COUNT(&other) == 0 || sched_setaffinity(pid, sizeof other, &other) < 0)
		return 0;
	(void)sched_setaffinity(pid, sizeof *all, all);
	return 1;
}

/* nsb_late_start clones the helper that unshares type (0: none; and
 * brings lo up there with lo_up) and, with want_cg, then makes the v1
 * group that nsb_late_group names. With spread (nsbox has its own setup
 * to do before the child's clone: a view, a group's plan), the helper
 * starts on an idle CPU if there is one (nsb_late_elsewhere). -1: no
 * helper (nothing was made). */
static int nsb_late_start(struct nsb_late *h, unsigned long type, int lo_up, int want_cg, int spread)
{
	int rp[2], cp[2], pidfd = -1;
	/* The control channel is a socket pair so that nsbox's sends never
	 * raise SIGPIPE (MSG_NOSIGNAL) should the helper be gone. */
	sigset_t all, old;
	cpu_set_t cpus;
	long pid;

	h->pid = -1;
	h->ctl_w = -1;
	if (pipe2(rp, O_CLOEXEC) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cp) < 0) {
		close(rp[0]);
		close(rp[1]);
		return -1;
	}
	h->ns.type = type;
	h->ns.lo_later = lo_up;
	h->ns.spin = h->ns.written = 0;
	h->want_cg = want_cg;
	h->cg = 0;
	h->made = h->waited = 0;
	h->ns.ready_fd = rp[0];
	h->ready_w = rp[1];
	h->ctl_r = cp[0];
	spread = spread && sched_getaffinity(0, sizeof cpus, &cpus) == 0 && nsb_late_idle_cpu(&cpus);
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	/* No exit signal: nsbox reaps it by pid (__WALL), and no SIGCHLD of
	 * it reaches a handler. No PR_SET_PDEATHSIG: as the group's watcher it
	 * must outlive an nsbox killed by SIGKILL (EOF on ctl ends it). */
	pid = clone(nsb_late_helper, nsb_late_stack + sizeof nsb_late_stack, CLONE_VM | CLONE_PIDFD, h, &pidfd);
	sigprocmask(SIG_SETMASK, &old, 0);
	close(rp[1]);
	close(cp[0]);
	if (pid < 0) {
		close(rp[0]);
		close(cp[1]);
		return -1;
	}
	h->pid = (pid_t)pid;
	if (spread)
		h->ns.spin = nsb_late_elsewhere(h->pid, &cpus);
	h->ns.pidfd = pidfd;
	h->ctl_w = cp[1];
	return 0;
}

/* nsb_late_group_named gives the helper the group to make (cg, the v1
 * plan), or tells it that there is none for it (NULL: nsbox makes a v2
 * group itself). */
static int nsb_late_group_named(struct nsb_late *h, struct nsb_cg *cg)
{
	h->cg = cg;
	if (send(h->ctl_w, cg ? "P" : "N", 1, MSG_NOSIGNAL) != 1) {
		h->cg = 0;
		return -1;
	}
	return 0;
}

/* nsb_late_joined tells the helper that the child has joined and exec'd:
 * it leaves the network namespace (nsbox waits for that: nothing outside
 * the sandbox holds it once the payload runs); without a group it exits
 * and is reaped here, before any record names nsbox's children. */
static void nsb_late_joined(struct nsb_late *h, int pidfd)
{
	struct nsb_fd_msg fm;
	char b;
	int st;
	if (h->pid < 0 || h->waited)
		return;
	h->waited = 1;
	nsb_fd_msg_init(&fm, 'R');
	if (h->made && pidfd >= 0) {
		/* The child's pidfd: the watcher removes the group on its end. */
		struct cmsghdr *c = CMSG_FIRSTHDR(&fm.m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pidfd, sizeof pidfd);
	} else {
		fm.m.msg_control = 0;
		fm.m.msg_controllen = 0;
	}
	while (sendmsg(h->ctl_w, &fm.m, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
	while (read(h->ns.ready_fd, &b, 1) < 0 && errno == EINTR)
		;
	close(h->ns.ready_fd);
	close(h->ns.pidfd);
	h->ns.pidfd = h->ns.ready_fd = -1;
	if (h->cg)
		return;
	close(h->ctl_w);
	h->ctl_w = -1;
	while (waitpid(h->pid, &st, __WALL) < 0 && errno == EINTR)
		;
	h->pid = -1;
}

/* nsb_late_finish ends the helper once the payload ended (or on a
 * fallback) and reaps it: a helper that made a group removes it first
 * (at the child's end, or at the EOF this sends), so the group is gone on
 * return. */
static void nsb_late_finish(struct nsb_late *h)
{
	int st;
	if (h->pid < 0)
		return;
	if (h->ns.pidfd >= 0) {
		close(h->ns.ready_fd);
		close(h->ns.pidfd);
		h->ns.pidfd = h->ns.ready_fd = -1;
	}
	close(h->ctl_w);
	h->ctl_w = -1;
	while (waitpid(h->pid, &st, __WALL) < 0 && errno == EINTR)
		;
	h->pid = -1;
}
