/*
 * run_fast.c: the C fast path of `nsbox run`, run from an ELF constructor
 * before the Go runtime starts (as runc's nsexec does), so a plain
 * `nsbox run` pays neither the Go runtime's start nor its page faults.
 *
 * The Go code (cmd/nsbox/run.go) stays the one source of truth for the flags
 * of run: this file accepts only a subset of plain invocations, and anything
 * else (an unknown or unusual flag, --user, --netns, --dhcp, global flags
 * other than -n with --bridge, a name it cannot resolve, any setup failure)
 * returns to Go, which parses everything again and reports the error. A
 * static network (-n NS, --net --bridge --addr --gateway --ifname) is wired
 * by net_fast.c while the child waits at the go-ahead. Go's FuzzRunFastParity
 * checks that whatever this parser accepts, Go's parser accepts with the same
 * spec. NSBOX_NO_FASTPATH=1 turns this path off.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <stdio.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clone_shim.h" /* with nsbox_gen.h: the rules generated from Go */
#include "nsinit_elf.h"
#include "nsb_file.h" /* nsb_read_small */
#include "net_fast.c"
#include "nft_fast.c"
#include "pool_fast.c"
#include "netns_fast.c"
#include "state_fast.c"

/* The shim itself is nsclone's (csrc/clone_shim.c, compiled once, into
 * nsclone, which cmd/nsbox links): one copy in the binary. The reference is
 * weak so that cgo's link check of cmd/nsbox's own C objects accepts it
 * unresolved; in nsbox it always resolves (without it, Go runs the command). */
#pragma weak nsc_spawn

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* The most ordered flags (--bind, --ro-bind, --tmpfs, --dev; --clearenv,
 * --setenv, --unsetenv) of each list the fast path takes; more go to Go. */
#define NSB_MAX_ORDERED 32

/* nsb_fsarg is one --bind, --ro-bind, --tmpfs or --dev as Go's parseFSArg
 * makes it (an nsclone.FSMount): kind is its flag's NSB_F_* id. */
struct nsb_fsarg {
	int kind;
	const char *source, *dest; /* dest: absolute and clean */
	unsigned long long size;   /* --tmpfs size=, 0: none */
	unsigned int mode;         /* --tmpfs mode= (chmod octal), 0: none */
	int file;                  /* a bind whose source is not a directory */
};

/* nsb_envop is one --clearenv, --setenv or --unsetenv. */
struct nsb_envop {
	int id;
	const char *value;
};

/* The most supplementary groups of --sandbox's user the fast path sets. */
#define NSB_MAX_GROUPS 32

/* nsb_lim is the limits' part of the parsed command line (limits_fast.c). */
struct nsb_lim {
	int caps_set;            /* a --cap-* flag or --sandbox was given */
	unsigned long long keep; /* the capabilities kept */
	int cap_last;
	int ambient;             /* raise keep as ambient (a non-root payload) */
	int nnp;
	int seccomp_default;     /* load nsb_seccomp_default */
	long long pids;          /* 0: no group */
	int loopback_up;
};


/* nsb_fast is the outcome of parsing: the spawn spec fields of run. */
struct nsb_fast {
	unsigned long ns_flags;
	unsigned long propagation;
	int propagation_set; /* --propagation given */
	int mount_proc, init;
	const char *hostname;
	int set_uid, set_gid;
	unsigned int uid, gid;
	int args_start; /* argv index of run's first argument (2, or 4 after -n NS) */
	int cmd_index; /* argv index of the command; argc if none */
	int has_net;   /* --bridge: net holds the static network */
	struct nsb_net net;
	struct nsb_nft nft; /* --publish (nft_fast.c); nft.npub 0 without */
	int has_pool; /* --pool: pool holds the claim (pool_fast.c) */
	struct nsb_pool pool;
	const char *path; /* resolved command (points into buf) */
	char buf[4096];

	/* The view and the environment (Go's run_view.go). */
	int view;          /* --rootfs, --ro-root or an fs step: Go's hasView */
	const char *root;  /* --rootfs/--root: absolute and clean, a directory */
	int ro_root;
	const char *chdir; /* --chdir/--wd: absolute */
	int nfs;
	struct nsb_fsarg fs[NSB_MAX_ORDERED];
	int nenvop;
	struct nsb_envop envop[NSB_MAX_ORDERED];
	char **env;        /* the payload's environment: envp, or malloc'd (env_owned) */
	int env_owned;
	size_t nstr;
	char str[8192];    /* the SRC and DEST halves of SRC:DEST */

	struct nsb_watch watch; /* --name, --status-fd, --pidfile (state_fast.c) */
	/* --sandbox's user (limits_fast.c's nsb_user): its groups. */
	int ngroups;
	unsigned int groups[NSB_MAX_GROUPS];
	/* The limits (limits_fast.c). */
	int sandbox;
	struct nsb_lim lim;
};

static int nsb_streq(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* nsb_parse_id parses a decimal id below 2^32-1; 0 on success. */
static int nsb_parse_id(const char *s, unsigned int *out)
{
	unsigned long long v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
		if (v >= 0xffffffffULL)
			return -1;
	}
	*out = (unsigned int)v;
	return 0;
}

/* nsb_lookup resolves a name in an /etc/passwd-style file (name:x:id:...). */
static int nsb_lookup(const char *file, const char *name, unsigned int *out)
{
	static char data[65536];
	size_t nlen = strlen(name);
	if (nsb_read_small(AT_FDCWD, file, data, sizeof data, 1) <= 0)
		return -1; /* empty, error or too big: let Go do it */
	for (char *line = data; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
			char *id = strchr(line + nlen + 1, ':');
			if (!id)
				return -1;
			char *end = strchr(++id, ':');
			if (end)
				*end = 0;
			return nsb_parse_id(id, out);
		}
		line = next;
	}
	return -1;
}

/* nsb_id takes a number, or a name that looks like one of Go's isName. */
static int nsb_id(const char *v, const char *file, unsigned int *out)
{
	if (nsb_parse_id(v, out) == 0)
		return 0;
	if (!*v || (*v >= '0' && *v <= '9') || *v == '-' || *v == '+' || strlen(v) > 256 || strpbrk(v, ": \t\n/"))
		return -1;
	return nsb_lookup(file, v, out);
}

/* nsb_caller_path maps p, a path as the payload will see it, to where this
 * process finds it now, as nsclone's callerPath: through the last step of
 * the view that covers it (a bind's source), else under the root. It
 * returns 1 where p is on a fresh tmpfs or /dev (no program there yet), -1
 * when out is too small. */
static int nsb_caller_path(const struct nsb_fast *f, const char *p, char *out, size_t outsz)
{
	const char *pre = "", *rest = p;
	if (f->view) {
		int k;
		for (k = f->nfs - 1; k >= 0; k--) {
			const struct nsb_fsarg *m = &f->fs[k];
			size_t dl = strlen(m->dest);
			if (strncmp(p, m->dest, dl) != 0 || (p[dl] && p[dl] != '/'))
				continue;
			if (m->kind != NSB_F_BIND && m->kind != NSB_F_RO_BIND)
				return 1;
			pre = m->source;
			rest = p + dl;
			break;
		}
		if (k < 0 && f->root)
			pre = f->root;
	}
	if (strlen(pre) + strlen(rest) + 1 > outsz)
		return -1;
	strcpy(out, pre);
	strcat(out, rest);
	return 0;
}

/* nsb_resolve finds cmd like nsclone's resolvePath (Spec.LookPath): the
 * first executable regular file in the PATH of envp, looked for through
 * f's view. Anything else returns -1 (Go reports it). */
