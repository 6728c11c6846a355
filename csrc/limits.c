/*
 * limits.c: the child's steps that limit what the payload may do: joining
 * its cgroup, rlimits, capabilities, no_new_privs and seccomp. Included by
 * clone_shim.c; each function is one step of nsc_child/nsc_payload, makes raw
 * syscalls only and reports the first failure through nsc_fail. Go computes
 * every value (which capabilities to keep, the BPF program, the limits) and
 * checks them against the caller's; the child only applies them.
 */

#include <linux/capability.h>
#include "nsc_loopback.h"
#include <linux/filter.h>
#include <linux/seccomp.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* nsc_join_cgroups moves the child into its cgroups (one per v1 hierarchy,
 * or the one v2 group) by writing "0" (the writer itself) to their
 * tasks (v1; cgroup.procs on v2), which the parent opened: on v1 moving the
 * calling thread through tasks skips the global lock a cgroup.procs write takes
 * and its RCU grace period (about 10 ms). It is the first step, so nothing the
 * child does afterwards, and nothing the payload does, is outside the
 * limits. A child that clone3 placed in its group already (placed) only
 * closes them. */
static void nsc_join_cgroups(const struct nsc_spec *s, int errfd, int placed)
{
	for (int i = 0; i < s->lim.ncgroup; i++) {
		long ret = placed ? 0 : SYS3(SYS_write, s->lim.cgroup_fds[i], "0", 1);
		if (ret < 0)
			nsc_fail(errfd, NSC_STAGE_CGROUP, ret, i);
		SYS1(SYS_close, s->lim.cgroup_fds[i]);
	}
}

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* nsc_late_spin busy-waits, if the helper runs on another CPU (l->spin),
 * until it has written its step-th piece on ready_fd, for at most
 * NSC_LATE_SPIN_NS; the read that follows then finds the data and does not
 * sleep. Each turn yields the CPU to whatever else is runnable on it (the
 * helper itself, should a wake-up have brought it here). A helper that is
 * slower (or dead: EOF) is waited for by that read as before. */
