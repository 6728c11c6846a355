/*
 * limits_fast.c: what the C fast path of nsbox run makes of --sandbox,
 * --cap-drop, --cap-add, --no-new-privs, --seccomp default|unconfined and
 * --pids (included by run_fast.c). It computes what nsclone's planLimits and
 * run's limitSpec compute (the capabilities kept, no_new_privs, the default
 * seccomp program built ahead of time, the pids group) and creates the group
 * as sandbox/cgroup.Create does for the default parent, with the watcher of
 * cgroup_watch.c; the child's steps are limits.c's, shared with Go's path.
 * The tables (--sandbox's defaults, capability names, the seccomp program,
 * cgroup names and files) come from Go through nsbox_gen.h; every form it
 * does not know (a profile FILE, --memory, --rlimit, a named parent, a
 * hierarchy mounted below its root, a PID namespace shared with the caller)
 * returns -1, and Go runs the command and reports. FuzzRunFastParity checks
 * the parser against Go's; TestSandboxFastParity the sandbox it makes.
 */

#include <linux/capability.h>
#include <sys/random.h>
#include <sys/vfs.h>
#include "cgroup_watch.h"
#include "nsb_file.h"

/* nsc_cg_watch is nsclone's (cgroup_watch.c), weak for the same reason as
 * nsc_spawn. */
#pragma weak nsc_cg_watch
#pragma weak nsc_cg_cleanup

/* nsb_cap_parse finds a capability name as sandbox/caps.Parse does (case
 * insensitive, with or without cap_), for names of ASCII letters, digits and
 * '_' (anything else, which Go trims or folds, is Go's); -1 if unknown. */