static int nsb_resolve(const char *cmd, char *const *envp, struct nsb_fast *f)
{
	static char host[4096];
	const char *path = NSB_DEFAULT_PATH;
	if (strchr(cmd, '/')) {
		f->path = cmd;
		return 0;
	}
	for (char *const *e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5; /* the last PATH= wins, as in Go */
	for (const char *p = path;;) {
		const char *end = strchr(p, ':');
		size_t dl = end ? (size_t)(end - p) : strlen(p);
		const char *dir = dl ? p : ".";
		if (!dl)
			dl = 1;
		if (dl + 1 + strlen(cmd) + 1 <= sizeof f->buf) {
			struct stat st;
			int where;
			memcpy(f->buf, dir, dl);
			f->buf[dl] = '/';
			strcpy(f->buf + dl + 1, cmd);
			if ((where = nsb_caller_path(f, f->buf, host, sizeof host)) < 0)
				return -1;
			if (where == 0 && stat(host, &st) == 0) {
				if (S_ISREG(st.st_mode) && access(host, X_OK) == 0) {
					f->path = f->buf;
					return 0;
				}
				return -1; /* a candidate that cannot run: Go's */
			}
		}
		if (!end)
			return -1;
		p = end + 1;
	}
}

/* nsb_clean_abs reports whether p is an absolute path that Go's path.Clean
 * leaves as it is (no empty, "." or ".." component, no trailing '/'); the
 * fast path takes only those, so that it never re-spells Clean. */
static int nsb_clean_abs(const char *p)
{
	if (p[0] != '/')
		return 0;
	if (!p[1])
		return 1;
	for (const char *c = p + 1;;) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		if (!end)
			return 1;
		c = end + 1;
	}
}

/* nsb_strdup_n copies n bytes of s into f's string space; NULL when full. */
static const char *nsb_strdup_n(struct nsb_fast *f, const char *s, size_t n)
{
	char *out;
	if (n + 1 > sizeof f->str - f->nstr)
		return 0;
	out = f->str + f->nstr;
	memcpy(out, s, n);
	out[n] = 0;
	f->nstr += n + 1;
	return out;
}

/* nsb_digits parses a decimal (base 10) or octal (base 8) number of at least
 * one digit, as strconv.ParseUint does with an explicit base (no sign, no
 * prefix, no '_'), refusing values above max; 0 on success. */