static void nsc_late_spin(const struct nsc_late_ns *l, int step)
{
	struct timespec t0, t;
	if (!l->spin || __atomic_load_n(&l->written, __ATOMIC_ACQUIRE) >= step ||
	    SYS2(SYS_clock_gettime, CLOCK_MONOTONIC, &t0) < 0)
		return;
	for (int i = 1;; i++) {
		if (__atomic_load_n(&l->written, __ATOMIC_ACQUIRE) >= step)
			return;
		SYS0(SYS_sched_yield);
		if ((i & 15) == 0 && (SYS2(SYS_clock_gettime, CLOCK_MONOTONIC, &t) < 0 ||
				      (t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > NSC_LATE_SPIN_NS))
			return;
	}
}

/* nsc_join_late joins what a helper made meanwhile (struct nsc_late_ns): it
 * waits for the helper's result, moves into the group through the helper's
 * open join file (pidfd_getfd: the child cannot open it by path once its
 * view is in place), then setns on its pidfd. Before lo up, which needs the
 * new network namespace, and before the id change and the exec. */
static void nsc_join_late(const struct nsc_spec *s, int errfd)
{
	const struct nsc_late_ns *l = s->late_ns;
	int v[3] = {0, 0, -1};
	long ret;
	if (!l)
		return;
	nsc_late_spin(l, 1);
	do
		ret = SYS3(SYS_read, l->ready_fd, v, sizeof v);
	while (ret == -EINTR);
	if (ret != (long)sizeof v)
		nsc_fail(errfd, NSC_STAGE_SETNS_PIDFD, ret < 0 ? ret : -ECHILD, 1);
	if (v[1] < 0)
		nsc_fail(errfd, v[0], v[1], 1);
	if (v[2] >= 0) {
		long fd = SYS3(SYS_pidfd_getfd, l->pidfd, v[2], 0);
		if (fd < 0)
			nsc_fail(errfd, NSC_STAGE_CGROUP, fd, 1);
		ret = SYS3(SYS_write, fd, "0", 1);
		SYS1(SYS_close, fd);
		if (ret < 0)
			nsc_fail(errfd, NSC_STAGE_CGROUP, ret, 1);
	}
	if (l->type && (ret = SYS2(SYS_setns, l->pidfd, l->type)) < 0)
		nsc_fail(errfd, NSC_STAGE_SETNS_PIDFD, ret, 1);
	SYS1(SYS_close, l->pidfd);
	if (!l->lo_later)
		SYS1(SYS_close, l->ready_fd);
}

/* nsc_loopback_up brings lo up in the child's new network namespace
 * (nsc_loopback.h), unless run's late_ns helper did it already. */
static void nsc_loopback_up(const struct nsc_spec *s, int errfd)
{
	long ret;
	if (s->lim.loopback_up && (ret = nsc_lo_up()) < 0)
		nsc_fail(errfd, NSC_STAGE_LOOPBACK, ret, 0);
}

/* nsc_set_rlimits sets each rlimit (Go checked that no hard limit is above
 * the caller's, so without CAP_SYS_RESOURCE nothing is refused here). */
static void nsc_set_rlimits(const struct nsc_spec *s, int errfd)
{
	for (int i = 0; i < s->lim.nrlimits; i++) {
		const struct nsc_rlimit *r = &s->lim.rlimits[i];
		unsigned long long v[2] = {r->soft, r->hard};
		long ret = SYS4(SYS_prlimit64, 0, r->resource, v, 0);
		if (ret < 0)
			nsc_fail(errfd, NSC_STAGE_RLIMIT, ret, i);
	}
}

/* nsc_caps_bound drops what is not kept from the bounding set, while the
 * child still holds CAP_SETPCAP (before the id change), so that no setuid
 * binary or file capability can bring it back; with a change to a non-root
 * uid it asks to keep the permitted set across setuid. */
static void nsc_caps_bound(const struct nsc_spec *s, int errfd)
{
	long ret;
	if (!s->lim.caps_set)
		return;
	for (int c = 0; c <= s->lim.cap_last && c < 64; c++) {
		if (s->lim.caps_keep & (1ULL << c))
			continue;
		if ((ret = SYS2(SYS_prctl, PR_CAPBSET_DROP, c)) < 0)
			nsc_fail(errfd, NSC_STAGE_CAPS, ret, c);
	}
	if (s->set_uid && s->uid != 0 && (ret = SYS2(SYS_prctl, PR_SET_KEEPCAPS, 1)) < 0)
		nsc_fail(errfd, NSC_STAGE_CAPS, ret, -1);
}

/* nsc_caps_set makes the effective, permitted and inheritable sets exactly
 * the kept capabilities (after the id change, which cleared the effective
 * set) and sets the ambient set: the kept ones for a non-root payload (so
 * they survive its exec), none otherwise. */
static void nsc_caps_set(const struct nsc_spec *s, int errfd)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	unsigned long long k = s->lim.caps_keep;
	long ret;

	if (!s->lim.caps_set)
		return;
	for (int i = 0; i < 2; i++) {
		unsigned int w = (unsigned int)(k >> (32 * i));
		d[i].effective = d[i].permitted = d[i].inheritable = w;
	}
	if ((ret = SYS2(SYS_capset, &h, d)) < 0)
		nsc_fail(errfd, NSC_STAGE_CAPS, ret, -1);
	if ((ret = SYS5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)) < 0)
		nsc_fail(errfd, NSC_STAGE_CAPS, ret, -1);
	if (!s->lim.caps_ambient)
		return;
	for (int c = 0; c <= s->lim.cap_last && c < 64; c++)
		if ((k & (1ULL << c)) &&
		    (ret = SYS5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0)) < 0)
			nsc_fail(errfd, NSC_STAGE_CAPS, ret, c);
}

/* nsc_wait_lo waits for the late helper's lo step (lo_later): it ran while
 * the child changed ids, capabilities and loaded its filter (which allows
 * read, close and the failure report), and the payload must find lo up at
 * its first instruction. */
static void nsc_wait_lo(const struct nsc_spec *s, int errfd)
{
	const struct nsc_late_ns *l = s->late_ns;
	int v = 0;
	long ret;
	if (!l || !l->lo_later)
		return;
	nsc_late_spin(l, 2);
	do
		ret = SYS3(SYS_read, l->ready_fd, &v, sizeof v);
	while (ret == -EINTR);
	if (ret != (long)sizeof v)
		nsc_fail(errfd, NSC_STAGE_LOOPBACK, ret < 0 ? ret : -ECHILD, 1);
	if (v < 0)
		nsc_fail(errfd, NSC_STAGE_LOOPBACK, v, 0);
	SYS1(SYS_close, l->ready_fd);
}

/* nsc_lockdown sets no_new_privs and installs the seccomp program: the last
 * steps before the exec, so the filter sees only the exec and the payload
 * (and the wait for lo, nsc_wait_lo). */
static void nsc_lockdown(const struct nsc_spec *s, int errfd)
{
	long ret;
	if (s->lim.no_new_privs && (ret = SYS5(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) < 0)
		nsc_fail(errfd, NSC_STAGE_NO_NEW_PRIVS, ret, 0);
	if (s->lim.seccomp_len) {
		struct sock_fprog prog = {s->lim.seccomp_len, (struct sock_filter *)s->lim.seccomp_filter};
		if ((ret = SYS3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) < 0)
			nsc_fail(errfd, NSC_STAGE_SECCOMP, ret, 0);
	}
	nsc_wait_lo(s, errfd);
}