static int nsb_cap_parse(const char *name)
{
	char low[64];
	size_t n = strlen(name);
	if (n == 0 || n >= sizeof low)
		return -1;
	for (size_t i = 0; i <= n; i++) {
		char c = name[i];
		if (c && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return -1;
		low[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	const char *p = strncmp(low, "cap_", 4) == 0 ? low + 4 : low;
	for (int c = 0; c < NSB_NCAPS; c++)
		if (nsb_cap_names[c] && strcmp(nsb_cap_names[c], p) == 0)
			return c;
	return -1;
}

/* nsb_cap_last reads /proc/sys/kernel/cap_last_cap (moby's LastCap). */
static int nsb_cap_last(void)
{
	char b[16];
	if (nsb_read_small(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", b, sizeof b, 1) <= 0)
		return -1;
	return atoi(b);
}

/* nsb_caps_effective is the caller's effective set, with capget as
 * caps.Effective does. */
static int nsb_caps_effective(unsigned long long *out)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	*out = (unsigned long long)d[0].effective | ((unsigned long long)d[1].effective << 32);
	return 0;
}

/* nsb_caps_apply applies the ordered --cap-drop/--cap-add/--sandbox list to
 * the caller's effective set, as caps.Apply(base, base, ops): ALL, a name
 * dropped, a name added only if the caller holds it. -1 on any error (Go
 * reports it). */
static int nsb_caps_apply(struct nsb_lim *l, const struct nsb_envop *ops, int n)
{
	unsigned long long base, s;
	if (nsb_caps_effective(&base) < 0 || (l->cap_last = nsb_cap_last()) < 0 || l->cap_last > 63)
		return -1;
	s = base;
	for (int k = 0; k < n; k++) {
		int drop = ops[k].id != NSB_F_CAP_ADD, c;
		const char *v = ops[k].value;
		if (ops[k].id == NSB_F_SANDBOX) {
			if (NSB_SANDBOX_CAPS_DROP_ALL)
				s = 0;
			continue;
		}
		if (strcasecmp(v, "all") == 0) {
			s = drop ? 0 : base;
			continue;
		}
		if ((c = nsb_cap_parse(v)) < 0)
			return -1;
		if (drop)
			s &= ~(1ULL << c);
		else if (base & (1ULL << c))
			s |= 1ULL << c;
		else
			return -1;
	}
	l->keep = s & base;
	l->caps_set = 1;
	return 0;
}

/* nsb_pids parses --pids as strconv.ParseInt(v, 10, 64) > 0, for plain
 * digits. */
static int nsb_pids(const char *v, long long *out)
{
	unsigned long long x;
	if (nsb_digits(v, strlen(v), 10, 0x7fffffffffffffffULL, &x) < 0 || x == 0)
		return -1;
	*out = (long long)x;
	return 0;
}

/* nsb_limits_parse makes l of the limit flags (after --sandbox's defaults
 * were filled in), as limitSpec and planLimits do. */
static int nsb_limits_parse(struct nsb_fast *f, struct nsb_lim *l, const char **val, const int *set,
			    const struct nsb_envop *caps, int ncaps)
{
	unsigned final_uid = f->set_uid ? f->uid : (unsigned)geteuid();
	int sys_admin;
	memset(l, 0, sizeof *l);
	if (ncaps > 0 && nsb_caps_apply(l, caps, ncaps) < 0)
		return -1;
	l->nnp = set[NSB_F_NO_NEW_PRIVS];
	if (val[NSB_F_SECCOMP]) {
		if (nsb_streq(val[NSB_F_SECCOMP], "default")) {
			if (NSB_SECCOMP_DEFAULT_LEN == 0)
				return -1;
			l->seccomp_default = 1;
		} else if (!nsb_streq(val[NSB_F_SECCOMP], "unconfined")) {
			return -1; /* a profile FILE: Go's */
		}
	}
	if (val[NSB_F_PIDS]) {
		/* Without a PID namespace Go puts the group in the freezer too. */
		if (nsb_pids(val[NSB_F_PIDS], &l->pids) < 0 || !set[NSB_F_PID])
			return -1;
	}
	if (l->caps_set) {
		l->ambient = final_uid != 0 && l->keep != 0;
		sys_admin = (l->keep >> CAP_SYS_ADMIN) & 1;
	} else if (final_uid == 0 || !f->set_uid) {
		unsigned long long eff = 0;
		sys_admin = nsb_caps_effective(&eff) == 0 && ((eff >> CAP_SYS_ADMIN) & 1);
	} else {
		sys_admin = 0;
	}
	/* Without CAP_SYS_ADMIN the kernel loads a filter only under
	 * no_new_privs. */
	if (l->seccomp_default && !sys_admin)
		l->nnp = 1;
	l->loopback_up = set[NSB_F_SANDBOX] && set[NSB_F_NET] && !val[NSB_F_BRIDGE];
	return 0;
}

/* nsb_etc_fields splits one line (a trailing \r dropped, as bufio's
 * ScanLines does) at ':' into at most max fields; returns their count. */
static int nsb_etc_fields(char *line, char **fld, int max)
{
	int n = 0;
	size_t len = strlen(line);
	if (len && line[len - 1] == '\r')
		line[len - 1] = 0;
	fld[n++] = line;
	for (char *p = line; *p && n < max; p++)
		if (*p == ':') {
			*p = 0;
			fld[n++] = p + 1;
		}
	return n;
}

/* nsb_user applies Go's ids() for a numeric --uid (the one --sandbox fills
 * in): the first /etc/passwd entry with that uid gives the primary group
 * (unless --gid), its groups from /etc/group (initgroups) and HOME, USER
 * and LOGNAME, set before the user's --setenv/--unsetenv/--clearenv; no
 * entry needs --gid. */
static int nsb_user(struct nsb_fast *f)
{
	static char data[65536];
	char *fld[8], *line, *next;
	const char *name = 0, *home = 0;
	unsigned gid = 0;
	if (f->root || nsb_read_small(AT_FDCWD, "/etc/passwd", data, sizeof data, 1) < 0)
		return -1; /* a rootfs's /etc, or an unreadable file: Go's */
	for (line = data; line && *line; line = next) {
		unsigned id, g;
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		if (nsb_etc_fields(line, fld, 8) < 6 || nsb_parse_id(fld[2], &id) < 0 || nsb_parse_id(fld[3], &g) < 0)
			continue;
		if (id == f->uid) {
			name = nsb_strdup_n(f, fld[0], strlen(fld[0]));
			home = nsb_strdup_n(f, fld[5], strlen(fld[5]));
			gid = g;
			break;
		}
	}
	if (!name) {
		if (!f->set_gid)
			return -1; /* Go says: give --gid too */
		return 0;
	}
	if (!home)
		return -1;
	if (!f->set_gid) {
		f->gid = gid;
		f->set_gid = 1;
	}
	f->ngroups = 0;
	f->groups[f->ngroups++] = f->gid;
	if (nsb_read_small(AT_FDCWD, "/etc/group", data, sizeof data, 1) < 0)
		return -1;
	for (line = data; line && *line; line = next) {
		unsigned id;
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		if (nsb_etc_fields(line, fld, 5) < 4 || nsb_parse_id(fld[2], &id) < 0 || !*fld[3])
			continue;
		for (char *m = fld[3], *e; m; m = e) {
			if ((e = strchr(m, ',')))
				*e++ = 0;
			int have = 0;
			if (strcmp(m, name) != 0)
				continue;
			for (int k = 0; k < f->ngroups; k++)
				have |= f->groups[k] == id;
			if (!have) {
				if (f->ngroups == NSB_MAX_GROUPS)
					return -1;
				f->groups[f->ngroups++] = id;
			}
		}
	}
	/* HOME, USER, LOGNAME as --setenv entries before the user's. */
	const char *kv[3][2] = {{"HOME=", home}, {"USER=", name}, {"LOGNAME=", name}};
	if (f->nenvop + 3 > NSB_MAX_ORDERED)
		return -1;
	memmove(f->envop + 3, f->envop, (size_t)f->nenvop * sizeof *f->envop);
	for (int k = 0; k < 3; k++) {
		size_t a = strlen(kv[k][0]), b = strlen(kv[k][1]);
		char tmp[512];
		const char *s;
		if (a + b >= sizeof tmp)
			return -1;
		memcpy(tmp, kv[k][0], a);
		memcpy(tmp + a, kv[k][1], b);
		if (!(s = nsb_strdup_n(f, tmp, a + b)))
			return -1;
		f->envop[k].id = NSB_F_SETENV;
		f->envop[k].value = s;
	}
	f->nenvop += 3;
	return 0;
}

/* nsb_cg is one run's pids group and its watcher. */
struct nsb_cg {
	int v2;
	int join_fd; /* tasks (v1) or cgroup.procs (v2), opened for writing */
	int dir_fd;  /* v2: the group's directory, for clone3(CLONE_INTO_CGROUP) */
	int wfd;     /* the watcher's pipe; -1 once closed */
	pid_t watcher;
	char dir[512], procs[600], parent[512], kill[600];
	char max[600], join[600], num[24]; /* pids.max, the join file, the limit */
	char *dirs[1], *procsv[1], *parents[1];
	struct nsc_cg_watch w;
};

static char nsb_cg_stack[NSC_CG_STACK_SIZE] __attribute__((aligned(16)));

/* nsb_write_at writes v to path, relative to dirfd (AT_FDCWD: as is). */
static int nsb_write_at(int dirfd, const char *path, const char *v)
{
	size_t len = strlen(v);
	ssize_t n;
	int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = write(fd, v, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* nsb_cg_write writes v to dir/file. */
static int nsb_cg_write(const char *dir, const char *file, const char *v)
{
	char p[600];
	if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, file) >= sizeof p)
		return -1;
	return nsb_write_at(AT_FDCWD, p, v);
}

/* nsb_has_word reports whether list (separated by any of sep) holds w. */
static int nsb_has_word(const char *list, const char *sep, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = list; *p;) {
		size_t k = strcspn(p, sep);
		if (k == n && strncmp(p, w, n) == 0)
			return 1;
		p += k;
		if (*p)
			p++;
	}
	return 0;
}

/* nsb_cg_mount finds the hierarchy of the pids controller as cgroup.Create
 * does: the first cgroup2 mount that offers it, else the first v1 mount of
 * it. Only mounts of a hierarchy's root ("/") without escapes are the fast
 * path's. */
static int nsb_cg_mount(struct nsb_cg *cg, char *mnt, size_t size)
{
	static char data[65536];
	char v1[512] = "", *line, *next;
	int found2 = 0;
	if (nsb_read_small(AT_FDCWD, "/proc/self/mountinfo", data, sizeof data, 1) < 0)
		return -1;
	for (line = data; line && *line && !found2; line = next) {
		char *fld[64];
		int n = 0, sep = -1;
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		for (char *p = strtok(line, " "); p && n < 64; p = strtok(0, " "))
			fld[n++] = p;
		for (int i = 0; i < n; i++)
			if (strcmp(fld[i], "-") == 0) {
				sep = i;
				break;
			}
		if (sep < 5 || n < sep + 4)
			continue;
		int is2 = strcmp(fld[sep + 1], "cgroup2") == 0;
		if (!is2 && strcmp(fld[sep + 1], "cgroup") != 0)
			continue;
		if (strchr(fld[4], '\\') || strlen(fld[4]) >= size)
			return -1;
		if (is2) {
			char ctl[512], p[600];
			snprintf(p, sizeof p, "%s/cgroup.controllers", fld[4]);
			if (nsb_read_small(AT_FDCWD, p, ctl, sizeof ctl, 1) >= 0 && nsb_has_word(ctl, " \n", "pids")) {
				if (strcmp(fld[3], "/") != 0)
					return -1;
				strcpy(mnt, fld[4]);
				found2 = 1;
			}
		} else if (!v1[0] && nsb_has_word(fld[sep + 3], ",", "pids")) {
			if (strcmp(fld[3], "/") != 0)
				return -1;
			strcpy(v1, fld[4]);
		}
	}
	cg->v2 = found2;
	if (!found2) {
		if (!v1[0])
			return -1; /* no hierarchy offers pids: Go says so */
		strcpy(mnt, v1);
	}
	return 0;
}

/* nsb_cg_own is the caller's group in the v1 pids hierarchy, from
 * /proc/self/cgroup (cgroup's ownPath). */
static int nsb_cg_own(char *own, size_t size)
{
	char data[4096];
	if (nsb_read_small(AT_FDCWD, "/proc/self/cgroup", data, sizeof data, 1) < 0)
		return -1;
	for (char *line = data, *next; line && *line; line = next) {
		char *a, *b;
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		if (!(a = strchr(line, ':')) || !(b = strchr(a + 1, ':')))
			continue;
		*b = 0;
		if (nsb_has_word(a + 1, ",", "pids")) {
			if (strlen(b + 1) >= size || strstr(b + 1, "/.") || strstr(b + 1, "//"))
				return -1; /* not clean: Go's filepath.Join */
			strcpy(own, b + 1);
			return 0;
		}
	}
	return -1;
}

/* nsb_cg_undo removes what nsb_cg_create made before the watcher exists. */
static void nsb_cg_undo(struct nsb_cg *cg)
{
	if (cg->join_fd >= 0)
		close(cg->join_fd);
	if (cg->dir_fd >= 0)
		close(cg->dir_fd);
	cg->join_fd = cg->dir_fd = -1;
	if (cg->dir[0])
		rmdir(cg->dir);
	if (cg->parent[0])
		rmdir(cg->parent); /* EBUSY while another sandbox is in it */
}

/* nsb_cg_unified reports whether /sys/fs/cgroup is a cgroup2 file system
 * (a v2 machine, whose pids group must exist before the clone), without
 * reading mountinfo: it only picks the order of run's setup. */
static int nsb_cg_unified(void)
{
	struct statfs st;
	return statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == 0x63677270; /* CGROUP2_SUPER_MAGIC */
}

/* nsb_cg_plan finds the hierarchy (cg->v2 says which) and names the group
 * of --pids under the default parent, as cgroup.Create does, without
 * making anything yet: on v1 run's early helper makes it (late_ns.c). -1:
 * Go's. */
static int nsb_cg_plan(struct nsb_cg *cg, long long pids)
{
	char mnt[512], own[512] = "";
	unsigned char rnd[4];
	memset(cg, 0, sizeof *cg);
	cg->join_fd = cg->dir_fd = cg->wfd = -1;
	if (!nsc_cg_watch || !nsc_cg_cleanup || nsb_cg_mount(cg, mnt, sizeof mnt) < 0)
		return -1;
	if (!cg->v2 && nsb_cg_own(own, sizeof own) < 0)
		return -1;
	if (strcmp(own, "/") == 0)
		own[0] = 0;
	if ((size_t)snprintf(cg->parent, sizeof cg->parent, "%s%s/%s", mnt, own, NSB_CG_DEFAULT_PARENT) >= sizeof cg->parent ||
	    getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd ||
	    (size_t)snprintf(cg->dir, sizeof cg->dir, "%s/%s%d-%02x%02x%02x%02x", cg->parent, NSB_CG_NAME_PREFIX,
			     (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3]) >= sizeof cg->dir) {
		cg->parent[0] = cg->dir[0] = 0;
		return -1;
	}
	snprintf(cg->num, sizeof cg->num, "%lld", pids);
	snprintf(cg->procs, sizeof cg->procs, "%s/%s", cg->dir, NSB_CG_PROCS);
	snprintf(cg->max, sizeof cg->max, "%s/%s", cg->dir, NSB_CG_PIDS_MAX);
	snprintf(cg->join, sizeof cg->join, "%s/%s", cg->dir, cg->v2 ? NSB_CG_JOIN_V2 : NSB_CG_JOIN_V1);
	if (cg->v2)
		snprintf(cg->kill, sizeof cg->kill, "%s/%s", cg->dir, NSB_CG_KILL_V2);
	cg->dirs[0] = cg->dir;
	cg->procsv[0] = cg->procs;
	cg->parents[0] = cg->parent;
	cg->w.n = 1;
	cg->w.dirs = cg->dirs;
	cg->w.procs = cg->procsv;
	cg->w.kill = cg->v2 ? cg->kill : 0;
	cg->w.freeze = 0; /* a PID namespace: its init's end kills the rest */
	cg->w.np = 1;
	cg->w.parents = cg->parents;
	return 0;
}

/* nsb_cg_create makes the planned group (v2: the controller enabled on
 * the way down), opens its join file and starts the watcher that removes
 * it. -1: nothing is left, Go does it again (and retries a parent a
 * concurrent removal took). */
static int nsb_cg_create(struct nsb_cg *cg)
{
	char mnt[512];
	int p[2];
	if (mkdir(cg->parent, 0755) < 0 && errno != EEXIST) {
		cg->parent[0] = cg->dir[0] = 0;
		return -1;
	}
	if (cg->v2) {
		/* The mount is the parent's parent (no own group on v2). */
		size_t n = strlen(cg->parent) - strlen(NSB_CG_DEFAULT_PARENT) - 1;
		memcpy(mnt, cg->parent, n);
		mnt[n] = 0;
		if (nsb_cg_write(mnt, NSB_CG_SUBTREE_CONTROL, "+pids") < 0 ||
		    nsb_cg_write(cg->parent, NSB_CG_SUBTREE_CONTROL, "+pids") < 0) {
			cg->dir[0] = 0;
			nsb_cg_undo(cg);
			return -1;
		}
	}
	if (mkdir(cg->dir, 0755) < 0) {
		cg->dir[0] = 0;
		nsb_cg_undo(cg);
		return -1;
	}
	{
		/* The group's files through one fd of its folder (one path walk;
		 * on v2 it is the fd the child is cloned into). */
		int dfd = openat(AT_FDCWD, cg->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || nsb_write_at(dfd, NSB_CG_PIDS_MAX, cg->num) < 0 ||
		    (cg->join_fd = openat(dfd, cg->v2 ? NSB_CG_JOIN_V2 : NSB_CG_JOIN_V1, O_WRONLY | O_CLOEXEC)) < 0) {
			if (dfd >= 0)
				close(dfd);
			nsb_cg_undo(cg);
			return -1;
		}
		if (cg->v2)
			cg->dir_fd = dfd;
		else
			close(dfd);
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		nsb_cg_undo(cg);
		return -1;
	}
	cg->w.rd = p[0];
	int pid = nsc_cg_watch(&cg->w, nsb_cg_stack, sizeof nsb_cg_stack);
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		nsb_cg_undo(cg);
		return -1;
	}
	cg->watcher = pid;
	cg->wfd = p[1];
	return 0;
}

/* nsb_cg_finish closes the watcher's pipe and waits until it has removed
 * the group (as nsclone's Wait does), so the group is gone when nsbox exits. */
static void nsb_cg_finish(struct nsb_cg *cg)
{
	int st;
	if (cg->join_fd >= 0)
		close(cg->join_fd);
	if (cg->dir_fd >= 0)
		close(cg->dir_fd);
	cg->join_fd = cg->dir_fd = -1;
	if (cg->wfd < 0)
		return;
	close(cg->wfd);
	cg->wfd = -1;
	while (waitpid(cg->watcher, &st, __WALL) < 0 && errno == EINTR)
		;
}