static int nsb_digits(const char *s, size_t n, unsigned base, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;
	if (n == 0)
		return -1;
	for (size_t k = 0; k < n; k++) {
		unsigned d = (unsigned)(s[k] - '0');
		if (s[k] < '0' || d >= base || v > (max - d) / base)
			return -1;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

/* nsb_tmpfs_opts parses --tmpfs's size=BYTES[k|m|g] and mode=OCTAL, comma
 * separated (Go's parseFSArg and parseSize); -1 for anything else. */
static int nsb_tmpfs_opts(const char *opts, struct nsb_fsarg *m)
{
	for (;;) {
		const char *end = strchr(opts, ',');
		size_t n = end ? (size_t)(end - opts) : strlen(opts);
		const char *eq = memchr(opts, '=', n);
		size_t kl = eq ? (size_t)(eq - opts) : n;
		const char *v = eq ? eq + 1 : opts + n;
		size_t vl = (size_t)(opts + n - v);
		unsigned long long x;
		if (kl == 4 && memcmp(opts, "size", 4) == 0) {
			unsigned long long mult = 1;
			if (vl > 0) {
				switch (v[vl - 1]) {
				case 'k': case 'K': mult = 1ULL << 10; vl--; break;
				case 'm': case 'M': mult = 1ULL << 20; vl--; break;
				case 'g': case 'G': mult = 1ULL << 30; vl--; break;
				}
			}
			if (nsb_digits(v, vl, 10, ~0ULL, &x) < 0 || x == 0 || x > ~0ULL / mult)
				return -1;
			m->size = x * mult;
		} else if (kl == 4 && memcmp(opts, "mode", 4) == 0) {
			if (nsb_digits(v, vl, 8, 07777, &x) < 0)
				return -1;
			m->mode = (unsigned)x;
		} else {
			return -1;
		}
		if (!end)
			break;
		opts = end + 1;
	}
	return 0;
}

/* nsb_fs_parse makes one --bind, --ro-bind, --tmpfs or --dev into f's next
 * step as parseFSArg and viewSpec do, for absolute clean paths only: a
 * relative SRC (filepath.Abs), a DEST that Clean would change, a missing
 * source and every error are Go's. */
static int nsb_fs_parse(struct nsb_fast *f, int id, const char *v)
{
	struct nsb_fsarg *m;
	struct stat st;
	if (f->nfs == NSB_MAX_ORDERED)
		return -1;
	m = &f->fs[f->nfs];
	memset(m, 0, sizeof *m);
	m->kind = id;
	if (id == NSB_F_DEV) {
		m->dest = "/dev";
	} else if (id == NSB_F_BIND || id == NSB_F_RO_BIND) {
		const char *colon = strrchr(v, ':'); /* DEST follows the last ':' */
		m->source = m->dest = v;
		if (colon && (!(m->source = nsb_strdup_n(f, v, (size_t)(colon - v))) || !(m->dest = nsb_strdup_n(f, colon + 1, strlen(colon + 1)))))
			return -1;
		if (!nsb_clean_abs(m->source) || stat(m->source, &st) < 0)
			return -1;
		m->file = !S_ISDIR(st.st_mode);
	} else if (id == NSB_F_TMPFS) {
		const char *colon = strchr(v, ':'); /* DEST:OPTIONS */
		m->dest = v;
		if (colon) {
			if (!(m->dest = nsb_strdup_n(f, v, (size_t)(colon - v))) || (colon[1] && nsb_tmpfs_opts(colon + 1, m) < 0))
				return -1;
		}
	} else {
		return -1;
	}
	if (!nsb_clean_abs(m->dest) || nsb_streq(m->dest, "/"))
		return -1;
	f->nfs++;
	return 0;
}

/* nsb_view_parse takes the view's and the environment's flags as Go's
 * checkView and viewSpec do, for the forms it knows; -1 leaves the command
 * line to Go. */
static int nsb_view_parse(struct nsb_fast *f, const char **val, const int *set, const struct nsb_envop *ordered, int n)
{
	struct stat st;
	if ((f->root = val[NSB_F_ROOTFS])) {
		if (!nsb_clean_abs(f->root) || stat(f->root, &st) < 0 || !S_ISDIR(st.st_mode))
			return -1;
	}
	f->ro_root = set[NSB_F_RO_ROOT];
	if ((f->chdir = val[NSB_F_CHDIR]) && f->chdir[0] != '/')
		return -1;
	for (int k = 0; k < n; k++) {
		int id = ordered[k].id;
		const char *v = ordered[k].value;
		if (nsb_run_flags[id].ordered == 1) {
			if (nsb_fs_parse(f, id, v) < 0)
				return -1;
			continue;
		}
		if (id == NSB_F_SETENV) {
			const char *eq = strchr(v, '=');
			if (!eq || eq == v)
				return -1;
		} else if (id == NSB_F_UNSETENV) {
			if (strchr(v, '='))
				return -1;
		}
		if (f->nenvop == NSB_MAX_ORDERED)
			return -1;
		f->envop[f->nenvop++] = ordered[k];
	}
	f->view = f->root || f->ro_root || f->nfs > 0;
	return 0;
}

/* nsb_env_key_is reports whether the environment entry kv (NAME=VALUE, or
 * a bare word) names name, which ends at len. */
static int nsb_env_key_is(const char *kv, const char *name, size_t len)
{
	return strncmp(kv, name, len) == 0 && (kv[len] == '=' || kv[len] == 0);
}

/* nsb_env_unset drops every entry of env[0..*n) named name[0..len). */
static void nsb_env_unset(char **env, int *n, const char *name, size_t len)
{
	int out = 0;
	for (int k = 0; k < *n; k++)
		if (!nsb_env_key_is(env[k], name, len))
			env[out++] = env[k];
	*n = out;
}

/* nsb_env_apply makes f->env: envp with --clearenv, --setenv and --unsetenv
 * applied in order, as Go's applyEnv; -1 if out of memory. */
static int nsb_env_apply(struct nsb_fast *f, char *const *envp)
{
	int n = 0, max;
	f->env = (char **)envp;
	if (f->nenvop == 0)
		return 0;
	while (envp[n])
		n++;
	max = n + f->nenvop + 1;
	if (!(f->env = malloc((size_t)max * sizeof *f->env)))
		return -1;
	f->env_owned = 1;
	memcpy(f->env, envp, (size_t)n * sizeof *f->env);
	for (int k = 0; k < f->nenvop; k++) {
		const char *v = f->envop[k].value;
		switch (f->envop[k].id) {
		case NSB_F_CLEARENV:
			n = 0;
			break;
		case NSB_F_SETENV:
			nsb_env_unset(f->env, &n, v, (size_t)(strchr(v, '=') - v));
			f->env[n++] = (char *)v;
			break;
		case NSB_F_UNSETENV:
			nsb_env_unset(f->env, &n, v, strlen(v));
			break;
		}
	}
	f->env[n] = 0;
	return 0;
}

/* nsb_fast_free releases what nsb_fast_parse allocated. */
static void nsb_fast_free(struct nsb_fast *f)
{
	if (f->env_owned)
		free(f->env);
	f->env = 0;
	f->env_owned = 0;
}

#include "limits_fast.c"
#include "late_ns.c"

/* nsb_flag_lookup finds a word of the form --name or -x in run's flag table
 * (generated from Go's runFlags); -1 for anything else, --name=value too. */
static int nsb_flag_lookup(const char *a)
{
	for (int id = 0; id < NSB_RUN_NFLAGS; id++) {
		const struct nsb_run_flag *f = &nsb_run_flags[id];
		if ((a[1] == '-' && nsb_streq(a + 2, f->name)) || (f->shorthand && a[1] == f->shorthand && !a[2]))
			return id;
	}
	return -1;
}

/* nsb_fast_parse parses `nsbox run ARGS` or `nsbox -n NS run ARGS` by
 * walking run's flag table. It returns 0 when the fast path can run it, -1
 * when Go must (a flag the table does not mark fast, a usage error, a name
 * it cannot resolve: Go parses everything again and reports). */
static int nsb_fast_parse(int argc, char **argv, struct nsb_fast *f)
{
	int set[NSB_RUN_NFLAGS] = {0};
	const char *val[NSB_RUN_NFLAGS] = {0};
	const char *bridge_ns = 0;
	int i, id, any_ns = 0;
	struct nsb_envop ordered[2 * NSB_MAX_ORDERED + NSB_SANDBOX_NFS], caps[NSB_MAX_ORDERED];
	int nordered = 0, ncaps = 0, npub = 0;
	const char *pub[NSB_MAX_PUBLISH + 1];

	memset(f, 0, sizeof *f);
	f->watch.status_fd = f->watch.dirfd = -1;
	f->net.fd = -1;
	f->nft.fd = f->nft.nsfd = -1;
	f->pool.conn = f->pool.netns = f->pool.resolv = -1;
	i = 2;
	if (argc >= 4 && nsb_streq(argv[1], "-n") && nsb_streq(argv[3], "run")) {
		bridge_ns = argv[2];
		if (!*bridge_ns)
			return -1; /* -n "": Go refuses it */
		i = 4;
	} else if (argc < 2 || !nsb_streq(argv[1], "run")) {
		return -1;
	}
	f->args_start = i;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (nsb_streq(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || !a[1])
			break; /* the command ("-" is one too) */
		if ((id = nsb_flag_lookup(a)) < 0 || !nsb_run_flags[id].fast)
			return -1;
		const char *v = 0;
		if (nsb_run_flags[id].kind == NSB_KIND_VALUE) {
			if (++i >= argc || !*argv[i])
				return -1; /* missing or empty: Go says so (exit 2) */
			v = argv[i];
		}
		if (nsb_run_flags[id].ordered == 4) {
			/* --publish: repeatable, in the order typed. */
			if (npub > NSB_MAX_PUBLISH)
				return -1;
			pub[npub++] = v;
		} else if (nsb_run_flags[id].ordered == 3) {
			/* --cap-drop, --cap-add, --sandbox: in the order typed. */
			if (ncaps == NSB_MAX_ORDERED)
				return -1;
			caps[ncaps].id = id;
			caps[ncaps++].value = v;
		} else if (nsb_run_flags[id].ordered) {
			/* --bind, --setenv...: kept in the order typed. */
			if (nordered == 2 * NSB_MAX_ORDERED)
				return -1;
			ordered[nordered].id = id;
			ordered[nordered++].value = v;
		}
		/* An alias (--root, --wd) sets its flag's value; the last wins. */
		set[nsb_run_flags[id].slot] = 1;
		if (v)
			val[nsb_run_flags[id].slot] = v;
	}
	f->cmd_index = i;

	/* --sandbox first, as runOptions.check's applySandbox: its flags, the
	 * values the user did not give, its view's steps before the user's. */
	if ((f->sandbox = set[NSB_F_SANDBOX])) {
		for (id = 0; id < NSB_SANDBOX_NON; id++)
			set[nsb_sandbox_on[id]] = 1;
		if (!val[NSB_F_NETNS] && !val[NSB_F_POOL])
			set[NSB_F_NET] = 1;
		if (!val[NSB_F_UID])
			val[NSB_F_UID] = NSB_SANDBOX_UID;
		if (!val[NSB_F_GID])
			val[NSB_F_GID] = NSB_SANDBOX_GID;
		if (!val[NSB_F_SECCOMP])
			val[NSB_F_SECCOMP] = NSB_SANDBOX_SECCOMP;
		if (!val[NSB_F_PIDS])
			val[NSB_F_PIDS] = NSB_SANDBOX_PIDS;
		if (NSB_SANDBOX_NO_NEW_PRIVS)
			set[NSB_F_NO_NEW_PRIVS] = 1;
		memmove(ordered + NSB_SANDBOX_NFS, ordered, (size_t)nordered * sizeof *ordered);
		for (id = 0; id < NSB_SANDBOX_NFS; id++) {
			ordered[id].id = nsb_sandbox_fs[id].id;
			ordered[id].value = nsb_sandbox_fs[id].value;
		}
		nordered += NSB_SANDBOX_NFS;
	}

	/* The rules of runOptions.check, for this subset, in its order: the
	 * walkthrough's namespaces when none is asked for, then what given
	 * flags imply. */
	for (id = 0; id < NSB_RUN_NFLAGS; id++)
		any_ns |= set[id] && nsb_run_flags[id].clone;
	if (!any_ns)
		set[NSB_F_IPC] = set[NSB_F_PID] = set[NSB_F_MOUNT] = 1;
	if (nsb_view_parse(f, val, set, ordered, nordered) < 0)
		return -1;
	if (f->view)
		set[NSB_F_MOUNT] = 1; /* a view needs its own mount namespace */
	if ((set[NSB_F_MOUNT_PROC] && set[NSB_F_NO_MOUNT_PROC]) || (set[NSB_F_INIT] && set[NSB_F_NO_INIT]))
		return -1;
	if (set[NSB_F_MOUNT_PROC] && !set[NSB_F_PID])
		return -1;
	for (id = 0; id < NSB_RUN_NFLAGS; id++)
		for (int k = 0; set[id] && k < NSB_MAX_IMPLIES; k++)
			if (nsb_run_flags[id].implies[k] >= 0)
				set[nsb_run_flags[id].implies[k]] = 1;
	if (!set[NSB_F_MOUNT_PROC] && !set[NSB_F_NO_MOUNT_PROC] && set[NSB_F_PID] && set[NSB_F_MOUNT])
		set[NSB_F_MOUNT_PROC] = 1;
	if (!set[NSB_F_INIT] && !set[NSB_F_NO_INIT] && set[NSB_F_PID])
		set[NSB_F_INIT] = 1;
	if (val[NSB_F_PROPAGATION]) {
		const char *prop = val[NSB_F_PROPAGATION];
		if (!set[NSB_F_MOUNT])
			return -1;
		if (nsb_streq(prop, "private"))
			f->propagation = MS_REC | MS_PRIVATE;
		else if (nsb_streq(prop, "slave"))
			f->propagation = MS_REC | MS_SLAVE;
		else if (nsb_streq(prop, "shared"))
			f->propagation = MS_REC | MS_SHARED;
		else if (nsb_streq(prop, "unchanged"))
			f->propagation = 0;
		else
			return -1;
		f->propagation_set = 1;
		if (f->view && (f->propagation == 0 || (f->propagation & MS_SHARED)))
			return -1; /* nsclone refuses a view whose mounts could leak */
	} else if (set[NSB_F_MOUNT]) {
		f->propagation = MS_REC | MS_PRIVATE;
	}
	if ((f->hostname = val[NSB_F_HOSTNAME]) && strlen(f->hostname) > 64)
		return -1;
	if (val[NSB_F_GID]) {
		/* With a rootfs a name is the rootfs's (Go's etcFile): Go's. */
		if (f->root && nsb_parse_id(val[NSB_F_GID], &f->gid) < 0)
			return -1;
		if (nsb_id(val[NSB_F_GID], "/etc/group", &f->gid) < 0)
			return -1;
		f->set_gid = 1;
	}
	if (val[NSB_F_UID]) {
		/* A number (--uid's or --sandbox's), with the host's /etc
		 * (nsb_user); a name is Go's. */
		if (nsb_parse_id(val[NSB_F_UID], &f->uid) < 0)
			return -1;
		f->set_uid = 1; /* nsb_user in nsb_fast_parse_rest */
	}
	/* The network rules of runOptions.checkNetwork and
	 * nsnet.Config.Validate, for a static address only; -n needs --bridge. */
	if (val[NSB_F_BRIDGE] || val[NSB_F_ADDR] || val[NSB_F_GATEWAY] || val[NSB_F_IFNAME] || bridge_ns) {
		if (!val[NSB_F_BRIDGE] || !set[NSB_F_NET] ||
		    nsb_net_parse(&f->net, bridge_ns, val[NSB_F_BRIDGE], val[NSB_F_ADDR], val[NSB_F_GATEWAY], val[NSB_F_IFNAME]) < 0)
			return -1;
		f->has_net = 1;
	}
	/* --publish (runOptions.checkPoolFlags, parsePublish): with a static
	 * --bridge --addr only; with --pool, or any value C does not take
	 * exactly as Go, Go's. */
	if (npub && (!f->has_net || val[NSB_F_POOL] || nsb_nft_parse(&f->nft, pub, npub) < 0))
		return -1;
	/* --name, --status-fd, --pidfile (runOptions.check and watch). */
	if (nsb_watch_parse(&f->watch, val[NSB_F_NAME], val[NSB_F_STATUS_FD], val[NSB_F_PIDFILE]) < 0)
		return -1;
	/* --pool (runOptions.checkPoolFlags: not with --bridge); a view with
	 * it is left to Go, and so is a watched pool sandbox (its attachment
	 * is the pool's). */
	if (val[NSB_F_POOL]) {
		if (f->has_net || f->view || !nsb_pool_name_ok(val[NSB_F_POOL]) || nsb_watch_any(&f->watch))
			return -1;
		f->pool.name = val[NSB_F_POOL];
		f->has_pool = 1;
	}
	for (id = 0; id < NSB_RUN_NFLAGS; id++)
		if (set[id])
			f->ns_flags |= nsb_run_flags[id].clone;
	f->mount_proc = set[NSB_F_MOUNT_PROC];
	f->init = set[NSB_F_INIT];
	if (nsb_limits_parse(f, &f->lim, val, set, caps, ncaps) < 0)
		return -1;
	/* A named sandbox's record carries its group and limits for nsbox ps
	 * (Go's). */
	if (f->watch.name && f->lim.pids)
		return -1;
	return 0;
}

/* nsb_fast_parse_rest ends the parse: the user's entry in /etc (a numeric
 * --uid), the environment and the command's path. Apart from
 * nsb_fast_parse so that run's early helper starts before these reads;
 * nothing before them depends on what they find. */
static int nsb_fast_parse_rest(int argc, char **argv, char *const *envp, struct nsb_fast *f)
{
	if (f->set_uid && nsb_user(f) < 0)
		return -1;
	if (nsb_env_apply(f, envp) < 0)
		return -1;
	if (f->cmd_index < argc) {
		if (nsb_resolve(argv[f->cmd_index], f->env, f) < 0) {
			nsb_fast_free(f);
			return -1;
		}
	} else {
		const char *sh = getenv("SHELL");
		if (!sh || !*sh)
			sh = "/bin/sh";
		if (!strchr(sh, '/')) {
			nsb_fast_free(f);
			return -1;
		}
		f->path = sh;
	}
	return 0;
}

/* nsb_init_memfd returns a sealed memfd holding nsinit (see nsclone), or -1
 * (then the init is forked: cheap here, this process is tiny). */
static int nsb_init_memfd(void)
{
	const unsigned char *p = nsinit_elf;
	unsigned long left = nsinit_elf_len;
	int fd;

	if (!left)
		return -1;
	fd = (int)syscall(SYS_memfd_create, "nsbox-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_memfd_create, "nsbox-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		p += n;
		left -= (unsigned long)n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0 || fd < 3)
		goto fail; /* below 3 it would be taken for a stdio fd */
	return fd;
fail:
	close(fd);
	return -1;
}

/* Signal forwarding, one implementation for the fast path (here, before
 * the Go runtime) and for Go's spawn path of run and netns exec (through
 * run_fast.go): a handler that reads si_code, which Go's os/signal does not
 * show. A signal the terminal sent to the whole foreground process group
 * (SI_KERNEL) reached the payload, in that group too, already; any other
 * (kill from another process) is passed on. Until the child exists,
 * signals are kept and sent once it does. */
static const int nsb_fwd[NSB_NFWD] = NSB_FWD_SIGNALS;
static volatile pid_t nsb_child;
static volatile sig_atomic_t nsb_pending[65];
static struct sigaction nsb_fwd_old[NSB_NFWD];

static void nsb_forward(int sig, siginfo_t *info, void *uc)
{
	(void)uc;
	if (info && info->si_code == SI_KERNEL)
		return;
	if (nsb_child > 0)
		kill(nsb_child, sig);
	else
		nsb_pending[sig] = 1;
}

/* nsb_forward_install makes nsb_forward the handler of the forwarded
 * signals, keeping the old dispositions for nsb_forward_restore; it returns
 * how many. SA_ONSTACK
 * because in a Go process it may run on a Go thread's small stack. */
static int nsb_forward_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = nsb_forward;
	sa.sa_flags = SA_RESTART | SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	nsb_child = 0;
	for (int i = 0; i < NSB_NFWD; i++) {
		nsb_pending[nsb_fwd[i]] = 0;
		sigaction(nsb_fwd[i], &sa, &nsb_fwd_old[i]);
	}
	return NSB_NFWD;
}

/* nsb_forward_to sends the kept signals to pid and every later one. */
static void nsb_forward_to(pid_t pid)
{
	nsb_child = pid;
	for (int i = 0; i < NSB_NFWD; i++)
		if (nsb_pending[nsb_fwd[i]]) {
			nsb_pending[nsb_fwd[i]] = 0;
			kill(pid, nsb_fwd[i]);
		}
}

/* nsb_forward_restore puts the old dispositions back and stops forwarding;
 * it returns a bit set (1 << signal) of the signals kept and not sent. */
static unsigned long nsb_forward_restore(void)
{
	unsigned long kept = 0;
	for (int i = 0; i < NSB_NFWD; i++)
		sigaction(nsb_fwd[i], &nsb_fwd_old[i], 0);
	nsb_child = 0;
	for (int i = 0; i < NSB_NFWD; i++)
		if (nsb_pending[nsb_fwd[i]])
			kept |= 1UL << nsb_fwd[i];
	return kept;
}

/* nsb_forward_abandon stops forwarding before a fallback to Go: a signal
 * that came meanwhile gets its default action now (the dispositions are the
 * ones nsbox started with), before the Go runtime exists: no Go handler
 * could take it from here. */
static void nsb_forward_abandon(void)
{
	unsigned long kept = nsb_forward_restore();
	for (int i = 0; i < NSB_NFWD; i++)
		if (kept & (1UL << nsb_fwd[i]))
			raise(nsb_fwd[i]);
}

/* The C steps of a view, laid out as nsclone's layoutView does. */
#define NSB_MAX_FSOPS 160
struct nsb_view {
	struct nsc_fsop op[NSB_MAX_FSOPS];
	int fd[NSB_MAX_FSOPS];
	const char *ptr[2048]; /* the prefix and name arrays of every step */
	char str[32768];       /* their strings, the tmpfs options, the cwd */
	int nop, nptr;
	size_t nstr;
};

static char *nsb_view_str(struct nsb_view *v, size_t n)
{
	char *out;
	if (n > sizeof v->str - v->nstr)
		return 0;
	out = v->str + v->nstr;
	v->nstr += n;
	return out;
}

/* nsb_view_step adds one step at dest (absolute, clean, not "/"): its
 * components below the root as prefix[i] (components 0..i) and name[i]. */
static struct nsc_fsop *nsb_view_step(struct nsb_view *v, int kind, int flags, const char *source, const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = name && *name ? strlen(name) + 1 : 0;
	char *dest = nsb_view_str(v, dl + nl + 1), *names;
	struct nsc_fsop *op;
	int ncomp = 0;
	if (!dest || v->nop == NSB_MAX_FSOPS)
		return 0;
	memcpy(dest, dir, dl);
	if (nl) {
		dest[dl] = '/';
		memcpy(dest + dl + 1, name, nl - 1);
	}
	dest[dl + nl] = 0;
	for (const char *c = dest; *c; c++)
		ncomp += *c == '/';
	/* prefix[i] is dest+1 cut after component i; name[i] is component i. */
	/* Room for ncomp prefixes and the names, each at most dest's size. */
	if (v->nptr + 2 * (ncomp + 1) > (int)(sizeof v->ptr / sizeof v->ptr[0]) ||
	    !(names = nsb_view_str(v, (size_t)(ncomp + 1) * (dl + nl + 1))))
		return 0;
	op = &v->op[v->nop++];
	memset(op, 0, sizeof *op);
	op->kind = kind;
	op->flags = flags;
	op->source = source;
	op->ncomp = ncomp;
	op->prefix = v->ptr + v->nptr;
	op->name = v->ptr + v->nptr + ncomp + 1;
	{
		char *pre = names, *nm = names + (size_t)ncomp * (dl + nl + 1);
		const char *c = dest + 1;
		for (int i = 0; i < ncomp; i++) {
			const char *end = strchr(c, '/');
			size_t n = end ? (size_t)(end - c) : strlen(c);
			size_t pl = (size_t)(c + n - (dest + 1));
			memcpy(pre, dest + 1, pl);
			pre[pl] = 0;
			memcpy(nm, c, n);
			nm[n] = 0;
			v->ptr[v->nptr + i] = pre;
			v->ptr[v->nptr + ncomp + 1 + i] = nm;
			pre += pl + 1;
			nm += n + 1;
			c = end ? end + 1 : c + n;
		}
	}
	v->ptr[v->nptr + ncomp] = 0;
	v->ptr[v->nptr + 2 * ncomp + 1] = 0;
	v->nptr += 2 * (ncomp + 1);
	return op;
}

/* nsb_view_part adds the generated steps of a built-in part (nsb_dev_steps,
 * nsb_proc_steps from internal/abi) at dir. */
static int nsb_view_part(struct nsb_view *v, const struct nsb_fs_step *steps, int n, const char *dir)
{
	for (int k = 0; k < n; k++) {
		struct nsc_fsop *op = nsb_view_step(v, steps[k].kind, steps[k].flags, steps[k].source, dir, steps[k].name);
		if (!op)
			return -1;
		memcpy(op->opt, steps[k].opt, sizeof op->opt);
		op->attr = steps[k].attr;
	}
	return 0;
}

/* nsb_view_layout lays out f's view as nsclone's viewSteps and layoutView
 * do: /proc's steps first with a new /proc, then each step in order; with
 * a root and no --chdir, the caller's directory if it exists there, else /
 * (--chdir itself is set by the caller, view or not). */
static int nsb_view_layout(const struct nsb_fast *f, struct nsb_view *v, struct nsc_spec *s)
{
	/* Only the counts: each step is cleared as it is added and every fd
	 * is set by the child (nsc_fs_sources), so the 66 KiB of room are
	 * touched only as far as they are used (clearing them all faulted
	 * in 17 pages, about 0.03 ms). */
	v->nop = v->nptr = 0;
	v->nstr = 0;
	if (f->mount_proc && nsb_view_part(v, nsb_proc_steps, NSB_NPROC_STEPS, NSB_PROC_DIR) < 0)
		return -1;
	for (int k = 0; k < f->nfs; k++) {
		const struct nsb_fsarg *m = &f->fs[k];
		struct nsc_fsop *op;
		char *num;
		switch (m->kind) {
		case NSB_F_BIND:
		case NSB_F_RO_BIND:
			if (!(op = nsb_view_step(v, NSC_FS_BIND, (m->kind == NSB_F_RO_BIND ? NSC_FS_RDONLY : 0) | (m->file ? NSC_FS_FILE : 0), m->source, m->dest, 0)))
				return -1;
			break;
		case NSB_F_TMPFS:
			if (!(op = nsb_view_step(v, NSC_FS_NEW, 0, "tmpfs", m->dest, 0)) || !(num = nsb_view_str(v, 48)))
				return -1;
			op->attr = NSB_TMPFS_ATTR;
			op->opt[0] = "source";
			op->opt[1] = "tmpfs";
			op->opt[2] = "mode";
			snprintf(num, 24, "%o", m->mode ? m->mode : NSB_TMPFS_DEFAULT_MODE);
			op->opt[3] = num;
			if (m->size) {
				snprintf(num + 24, 24, "%llu", m->size);
				op->opt[4] = "size";
				op->opt[5] = num + 24;
			}
			break;
		case NSB_F_DEV:
			if (nsb_view_part(v, nsb_dev_steps, NSB_NDEV_STEPS, m->dest) < 0)
				return -1;
			break;
		default:
			return -1;
		}
	}
	s->view = 1;
	s->mount_proc = 0; /* /proc is the view's first step */
	s->root = f->root;
	s->ro_root = f->ro_root;
	s->nfsops = v->nop;
	s->fsops = v->nop ? v->op : 0;
	s->fs_fd = v->nop ? v->fd : 0;
	if (f->root && !f->chdir) {
		char *wd = nsb_view_str(v, 4096);
		s->dir = wd && getcwd(wd, 4096) ? wd : "/";
		s->dir_fallback = 1;
	}
	return 0;
}

/* nsb_fast_started fills the record of a watched run from f and the spawn
 * and writes it (state_fast.c's nsb_watch_started). */
static int nsb_fast_started(struct nsb_fast *f, const struct nsc_spec *s, const struct nsc_result *r)
{
	static char addr[24];
	struct nsb_rec rec;
	memset(&rec, 0, sizeof rec);
	rec.name = f->watch.name;
	rec.init_pid = r->pid;
	rec.nsbox_pid = (long)getpid();
	rec.cmd = s->argv;
	if (f->has_net) {
		uint32_t a = f->net.addr;
		snprintf(addr, sizeof addr, "%u.%u.%u.%u/%d", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, f->net.prefix);
		rec.bridge = f->net.bridge;
		rec.iface = f->net.ifname;
		rec.addr = addr;
	}
	return nsb_watch_started(&f->watch, &rec, f->init, f->ns_flags);
}

/* nsb_sort_ints sorts a few ints in place (insertion sort). */
static void nsb_sort_ints(int *a, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && a[j - 1] > a[j]; j--) {
			int t = a[j];
			a[j] = a[j - 1];
			a[j - 1] = t;
		}
}

