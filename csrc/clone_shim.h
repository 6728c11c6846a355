/*
 * clone_shim.h: the spawn spec that Go builds completely before calling
 * nsc_spawn, and the result it gets back. See README.md beside this file.
 */
#ifndef NSBOX_CLONE_SHIM_H
#define NSBOX_CLONE_SHIM_H

#include <stdint.h>

#define NSC_MAX_JOIN 8

/*
 * The child's stack, alloca'd in nsc_spawn's frame. Measured with
 * nsc_stack_probe (nsclone's TestStackNeed): the CLONE_VM child touches about
 * 1.1 KiB on x86_64 (glibc's clone trampoline, nsc_child, nsc_payload and the
 * raw syscalls; the init runs on a copy of the memory). 16 KiB leaves a wide
 * margin and is a trivial alloca on a cgo thread's stack.
 */
#define NSC_STACK_SIZE (16 * 1024)

/* The stages of the child's setup (enum nsc_stage), the forwarded signals
 * and the other rules shared with Go come from Go (internal/abi). */
#include "nsbox_gen.h"

/* The kinds of filesystem steps (enum nsc_fs_kind) and a bind's flags
 * (NSC_FS_RDONLY, NSC_FS_FILE) come from internal/abi through nsbox_gen.h. */
#define NSC_FS_NOPT NSB_FS_NOPT
#define NSC_ENTER_ROOT 1
#define NSC_ENTER_DIR 2   /* fsconfig key, value pairs (value NULL: a flag) */

/* One step of the view. DEST is given as ncomp components below the root:
 * prefix[i] is components 0..i joined by '/', name[i] is component i. */
struct nsc_fsop {
	int kind, flags;
	const char *source;
	const char *opt[NSC_FS_NOPT];
	unsigned long attr; /* MOUNT_ATTR_* of a new filesystem */
	int ncomp;
	const char *const *prefix;
	const char *const *name;
};

struct nsc_rlimit {
	int resource;
	unsigned long long soft, hard; /* RLIM_INFINITY is ~0 */
};

/* nsc_limits: what the payload may do (csrc/limits.c). Its zero value
 * changes nothing. */
struct nsc_limits {
	int loopback_up;           /* bring lo up in the new network namespace */
	int ncgroup;               /* join file fds (tasks on v1, cgroup.procs on v2): the
	                            * child writes "0" to each first */
	const int *cgroup_fds;
	/* into_cgroup: place the child with clone3(CLONE_INTO_CGROUP) in the v2
	 * group whose directory cgroup_dirfd is (x86_64), so it is never outside
	 * it; where the kernel refuses (ENOSYS, E2BIG, EINVAL: no clone3, or a
	 * kernel before 5.7), it is cloned as usual and joins through
	 * cgroup_fds. */
	int into_cgroup;
	int cgroup_dirfd;
	int nrlimits;
	const struct nsc_rlimit *rlimits;
	int caps_set;              /* apply caps_keep to every capability set */
	int caps_ambient;          /* raise caps_keep as ambient (a non-root payload) */
	int cap_last;              /* /proc/sys/kernel/cap_last_cap */
	unsigned long long caps_keep;
	int no_new_privs;
	unsigned short seccomp_len; /* instructions of a classic BPF program; 0: none */
	const void *seccomp_filter; /* struct sock_filter[seccomp_len] */
};

/* nsc_late_ns: what a helper process makes while the child builds its view
 * (csrc/late_ns.c, run's fast path): a network namespace (about 0.45 ms of
 * kernel work, which then runs beside the caller's and the child's own setup
 * instead of inside the clone; the helper brings lo up there when asked, so
 * lim.loopback_up is 0 then) and/or the v1 pids group. The child reads the
 * helper's result (three ints: the stage that failed and -errno, or 0 and
 * 0; then the helper's fd of the group's join file, or -1; EOF if the
 * helper died) from ready_fd, joins the group through pidfd_getfd on pidfd,
 * joins the namespaces with setns(pidfd, type) (type 0: none) and closes
 * its fds. The helper keeps the namespace until the caller says the child
 * is done with it. The fds are in the spec's keep list. */
struct nsc_late_ns {
	int pidfd;         /* the helper */
	unsigned long type; /* CLONE_NEW* bits the helper unshared; 0: none */
	int ready_fd;      /* read end: the helper's result */
	int lo_later;      /* the helper brings lo up after its result: one more
	                    * int (0 or -errno) on ready_fd, read right before
	                    * the exec (nsc_lockdown) */
	/* spin: the helper runs on another CPU of an idle machine, so the child
	 * may busy-wait (at most NSC_LATE_SPIN_NS a read) until written says
	 * that what it reads next is on ready_fd (1: the result, 2: lo's),
	 * instead of sleeping in the read: here a wake-up of an idle CPU took
	 * 50-70 µs. written is the helper's (it shares the caller's memory). */
	int spin;
	int written;
};
#define NSC_LATE_SPIN_NS 300000L

