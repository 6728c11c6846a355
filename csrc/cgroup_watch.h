/* cgroup_watch.h: the cgroup watcher of cgroup_watch.c. */
#ifndef NSBOX_CGROUP_WATCH_H
#define NSBOX_CGROUP_WATCH_H

/* What the watcher removes once EOF comes on rd. All of it (and the stack)
 * must stay valid until the watcher is reaped. */
struct nsc_cg_watch {
	int rd;                   /* read end of the caller's pipe */
	int n;
	char *const *dirs;        /* removed in this order (deepest first) */
	char *const *procs;       /* the cgroup.procs file of each dir */
	const char *kill;         /* v2: cgroup.kill, or NULL */
	const char *freeze;       /* v1: freezer.state, or NULL */
	int np;
	char *const *parents;     /* default parents, rmdir'd once after dirs
	                           * (EBUSY while another group is in them) */
};

#define NSC_CG_STACK_SIZE (16 * 1024)

/* nsc_cg_watch starts the watcher on stack and returns its pid, or -errno. */
int nsc_cg_watch(const struct nsc_cg_watch *w, void *stack, long stack_len);

/* nsc_cg_cleanup kills what is left in w's groups and removes them (what
 * the watcher does on EOF), in raw syscalls: run's early helper
 * (late_ns.c), which is its own watcher, calls it. */
void nsc_cg_cleanup(const struct nsc_cg_watch *w);

#endif