/* nsb_fast_publish_hook is the spawn hook of a run with --publish: the
 * publish started before the clone must have succeeded (else the child is
 * killed before it ran anything and Go does everything again, nothing
 * having been added), then the network is wired. */
static int nsb_fast_publish_hook(uintptr_t ctx, int pid)
{
	struct nsb_fast *f = (struct nsb_fast *)ctx;
	if (nsb_nft_publish_wait(&f->nft) < 0)
		return -1;
	return nsb_net_hook((uintptr_t)&f->net, pid);
}

/* nsb_fast_run spawns and waits; it returns -1 (before any spawn, or after a
 * setup failure, undone at its label fallback) to let Go take over, else
 * exits. */
static int nsb_fast_run(int argc, char **argv, char **envp)
{
	static const int fds[3] = {0, 1, 2};
	static struct nsb_fast f;
	static struct nsb_view view;
	static struct nsc_mount resolv_mount;
	struct nsc_spec s;
	struct nsc_result r;
	char *shell_argv[2];
	static char scratch[48];
	char **init_argv = 0;
	int keep[9] = {0, 1, 2, -1, -1, -1, -1, -1, -1}, nkeep = 3, memfd = -1;
	static struct nsb_cg cg;
	static struct nsb_late late;
	int st, forwarding = 0, late_net, cg_early;

	/* Every fallback to Go goes through the one undo at the end: what
	 * nsb_fast_parse sets to "none" (the fds -1) and these start empty. */
	cg.join_fd = cg.dir_fd = cg.wfd = -1;
	late.pid = -1;
	if (nsb_fast_parse(argc, argv, &f) < 0)
		goto fallback;
	/* The bridge is checked before anything is spawned (nsnet.CheckBridge). */
	if (f.has_net && nsb_net_check_bridge(&f.net) < 0)
		goto fallback;
	if (f.has_pool && nsb_pool_claim(&f.pool) < 0)
		goto fallback;
	/* A new network namespace without a hook that wires it (--bridge) or
	 * a pool's, and a v1 pids group: the early helper makes them while
	 * the rest is set up (late_ns.c), started as early as it can be. On
	 * v2 the group must exist before the clone (CLONE_INTO_CGROUP): nsbox
	 * makes it below and the helper, for the namespace alone, starts after
	 * it (side by side with the namespace's creation the group's took 2-3
	 * times as long, timestamps, 200 runs). Which one it is comes from
	 * /sys/fs/cgroup's file system type (the plan's mountinfo read, after
	 * the helper's start, has the last word). */
	late_net = (f.ns_flags & CLONE_NEWNET) && !f.has_net && !f.has_pool;
	cg_early = f.lim.pids && !nsb_cg_unified();
	if ((late_net && !f.lim.pids) || cg_early) {
		if (nsb_late_start(&late, late_net ? CLONE_NEWNET : 0, late_net && f.lim.loopback_up, cg_early,
				   late_net && (f.view || cg_early)) < 0)
			goto fallback;
	}
	if (nsb_fast_parse_rest(argc, argv, envp, &f) < 0)
		goto fallback;
	if (f.lim.pids) {
		if (nsb_cg_plan(&cg, f.lim.pids) < 0)
			goto fallback;
		/* A v1 group is the helper's: if statfs said v2 but the plan
		 * found the pids hierarchy on v1 (a cgroup2 /sys/fs/cgroup with
		 * v1 pids mounted elsewhere), no helper makes it, and Go runs
		 * it rather than the payload going without its limit. */
		if (!cg.v2 && !cg_early)
			goto fallback;
		if (cg_early && nsb_late_group_named(&late, cg.v2 ? 0 : &cg) < 0)
			goto fallback;
	}
	memset(&s, 0, sizeof s);
	s.path = f.path;
	if (f.cmd_index < argc) {
		s.argv = argv + f.cmd_index;
	} else {
		shell_argv[0] = (char *)f.path;
		shell_argv[1] = 0;
		s.argv = shell_argv;
	}
	s.envp = f.env;
	s.ns_flags = f.ns_flags;
	s.propagation = f.propagation;
	s.mount_proc = f.mount_proc;
	if (f.view && nsb_view_layout(&f, &view, &s) < 0)
		goto fallback; /* (no claim is held: a view's mount namespace is Go's with --pool) */
	if (f.chdir)
		s.dir = f.chdir; /* with or without a view, as Go's Spec.Dir */
	if (f.hostname) {
		s.hostname = f.hostname;
		s.hostname_len = (int)strlen(f.hostname);
	}
	s.set_groups = f.set_uid || f.set_gid;
	s.ngroups = f.ngroups;
	s.groups = f.groups;
	s.set_uid = f.set_uid;
	s.uid = f.uid;
	s.set_gid = f.set_gid;
	s.gid = f.gid;
	s.nfds = 3;
	s.fds = fds;
	s.nkeep = 3;
	s.keep = fds;
	s.init = f.init;
	s.init_fd = -1;
	if (f.init && !(f.ns_flags & CLONE_NEWPID))
		s.pdeathsig = SIGKILL;
	if (f.has_net) {
		/* As run.go: the payload waits until its network is wired, and
		 * dies with nsbox (so its namespace and veth go too). */
		s.hook = nsb_net_hook;
		s.hook_ctx = (uintptr_t)&f.net;
		if (f.nft.npub) {
			s.hook = nsb_fast_publish_hook;
			s.hook_ctx = (uintptr_t)&f;
		}
		s.parent_death_sig = SIGKILL;
	}
	if (f.has_pool) {
		/* As run_pool.go's claim: the pool's namespace is joined, not
		 * made, and the payload dies with nsbox (whose death ends the
		 * claim, and the pool then destroys the namespace). */
		s.ns_flags &= ~(unsigned long)CLONE_NEWNET;
		s.njoin = 1;
		s.join_fd[0] = f.pool.netns;
		s.join_type[0] = CLONE_NEWNET;
		keep[nkeep++] = f.pool.netns; /* above 2 (stdio is open) */
		s.nkeep = nkeep;
		s.keep = keep;
		s.parent_death_sig = SIGKILL;
		if ((s.ns_flags & CLONE_NEWNS) && (st = nsb_pool_resolv(&f.pool, &resolv_mount)) <= 0) {
			if (st < 0)
				goto fallback;
			s.nmounts = 1;
			s.mounts = &resolv_mount;
		}
	}
	if (f.init && (memfd = nsb_init_memfd()) >= 0) {
		/* nsinit's argv: name, errfd, mask (the child fills both into
		 * scratch), flags, path, the payload's argv. */
		int n = 0;
		while (s.argv[n])
			n++;
		init_argv = malloc((size_t)(n + 6) * sizeof *init_argv);
		if (init_argv) {
			init_argv[0] = "nsbox-init";
			init_argv[1] = scratch;
			init_argv[2] = scratch + 24;
			init_argv[3] = (f.ns_flags & CLONE_NEWPID) ? "0" : "3";
			init_argv[4] = (char *)f.path;
			memcpy(init_argv + 5, s.argv, (size_t)(n + 1) * sizeof *init_argv);
			keep[nkeep++] = memfd;
			s.nkeep = nkeep;
			s.keep = keep;
			s.init_fd = memfd;
			s.init_argv = init_argv;
			s.init_scratch = scratch;
		}
	}
	/* The name is checked and held (the state folder's lock) right before
	 * the spawn, as Go's watch does; the record is written once the
	 * payload runs. */
	if (f.watch.name && (nsb_watch_fits(s.argv) < 0 || nsb_watch_reserve(&f.watch) < 0))
		goto fallback;

	/* The limits: the child applies them (limits.c), the group first. */
	s.lim.loopback_up = f.lim.loopback_up;
	if (f.lim.caps_set) {
		s.lim.caps_set = 1;
		s.lim.caps_keep = f.lim.keep;
		s.lim.cap_last = f.lim.cap_last;
		s.lim.caps_ambient = f.lim.ambient;
	}
	s.lim.no_new_privs = f.lim.nnp;
	if (f.lim.seccomp_default) {
		s.lim.seccomp_len = NSB_SECCOMP_DEFAULT_LEN;
		s.lim.seccomp_filter = nsb_seccomp_default;
	}
	if (f.lim.pids && cg.v2) {
		if (nsb_cg_create(&cg) < 0)
			goto fallback;
		s.lim.ncgroup = 1;
		s.lim.cgroup_fds = &cg.join_fd;
		s.lim.into_cgroup = 1; /* cloned into it */
		s.lim.cgroup_dirfd = cg.dir_fd;
		keep[nkeep++] = cg.join_fd;
		s.nkeep = nkeep;
		s.keep = keep;
		if (late_net && late.pid < 0 && nsb_late_start(&late, CLONE_NEWNET, f.lim.loopback_up, 0, 0) < 0)
			late_net = 0; /* made in the clone */
	}
	if (late.pid >= 0) {
		if (late_net) {
			s.ns_flags &= ~(unsigned long)CLONE_NEWNET;
			s.lim.loopback_up = 0; /* the helper's */
		}
		s.late_ns = &late.ns;
		keep[nkeep++] = late.ns.pidfd;
		keep[nkeep++] = late.ns.ready_fd;
		s.nkeep = nkeep;
		s.keep = keep;
	}
	nsb_sort_ints(keep, nkeep); /* the shim wants them sorted */

	/* --publish: the rules are added on a thread while the child is
	 * cloned; the hook waits for them before it wires the veth. */
	if (f.nft.npub)
		nsb_nft_publish_start(&f.nft, f.net.bridge_ns, f.net.bridge, f.net.addr);
	nsb_forward_install();
	forwarding = 1;
	/* A failed spawn reaped its child (a hook failure killed it before it
	 * ran anything): Go does everything again and reports. */
	if (!nsc_spawn || nsc_spawn(&s, &r) != NSC_OK)
		goto fallback;
	/* The child has joined (it exec'd): the helper leaves its network
	 * namespace now; without a group it ends and is reaped while the
	 * payload starts (a record, which names nsbox's children, never
	 * comes with a group here); with one it watches the group. */
	nsb_late_joined(&late, r.pidfd);
	nsb_net_close(&f.net);
	nsb_forward_to(r.pid);
	if (f.pool.netns >= 0) {
		close(f.pool.netns); /* the child holds it now */
		f.pool.netns = -1;
	}
	if (cg.join_fd >= 0) {
		close(cg.join_fd); /* the child has joined */
		cg.join_fd = -1;
	}
	if (cg.dir_fd >= 0) {
		close(cg.dir_fd);
		cg.dir_fd = -1;
	}
	if (nsb_watch_any(&f.watch) && nsb_fast_started(&f, &s, &r) < 0) {
		/* As Go: a sandbox whose record or pid file could not be
		 * written is killed (the message is printed). */
		kill(r.pid, SIGKILL);
		while (waitpid(r.pid, &st, __WALL) < 0 && errno == EINTR)
			;
		nsb_cg_finish(&cg);
		nsb_late_finish(&late);
		nsb_nft_unpublish(&f.nft, 0);
		nsb_watch_ended(&f.watch, 125);
		_exit(125);
	}
	{
		int lost = 0; /* waitpid failed: 125, after the same clean-up */
		while (waitpid(r.pid, &st, __WALL) < 0)
			if (errno != EINTR) {
				lost = 1;
				break;
			}
		nsb_pool_close(&f.pool); /* the payload ended: the slot goes back */
		nsb_nft_unpublish(&f.nft, 0); /* its socket's close is the exit's */
		nsb_cg_finish(&cg);     /* the group is gone before nsbox exits */
		nsb_late_finish(&late); /* (a v1 group is the helper's) */
		st = lost ? 125 : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
	}
	if (nsb_watch_any(&f.watch))
		nsb_watch_ended(&f.watch, st);
	_exit(st);

fallback:
	/* The one undo before Go takes over: Go starts from nothing, so all
	 * that this path took is given back (each step is a no-op for what
	 * it never took). */
	nsb_cg_finish(&cg); /* the watcher removes the group */
	nsb_late_finish(&late); /* the helper removes its group */
	nsb_net_close(&f.net);
	nsb_nft_publish_wait(&f.nft);
	nsb_nft_unpublish(&f.nft, 1); /* Go publishes again */
	nsb_pool_close(&f.pool);
	nsb_watch_release(&f.watch);
	if (memfd >= 0)
		close(memfd);
	free(init_argv);
	nsb_fast_free(&f);
	if (forwarding)
		nsb_forward_abandon();
	return -1;
}