struct nsc_mount {
	const char *source, *target, *fstype, *data;
	unsigned long flags;
};

/* nsc_hook is called in the parent, on the calling thread, after the clone
 * and before the child goes on; it returns 0 to let the child go on. */
typedef int (*nsc_hook)(uintptr_t ctx, int pid);

struct nsc_spec {
	const char *path;   /* resolved by the caller */
	char *const *argv;  /* NULL-terminated */
	char *const *envp;  /* NULL-terminated */
	const char *dir;    /* NULL: keep the working directory */
	unsigned long ns_flags; /* CLONE_NEW* bits */

	/* join_pidfd_ns != 0: setns(join_pidfd, join_pidfd_ns) first,
	 * entering several namespaces of one process at once. */
	int join_pidfd;
	unsigned long join_pidfd_ns;
	/* After joining (all zero: nothing): enter_root_fd becomes the root
	 * (fchdir, chroot ".") with NSC_ENTER_ROOT, enter_dir_fd the working
	 * directory with NSC_ENTER_DIR (nsenter -r -w). */
	int enter;
	int enter_root_fd, enter_dir_fd;
	int njoin;
	int join_fd[NSC_MAX_JOIN];   /* open namespace files, setns in order */
	int join_type[NSC_MAX_JOIN]; /* CLONE_NEW* of each */

	unsigned long propagation; /* MS_PRIVATE|MS_REC etc.; 0: unchanged */
	int mount_proc;
	int nmounts;
	const struct nsc_mount *mounts;
	const char *hostname;
	int hostname_len;

	int set_groups; /* setgroups(ngroups, groups) */
	int ngroups;
	const unsigned int *groups;
	int set_gid, set_uid;
	unsigned int gid, uid;

	int nfds;       /* child fd i becomes fds[i]; -1 leaves fd i closed */
	const int *fds;
	int nkeep;      /* sorted fds the child needs before the exec (fds, join fds) */
	const int *keep;

	int init;       /* run an init that forks the payload */
	int pdeathsig;  /* for the payload of an init without a PID namespace */
	/* parent_death_sig: set on the child itself right before its exec, so
	 * it dies with the caller if not zero. */
	int parent_death_sig;
	/* With init_fd >= 0 (a sealed memfd holding csrc/nsinit.c built), the
	 * CLONE_VM child execs it as the init with init_argv ({name, errfd,
	 * mask, flags, path, payload argv...}); the child formats the errfd
	 * and mask into init_scratch (48 bytes, which init_argv[1] and [2]
	 * point at). With init_fd < 0 the init is cloned without CLONE_VM and
	 * runs nsc_init on a copy of the caller's memory. */
	int init_fd;
	char *const *init_argv;
	char *init_scratch;

	/* The filesystem view (csrc/view.c), built after the propagation
	 * change and /proc: root is the new root (NULL: the current one),
	 * made read-only with ro_root, then fsops in order; fs_fd has nfsops
	 * slots the child fills with the bind sources it opens. With
	 * dir_fallback, a dir missing in the view means "/". */
	int view;
	const char *root;
	int ro_root;
	int nfsops;
	const struct nsc_fsop *fsops;
	int *fs_fd;
	int dir_fallback;

	struct nsc_limits lim;

	/* late_ns (NULL: none): join these namespaces right before lo up,
	 * instead of making them in the clone (their flags are not in
	 * ns_flags then). */
	const struct nsc_late_ns *late_ns;

	nsc_hook hook;  /* NULL: no hook, the child does not wait */
	uintptr_t hook_ctx;
};

struct nsc_result {
	int pid;    /* as the caller sees it; 0 if the clone failed */
	int pidfd;  /* -1 if none (the caller closes it) */
	int stage;  /* enum nsc_stage; NSC_OK when the payload exec'd */
	int err;    /* errno of the failing step */
	int index;  /* which join/mount/fd entry failed */
	int placed; /* clone3(CLONE_INTO_CGROUP) placed the child (lim.into_cgroup) */
};

/* nsc_spawn clones the child described by s and returns once it has exec'd
 * (r->stage == NSC_OK) or failed (the child is reaped then). Call it on a
 * locked OS thread. It returns r->stage. */
#ifndef NSC_API
int nsc_spawn(const struct nsc_spec *s, struct nsc_result *r);
#endif

/* nsc_stack_probe returns the number of bytes of the child's stack that a
 * spawn of s touched (for tests measuring the stack need). */
#ifndef NSC_API
long nsc_stack_probe(const struct nsc_spec *s, struct nsc_result *r);
#endif

#endif