/* nsb_stdio_open opens /dev/null on each of fds 0, 1 and 2 that is closed,
 * as the Go runtime does at its start (runtime.checkfds), before this path
 * opens any fd of its own: a pipe, socket or memfd must never land on a
 * stdio number that the payload would inherit as its stdio. It returns -1
 * if that cannot be done (Go then fails as it would anyway). */
static int nsb_stdio_open(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n < 0)
			return -1;
		if (n != fd) { /* a lower one was open after all: cannot happen */
			close(n);
			return -1;
		}
	}
	return 0;
}

#include "enter_fast.c"

/* nsb_cmp_names orders names as os.ReadDir does (bytewise). */
static int nsb_cmp_names(const void *a, const void *b) { return strcmp(a, b); }

/* nsb_fast_netns_exec runs `nsbox netns exec NS [--] CMD [ARG...]` through
 * the same start-up path as run: the spec of netns.ExecSpec (a new mount
 * namespace made rslave, NS's network namespace joined, sysfs on /sys, the
 * files of /etc/netns/NS bound over /etc), nsclone's nsc_spawn, the shared
 * signal forwarder, the payload's exit status. NS must be a name of
 * /run/netns that exists or a path; anything else, and any failure before
 * the payload ran, is left to Go. It returns only then. */
static void nsb_fast_netns_exec(int argc, char **argv, char **envp)
{
	static const int fds[3] = {0, 1, 2};
	static struct nsb_fast f; /* for nsb_resolve's buffer */
	static char nspath[sizeof NSB_NETNS_DIR + 256], etcdir[sizeof NSB_NETNS_ETC_DIR + 256];
	static char src[32][sizeof NSB_NETNS_ETC_DIR + 512], dst[32][8 + 256];
	static struct nsc_mount mounts[33];
	struct nsc_spec s;
	struct nsc_result r;
	struct stat st;
	const char *ns;
	int i, nm = 0, fd, keep[4] = {0, 1, 2, -1}, status;

	if (argc < 5 || !nsb_streq(argv[1], "netns") || !nsb_streq(argv[2], "exec"))
		return;
	ns = argv[3];
	i = 4;
	if (nsb_streq(argv[i], "--"))
		i++;
	if (i >= argc || !*argv[i])
		return;
	if (strchr(ns, '/')) {
		if (strlen(ns) >= sizeof nspath)
			return;
		strcpy(nspath, ns);
	} else {
		if (!nsb_name_ok(&nsb_rule_netns, ns))
			return;
		snprintf(nspath, sizeof nspath, NSB_NETNS_DIR "/%s", ns);
		if (lstat(nspath, &st) < 0)
			return; /* a pid, or no such namespace: Go */
	}
	memset(&f, 0, sizeof f);
	if (nsb_resolve(argv[i], envp, &f) < 0)
		return;

	/* netns.execMounts: sysfs on /sys, then /etc/netns/NS/x over /etc/x
	 * where /etc/x exists (a path has no /etc/netns entry). */
	mounts[nm].source = strrchr(ns, '/') ? strrchr(ns, '/') + 1 : ns;
	mounts[nm].target = "/sys";
	mounts[nm].fstype = "sysfs";
	mounts[nm].data = 0;
	mounts[nm].flags = 0;
	nm++;
	if (!strchr(ns, '/')) {
		DIR *d;
		struct dirent *e;
		snprintf(etcdir, sizeof etcdir, NSB_NETNS_ETC_DIR "/%s", ns);
		if ((d = opendir(etcdir))) {
			/* Go binds them in name order (os.ReadDir). */
			char names[32][256];
			int n = 0;
			while ((e = readdir(d))) {
				if (nsb_streq(e->d_name, ".") || nsb_streq(e->d_name, ".."))
					continue;
				if (n == 32 || strlen(e->d_name) >= 256) {
					closedir(d);
					return; /* unusual: Go */
				}
				strcpy(names[n++], e->d_name);
			}
			closedir(d);
			qsort(names, (size_t)n, sizeof names[0], nsb_cmp_names);
			for (int k = 0; k < n; k++) {
				snprintf(dst[nm - 1], sizeof dst[0], "/etc/%s", names[k]);
				if (stat(dst[nm - 1], &st) < 0)
					continue; /* nothing to bind over */
				snprintf(src[nm - 1], sizeof src[0], "%s/%s", etcdir, names[k]);
				mounts[nm].source = src[nm - 1];
				mounts[nm].target = dst[nm - 1];
				mounts[nm].fstype = 0;
				mounts[nm].data = 0;
				mounts[nm].flags = MS_BIND;
				nm++;
			}
		}
	}
	if ((fd = open(nspath, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	memset(&s, 0, sizeof s);
	s.path = f.path;
	s.argv = argv + i;
	s.envp = envp;
	s.ns_flags = CLONE_NEWNS;
	s.propagation = MS_REC | MS_SLAVE;
	s.njoin = 1;
	s.join_fd[0] = fd;
	s.join_type[0] = CLONE_NEWNET;
	s.nmounts = nm;
	s.mounts = mounts;
	s.nfds = 3;
	s.fds = fds;
	keep[3] = fd; /* above 2: stdio is open (nsb_stdio_open) */
	s.nkeep = 4;
	s.keep = keep;
	s.init_fd = -1;
	nsb_forward_install();
	if (!nsc_spawn || nsc_spawn(&s, &r) != NSC_OK) {
		close(fd);
		nsb_forward_abandon();
		return; /* nothing ran: Go does it again and reports */
	}
	close(fd);
	nsb_forward_to(r.pid);
	while (waitpid(r.pid, &status, __WALL) < 0)
		if (errno != EINTR)
			_exit(125);
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(WEXITSTATUS(status));
}

/* nsb_joined_netns is the namespace file the constructor joined for a
 * read-only word (nsb_join_show_netns), "" when it joined none: Go reads it
 * (ctorJoinedNetns; not static, so that cgo can name it) and then dials
 * rtnetlink where it already is. */
char nsb_joined_netns[sizeof NSB_NETNS_DIR + 256];

/* nsb_join_netns joins the network namespace named by the -n word ns on the
 * main thread, so that the whole process, every thread it will have, lives
 * in it (as under `ip netns exec`). ns is resolved as Go's resolveNS does:
 * a path as is, a name of /run/netns, else a pid's namespace. It returns 0
 * and the file it joined in path (of size sizeof nsb_joined_netns), or -1
 * when anything did not work: Go then enters ns itself. */
static int nsb_join_netns(const char *ns, char *path)
{
	const size_t size = sizeof nsb_joined_netns;
	struct stat st;
	int fd, rc;

	if (strchr(ns, '/')) {
		if (strlen(ns) >= size)
			return -1;
		strcpy(path, ns);
	} else {
		if (!nsb_name_ok(&nsb_rule_netns, ns))
			return -1;
		snprintf(path, size, NSB_NETNS_DIR "/%s", ns);
		if (lstat(path, &st) < 0) {
			size_t n = strlen(ns);
			if (n > 10 || strspn(ns, "0123456789") != n || ns[0] == '0')
				return -1;
			snprintf(path, size, "/proc/%s/ns/net", ns);
		}
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	rc = setns(fd, CLONE_NEWNET);
	close(fd);
	return rc < 0 ? -1 : 0;
}

/* nsb_join_daemon_netns: for `nsbox -n NS dhcp|dhcpd ...`, the main thread
 * joins NS before the Go runtime starts, so that `ip netns pids NS` lists
 * the daemon; on failure Go enters NS per thread as before. */
static void nsb_join_daemon_netns(int argc, char **argv)
{
	char path[sizeof nsb_joined_netns];

	if (argc < 4 || !nsb_streq(argv[1], "-n") || (!nsb_streq(argv[3], "dhcp") && !nsb_streq(argv[3], "dhcpd")))
		return;
	(void)nsb_join_netns(argv[2], path);
}

/* nsb_in_list reports whether w is one of the NULL-ended words. */
static int nsb_in_list(const char *w, const char *const *words)
{
	for (; *words; words++)
		if (nsb_streq(w, *words))
			return 1;
	return 0;
}

/* nsb_show_join_parse returns the NS of a command line `nsbox [FLAG...] -n
 * NS [FLAG...] OBJ [VERB ...]` whose FLAGs only shape the output
 * (NSB_SHOW_JOIN_FLAGS: -j, -s, -d, -p, -o, -br, -4, -6 and their other
 * spellings) and whose OBJ and VERB (or no VERB) are among the words that
 * only read NS (NSB_SHOW_JOIN_OBJECTS, NSB_SHOW_JOIN_VERBS); all three
 * lists are generated from Go (netns_join.go). Else NULL. */
static const char *nsb_show_join_parse(int argc, char **argv)
{
	const char *ns = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		if (!ns && nsb_streq(argv[i], "-n") && i + 1 < argc && argv[i + 1][0]) {
			ns = argv[++i];
			continue;
		}
		if (!nsb_in_list(argv[i], nsb_show_join_flags))
			break;
	}
	if (!ns || i >= argc || !nsb_in_list(argv[i], nsb_show_join_objects))
		return NULL;
	if (i + 1 < argc && !nsb_in_list(argv[i + 1], nsb_show_join_verbs))
		return NULL;
	return ns;
}

/* nsb_pinned_cpus is the CPU affinity the process had before
 * nsb_pin_one_cpu, and nsb_pinned_cpus_saved says it was changed; both are
 * defined in internal/cpupin, whose init puts the affinity back among the
 * first package inits. */
extern cpu_set_t nsb_pinned_cpus;
extern int nsb_pinned_cpus_saved;

/* nsb_pin_one_cpu pins the process to the CPU it runs on until Go restores
 * its affinity: the Go runtime sizes GOMAXPROCS from the affinity when it
 * starts, so a one-shot read-only command gets one P. With more, each
 * goroutine the runtime and the libraries start at init wakes an idle P
 * and a new thread for it (two or three clones, their stacks and their
 * scheduling), for work that is sequential. internal/cpupin's init puts
 * the affinity back. Any failure leaves the affinity as it was. */
static void nsb_pin_one_cpu(void)
{
	cpu_set_t one;
	int cpu;

	if (sched_getaffinity(0, sizeof nsb_pinned_cpus, &nsb_pinned_cpus) < 0 || CPU_COUNT(&nsb_pinned_cpus) < 2)
		return;
	if ((cpu = sched_getcpu()) < 0 || cpu >= CPU_SETSIZE)
		return;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof one, &one) == 0)
		nsb_pinned_cpus_saved = 1;
}

/* nsb_join_show_netns: for the read-only words of nsb_show_join_parse, the
 * process joins NS here, one open and one setns, so that Go needs neither
 * the namespace handle nor a locked thread to dial rtnetlink in NS (see
 * nsb_joined_netns), and runs with one P (nsb_pin_one_cpu). */
static void nsb_join_show_netns(int argc, char **argv)
{
	char path[sizeof nsb_joined_netns];
	const char *ns = nsb_show_join_parse(argc, argv);

	if (!ns)
		return;
	if (nsb_join_netns(ns, path) == 0)
		strcpy(nsb_joined_netns, path);
	nsb_pin_one_cpu();
}

#ifndef __GLIBC__
extern char **environ;

/* nsb_ctor_args finds argc, argv and envp for a C library that calls
 * constructors without them (musl). It sets environ to the envp of the
 * process's first stack before it runs them, and the System V ABI lays
 * that stack out as argc, argv[0..argc-1], NULL, envp: walking down from
 * envp, the first word equal to the number of pointers passed is argc
 * (no pointer is that small). */
static void nsb_ctor_args(int *argc, char ***argv, char ***envp)
{
	char **e = environ;
	long n;

	*argc = 0;
	*argv = e - 1;
	*envp = e;
	for (n = 0; n < (1L << 24); n++)
		if ((long)e[-2 - n] == n) {
			*argc = (int)n;
			*argv = e - 1 - n;
			return;
		}
}
#endif

/* nsb_fast_ctor runs before the Go runtime (glibc passes argc, argv, envp
 * to constructors; for musl nsb_ctor_args finds them). It returns when Go
 * must handle the command line. */
__attribute__((constructor)) static void nsb_fast_ctor(int argc, char **argv, char **envp)
{
#ifndef __GLIBC__
	nsb_ctor_args(&argc, &argv, &envp);
#endif
	if (argc < 2 || (!nsb_streq(argv[1], "run") && !nsb_streq(argv[1], "netns") && !nsb_streq(argv[1], "-n") &&
			  !nsb_streq(argv[1], "enter") && !nsb_in_list(argv[1], nsb_show_join_flags)))
		return;
	for (char **e = envp; *e; e++)
		if (strncmp(*e, "NSBOX_NO_FASTPATH=", 18) == 0 && (*e)[18] && (*e)[18] != '0')
			return;
	if (nsb_in_list(argv[1], nsb_show_join_flags)) {
		nsb_join_show_netns(argc, argv); /* `-j -n NS link show` and the like */
		return;
	}
	if (nsb_stdio_open() < 0)
		return;
	if (nsb_streq(argv[1], "netns") && argc >= 3 && nsb_streq(argv[2], "exec"))
		nsb_fast_netns_exec(argc, argv, envp);
	else if (nsb_streq(argv[1], "netns"))
		nsb_fast_netns(argc, argv, envp);
	else if (nsb_streq(argv[1], "enter"))
		nsb_fast_enter(argc, argv, envp);
	else if (nsb_streq(argv[1], "-n") && argc >= 4 && !nsb_streq(argv[3], "run")) {
		nsb_join_daemon_netns(argc, argv);
		nsb_join_show_netns(argc, argv);
	}
	else
		nsb_fast_run(argc, argv, envp);
}

/* nsb_fast_parse_for_test exposes the parser to Go's parity tests. */
static int nsb_fast_parse_for_test(int argc, char **argv, char **envp, struct nsb_fast *f)
{
	if (nsb_fast_parse(argc, argv, f) < 0)
		return -1;
	return nsb_fast_parse_rest(argc, argv, envp, f);
}
