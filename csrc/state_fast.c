/*
 * state_fast.c: `run --name NAME`, `--status-fd FD` and `--pidfile FILE` on
 * the C fast path (included by run_fast.c), doing what cmd/nsbox's
 * run_state.go and internal/sbstate do on the Go path, with the same files
 * and the same lock, so that Go and C runs of one name exclude each other:
 *
 * - before the spawn, the state folder's flock is taken and NAME.json is
 *   checked (a record whose init still runs with its start time refuses the
 *   name: that is left to Go, which says so; a stale one is removed);
 * - after the spawn, while the payload runs, the record is written (a
 *   temporary file renamed over NAME.json) and the lock released, then the
 *   pid file, then the first status line;
 * - when the payload has ended, the record is removed under the lock if it
 *   is still ours, then the pid file, then the last status line.
 *
 * The record's layout (its fields' keys and order, which ones an empty value
 * leaves out, the namespace kinds, encoding/json's escapes) and the status
 * lines' keys are generated from Go into nsbox_gen.h; TestRecordFastMatchesGo
 * and TestStatusLinesFastMatchGo compare what this file writes with Go's
 * encoding byte for byte. Anything it cannot do before the spawn (a name the
 * rule refuses, a name that runs, a status fd that is not open, a pid file's
 * folder that is missing, a byte that is not ASCII in the record) returns to
 * Go, which prints the error; after the spawn a failure prints Go's line,
 * kills the sandbox and exits 125, as Go does.
 */

#include "nsb_file.h" /* nsb_read_small */

/* Files are opened with openat: musl's open() adds an fcntl(FD_CLOEXEC)
 * after each O_CLOEXEC open, one syscall more.
 *
 * run_fast.c's, defined after the struct that holds an nsb_watch. */
static int nsb_parse_id(const char *s, unsigned int *out);
static int nsb_clean_abs(const char *p);

/* nsb_watch is what --name, --status-fd and --pidfile ask for. */
struct nsb_watch {
	const char *name;    /* --name, or 0 */
	int status_fd;       /* --status-fd, or -1 */
	const char *pidfile; /* --pidfile (absolute and clean), or 0 */
	const char *dir;     /* the state folder */
	int dirfd;           /* the state folder: flock'd from nsb_watch_reserve until the record is written */
	int recorded;        /* NAME.json is this run's: removed at the end */
	long init_pid;
	unsigned long long ticks;
};

static int nsb_watch_any(const struct nsb_watch *w) { return w->name || w->status_fd >= 0 || w->pidfile; }

/* nsb_buf is a fixed buffer a record or a status line is written into;
 * over is set when it did not fit, bad when a byte was not ASCII. */
struct nsb_buf {
	char *p;
	size_t n, cap;
	int over, bad;
};

static void nsb_put(struct nsb_buf *b, const char *s, size_t n)
{
	if (n > b->cap - b->n) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void nsb_puts(struct nsb_buf *b, const char *s) { nsb_put(b, s, strlen(s)); }

static void nsb_put_u64(struct nsb_buf *b, unsigned long long v)
{
	char d[24];
	int i = (int)sizeof d;
	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	nsb_put(b, d + i, sizeof d - (size_t)i);
}

static void nsb_put_i64(struct nsb_buf *b, long long v)
{
	if (v < 0) {
		nsb_put(b, "-", 1);
		nsb_put_u64(b, 0ULL - (unsigned long long)v);
		return;
	}
	nsb_put_u64(b, (unsigned long long)v);
}

/* nsb_put_jstr writes s as encoding/json does (its escapes, generated); a
 * byte that is not ASCII sets bad: Go's handling of UTF-8 is Go's. */
static void nsb_put_jstr(struct nsb_buf *b, const char *s)
{
	nsb_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 128) {
			b->bad = 1;
			return;
		}
		nsb_puts(b, nsb_json_esc[c]);
	}
	nsb_put(b, "\"", 1);
}

/* nsb_put_digits writes v as exactly n decimal digits. */
static void nsb_put_digits(struct nsb_buf *b, long v, int n)
{
	char d[16];
	for (int i = n - 1; i >= 0; i--, v /= 10)
		d[i] = (char)('0' + v % 10);
	nsb_put(b, d, (size_t)n);
}

/* nsb_put_time writes a UTC time as time.Time's MarshalJSON does
 * (RFC 3339 with nanoseconds, trailing zeros of the fraction dropped, no
 * fraction when it is zero, "Z"); TestRecordTimeFastMatchesGo checks it. */
static void nsb_put_time(struct nsb_buf *b, long long sec, long nsec)
{
	struct tm tm;
	time_t t = (time_t)sec;
	int digits = 9;
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
		b->bad = 1; /* Go's error or its wider years: Go's */
		return;
	}
	nsb_put(b, "\"", 1);
	nsb_put_digits(b, tm.tm_year + 1900, 4);
	nsb_put(b, "-", 1);
	nsb_put_digits(b, tm.tm_mon + 1, 2);
	nsb_put(b, "-", 1);
	nsb_put_digits(b, tm.tm_mday, 2);
	nsb_put(b, "T", 1);
	nsb_put_digits(b, tm.tm_hour, 2);
	nsb_put(b, ":", 1);
	nsb_put_digits(b, tm.tm_min, 2);
	nsb_put(b, ":", 1);
	nsb_put_digits(b, tm.tm_sec, 2);
	if (nsec > 0) {
		while (nsec % 10 == 0) {
			nsec /= 10;
			digits--;
		}
		nsb_put(b, ".", 1);
		nsb_put_digits(b, nsec, digits);
	}
	nsb_put(b, "Z\"", 2);
}

/* nsb_rec is a record's content (sbstate.Record) as the fast path knows
 * it: no limits, no cgroup (those flags are Go's). */
struct nsb_rec {
	const char *name;
	long pid, init_pid, nsbox_pid;
	long long sec;
	long nsec;
	unsigned long long ticks;
	int has_ns[NSB_REC_NNS];
	unsigned long long ns[NSB_REC_NNS]; /* by nsb_rec_ns's kinds */
	const char *bridge, *iface;         /* --bridge's, or 0 */
	const char *addr;                   /* "A.B.C.D/N", or 0 */
	char *const *cmd;
};

/* nsb_json_empty reports whether v is the encoding of a value omitempty
 * leaves out: false, 0, "", a nil pointer, slice or map, an empty one. */
static int nsb_json_empty(const char *v, size_t n)
{
	static const char *const empty[] = {"false", "0", "\"\"", "null", "[]", "{}"};
	for (size_t k = 0; k < sizeof empty / sizeof *empty; k++)
		if (n == strlen(empty[k]) && memcmp(v, empty[k], n) == 0)
			return 1;
	return 0;
}

/* nsb_rec_value writes field f of r. The switch names every field of the
 * generated enum and has no default, so a field added to sbstate.Record
 * does not compile (-Wswitch) until it is written here. */
static void nsb_rec_value(struct nsb_buf *b, const struct nsb_rec *r, enum nsb_rec_field f)
{
	int first = 1;
	switch (f) {
	case NSB_REC_NAME:
		nsb_put_jstr(b, r->name);
		break;
	case NSB_REC_PID:
		nsb_put_i64(b, r->pid);
		break;
	case NSB_REC_INIT_PID:
		nsb_put_i64(b, r->init_pid);
		break;
	case NSB_REC_STARTED:
		nsb_put_time(b, r->sec, r->nsec);
		break;
	case NSB_REC_START_TICKS:
		nsb_put_u64(b, r->ticks);
		break;
	case NSB_REC_NAMESPACES:
		nsb_put(b, "{", 1);
		for (int k = 0; k < NSB_REC_NNS; k++) {
			if (!r->has_ns[k])
				continue;
			if (!first)
				nsb_put(b, ",", 1);
			first = 0;
			nsb_put_jstr(b, nsb_rec_ns[k]);
			nsb_put(b, ":", 1);
			nsb_put_u64(b, r->ns[k]);
		}
		nsb_put(b, "}", 1);
		break;
	case NSB_REC_BRIDGE:
		nsb_put_jstr(b, r->bridge ? r->bridge : "");
		break;
	case NSB_REC_INTERFACE:
		nsb_put_jstr(b, r->iface ? r->iface : "");
		break;
	case NSB_REC_ADDRESSES:
		nsb_put(b, "[", 1);
		if (r->addr)
			nsb_put_jstr(b, r->addr);
		nsb_put(b, "]", 1);
		break;
	case NSB_REC_COMMAND:
		nsb_put(b, "[", 1);
		for (char *const *a = r->cmd; *a; a++) {
			if (a != r->cmd)
				nsb_put(b, ",", 1);
			nsb_put_jstr(b, *a);
		}
		nsb_put(b, "]", 1);
		break;
	case NSB_REC_NSBOX_PID:
		nsb_put_i64(b, r->nsbox_pid);
		break;
	case NSB_REC_LIMITS: /* the limit flags are Go's: nil */
	case NSB_REC_CGROUP:
		nsb_put(b, "null", 4);
		break;
	case NSB_REC_NFIELDS:
		b->bad = 1;
		break;
	}
}

/* nsb_rec_render writes r as json.Marshal writes an sbstate.Record, and
 * the newline sbstate's Add puts after it; -1 if it could not. */
static int nsb_rec_render(const struct nsb_rec *r, struct nsb_buf *b)
{
	int n = 0;
	nsb_put(b, "{", 1);
	for (int id = 0; id < NSB_REC_NFIELDS; id++) {
		size_t start = b->n, v;
		if (n > 0)
			nsb_put(b, ",", 1);
		nsb_puts(b, nsb_rec_keys[id].key);
		v = b->n;
		nsb_rec_value(b, r, (enum nsb_rec_field)id);
		if (b->over || b->bad)
			return -1;
		if (nsb_rec_keys[id].omitempty && nsb_json_empty(b->p + v, b->n - v))
			b->n = start;
		else
			n++;
	}
	nsb_put(b, "}\n", 2);
	return b->over || b->bad ? -1 : 0;
}

/* nsb_rec_num finds the number of field id in a record (json.Marshal's
 * output: no spaces; a key can only be a key there, since a quote inside a
 * string is escaped); -1 if absent. */
static long long nsb_rec_num(const char *json, enum nsb_rec_field id)
{
	const char *p = strstr(json, nsb_rec_keys[id].key);
	long long v = 0;
	if (!p)
		return -1;
	p += strlen(nsb_rec_keys[id].key);
	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9' && v < (1LL << 50))
		v = v * 10 + (*p++ - '0');
	return v;
}

/* nsb_rec_live reports whether a record's sandbox still runs, as
 * sbstate's Record.Live: its init (or payload) exists, is not a zombie and
 * started at the recorded time; -1 if the record lacks those fields. */
static int nsb_rec_live(const char *json)
{
	long long pid = nsb_rec_num(json, NSB_REC_INIT_PID), ticks = nsb_rec_num(json, NSB_REC_START_TICKS);
	char state = 0;
	if (pid <= 0)
		pid = nsb_rec_num(json, NSB_REC_PID);
	if (pid < 0 || ticks < 0)
		return -1;
	return pid > 0 && pid < (1LL << 31) && nsb_proc_ticks((long)pid, &state) == ticks && state != 'Z' && state != 'X';
}

/* nsb_sbx_name_ok accepts a name sbstate.ValidateName accepts (its rule,
 * generated), ASCII only. */
static int nsb_sbx_name_ok(const char *s) { return nsb_name_ok(&nsb_rule_sandbox, s); }

/* nsb_state_dir is the folder of records: $NSBOX_STATE_DIR, else the
 * default (run_state.go's stateDir). */
static const char *nsb_state_dir(void)
{
	const char *d = getenv(NSB_STATE_DIR_ENV);
	return d && *d ? d : NSB_STATE_DIR;
}

/* nsb_watch_parse takes --name, --status-fd and --pidfile as Go's check
 * and watch do, for the forms it knows: a name of the rule, a decimal fd
 * that is open, an absolute clean pid file whose folder exists. -1 leaves
 * the command line to Go (which reports what is wrong). */
static int nsb_watch_parse(struct nsb_watch *w, const char *name, const char *fd, const char *pidfile)
{
	w->status_fd = -1;
	w->dirfd = -1;
	if (name) {
		if (!nsb_sbx_name_ok(name))
			return -1;
		w->name = name;
		w->dir = nsb_state_dir();
		if (strlen(w->dir) + 1 + NSB_SBX_NAME_MAX + 32 > 4096)
			return -1;
	}
	if (fd) {
		unsigned int v;
		/* pflag's IntVar takes 0x.., 0o.., _ and signs too: Go's. */
		if ((fd[0] == '0' && fd[1]) || nsb_parse_id(fd, &v) < 0 || v > 0x7fffffff || fcntl((int)v, F_GETFD) < 0)
			return -1;
		w->status_fd = (int)v;
	}
	if (pidfile) {
		char dir[4096];
		const char *slash = strrchr(pidfile, '/');
		struct stat st;
		size_t n;
		if (!nsb_clean_abs(pidfile) || !pidfile[1] || (n = (size_t)(slash - pidfile)) >= sizeof dir)
			return -1;
		memcpy(dir, pidfile, n ? n : 1);
		dir[n ? n : 1] = 0;
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
			return -1;
		w->pidfile = pidfile;
	}
	return 0;
}

/* nsb_mkdir_all makes dir and its parents (os.MkdirAll). */
static void nsb_mkdir_all(const char *dir, mode_t mode)
{
	char p[4096];
	size_t n = strlen(dir);
	if (n >= sizeof p)
		return;
	memcpy(p, dir, n + 1);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		(void)mkdir(p, mode); /* EEXIST, or the open below fails */
		*s = '/';
	}
	(void)mkdir(p, mode);
}

/* nsb_flock takes (or, with LOCK_UN, gives up) the folder's lock. */
static int nsb_flock(int fd, int op)
{
	int rc;
	while ((rc = flock(fd, op)) < 0 && errno == EINTR)
		;
	return rc;
}

/* nsb_rec_path writes NAME.json (or, with tmp, .NAME.PID.tmp) into out. */
static void nsb_rec_path(const struct nsb_watch *w, int tmp, char *out, size_t n)
{
	if (tmp)
		snprintf(out, n, NSB_REC_TMP_PREFIX "%s.%ld" NSB_REC_TMP_SUFFIX, w->name, (long)getpid());
	else
		snprintf(out, n, "%s" NSB_REC_SUFFIX, w->name);
}

/* nsb_rec_read reads a record relative to the folder; -1 if it cannot. */
static int nsb_rec_read(const struct nsb_watch *w, char *buf, size_t n)
{
	char file[NSB_SBX_NAME_MAX + 16];
	ssize_t got;
	nsb_rec_path(w, 0, file, sizeof file);
	if ((got = nsb_read_small(w->dirfd, file, buf, n, 1)) == 0)
		errno = EFBIG; /* empty, as too big: Go's */
	return got > 0 ? 0 : -1;
}

/* nsb_watch_release gives up the folder and its lock. */
static void nsb_watch_release(struct nsb_watch *w)
{
	if (w->dirfd >= 0)
		close(w->dirfd);
	w->dirfd = -1;
}

/* nsb_watch_reserve does sbstate's Reserve: the folder made and locked, a
 * name that runs refused (left to Go, which says so), a stale record
 * removed. The lock is held until the record is written. -1 returns to Go
 * with nothing held. */
static int nsb_watch_reserve(struct nsb_watch *w)
{
	static char buf[65536];
	char file[NSB_SBX_NAME_MAX + 16];
	if (!w->name)
		return 0;
	if ((w->dirfd = openat(AT_FDCWD, w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 && errno == ENOENT) {
		nsb_mkdir_all(w->dir, NSB_STATE_DIR_MODE);
		w->dirfd = openat(AT_FDCWD, w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (w->dirfd < 0 || w->dirfd < 3 || nsb_flock(w->dirfd, LOCK_EX) < 0) {
		nsb_watch_release(w);
		return -1;
	}
	if (nsb_rec_read(w, buf, sizeof buf) == 0) {
		if (nsb_rec_live(buf) != 0) {
			nsb_watch_release(w); /* running, or unreadable: Go's */
			return -1;
		}
		nsb_rec_path(w, 0, file, sizeof file);
		(void)unlinkat(w->dirfd, file, 0); /* stale: as Go's os.Remove */
	} else if (errno != ENOENT) {
		nsb_watch_release(w);
		return -1;
	}
	return 0;
}

/* nsb_payload_pid is run_state.go's payloadPid: the init's only child, or
 * the spawned process itself without an init (or once the payload ended). */
static long nsb_payload_pid(long pid, int init)
{
	char path[96], buf[64];
	long v = 0;
	if (!init)
		return pid;
	snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", pid, pid);
	if (nsb_read_small(AT_FDCWD, path, buf, sizeof buf, 0) <= 0 || buf[0] < '0' || buf[0] > '9')
		return pid; /* its start only: the first child */
	for (const char *p = buf; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (*p - '0');
	return v;
}

/* nsb_ns_inodes finds the inode of each kind's namespace of pid, as
 * sbstate's Namespaces does with stat(/proc/PID/ns/KIND): a kind the kernel
 * lacks is left out; -1 on another error. It reads the link instead
 * ("net:[INODE]", the same number): readlink formats the namespace's inode
 * where stat opens the namespace's nsfs dentry, about twice the work. */
static int nsb_ns_inodes(long pid, struct nsb_rec *r)
{
	char path[64], link[64];
	for (int k = 0; k < NSB_REC_NNS; k++) {
		const char *p;
		unsigned long long v = 0;
		ssize_t n;
		snprintf(path, sizeof path, "/proc/%ld/ns/%s", pid, nsb_rec_ns[k]);
		r->has_ns[k] = 0;
		if ((n = readlink(path, link, sizeof link - 1)) < 0) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		link[n] = 0;
		if (!(p = strchr(link, '[')) || p[1] < '0' || p[1] > '9')
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++)
			v = v * 10 + (unsigned long long)(*p - '0');
		if (*p != ']')
			return -1;
		r->has_ns[k] = 1;
		r->ns[k] = v;
	}
	return 0;
}

/* nsb_watch_fail prints one line of Go's shape for a failure after the
 * spawn (the payload runs: there is no going back to Go). */
static void nsb_watch_fail(const char *flag, const char *obj, const char *what, int err)
{
	char ebuf[NSB_ERRBUF];
	fprintf(stderr, "nsbox: run: %s %s: %s%s\n", flag, obj, what, nsb_strerror(err, ebuf));
}

/* nsb_write_file writes data to path (created with mode, or truncated), as
 * os.WriteFile; on failure it sets *op ("open" or "write") and returns -1
 * with errno set. */
static int nsb_write_file(int dirfd, const char *path, const char *data, size_t n, mode_t mode, const char **op)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		*op = "open";
		return -1;
	}
	while (n > 0) {
		ssize_t w = write(fd, data, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			close(fd);
			errno = e;
			*op = "write";
			return -1;
		}
		data += w;
		n -= (size_t)w;
	}
	close(fd);
	return 0;
}

/* nsb_watch_record writes the record (sbstate's Lock.Add: a temporary file
 * renamed over NAME.json) and releases the lock; with the init gone or a
 * zombie already, there is nothing to record (as Go). -1 after printing
 * Go's error. */
static int nsb_watch_record(struct nsb_watch *w, struct nsb_rec *r)
{
	static char data[65536];
	char tmp[NSB_SBX_NAME_MAX + 48], file[NSB_SBX_NAME_MAX + 16], what[8192];
	struct nsb_buf b = {data, 0, sizeof data, 0, 0};
	struct timespec now;
	const char *op = "";
	char state = 0;
	long long ticks = nsb_proc_ticks(r->init_pid, &state);
	if (ticks < 0 || state == 'Z' || nsb_ns_inodes(r->init_pid, r) < 0 || clock_gettime(CLOCK_REALTIME, &now) < 0) {
		nsb_watch_release(w);
		return 0;
	}
	r->ticks = (unsigned long long)ticks;
	r->sec = (long long)now.tv_sec;
	r->nsec = now.tv_nsec;
	if (nsb_rec_render(r, &b) < 0) {
		/* Checked before the spawn (nsb_watch_fits): cannot happen. */
		nsb_watch_release(w);
		fprintf(stderr, "nsbox: run: --name %s: encode %s: not ASCII\n", w->name, w->name);
		return -1;
	}
	nsb_rec_path(w, 1, tmp, sizeof tmp);
	nsb_rec_path(w, 0, file, sizeof file);
	if (nsb_write_file(w->dirfd, tmp, data, b.n, NSB_REC_MODE, &op) < 0) {
		int e = errno;
		(void)unlinkat(w->dirfd, tmp, 0);
		snprintf(what, sizeof what, "write %s/%s: %s %s/%s: ", w->dir, tmp, op, w->dir, tmp);
		nsb_watch_release(w);
		nsb_watch_fail("--name", w->name, what, e);
		return -1;
	}
	if (renameat(w->dirfd, tmp, w->dirfd, file) < 0) {
		int e = errno;
		(void)unlinkat(w->dirfd, tmp, 0);
		snprintf(what, sizeof what, "record %s: rename %s/%s %s/%s: ", w->name, w->dir, tmp, w->dir, file);
		nsb_watch_release(w);
		nsb_watch_fail("--name", w->name, what, e);
		return -1;
	}
	w->recorded = 1;
	w->init_pid = r->init_pid;
	w->ticks = r->ticks;
	/* Go closes its lock's fd; this one stays open for the removal. */
	(void)nsb_flock(w->dirfd, LOCK_UN);
	return 0;
}

/* nsb_status_start writes the first status line (run_state.go's
 * statusStartLine) into b. */
static void nsb_status_start(struct nsb_buf *b, long pid, const struct nsb_rec *r, unsigned long ns_flags, const char *iface)
{
	nsb_puts(b, NSB_STATUS_OPEN NSB_STATUS_CHILD_PID);
	nsb_put_i64(b, pid);
	for (int k = 0; k < NSB_STATUS_NNS; k++) {
		int j = nsb_status_ns[k].rec; /* generated: no kind is compared here */
		if ((ns_flags & nsb_status_ns[k].clone) && r->has_ns[j]) {
			nsb_puts(b, NSB_STATUS_SEP);
			nsb_puts(b, nsb_status_ns[k].key);
			nsb_put_u64(b, r->ns[j]);
		}
	}
	if (iface) {
		nsb_puts(b, NSB_STATUS_SEP NSB_STATUS_INTERFACE);
		nsb_put_jstr(b, iface);
		nsb_puts(b, NSB_STATUS_SEP NSB_STATUS_ADDRESSES);
		if (r->addr) {
			nsb_put(b, "[", 1);
			nsb_put_jstr(b, r->addr);
			nsb_put(b, "]", 1);
		} else {
			nsb_puts(b, "null");
		}
	}
	nsb_puts(b, NSB_STATUS_CLOSE);
}

/* nsb_status_end writes the last status line (statusEndLine) into b. */
static void nsb_status_end(struct nsb_buf *b, int code)
{
	nsb_puts(b, NSB_STATUS_OPEN NSB_STATUS_EXIT_CODE);
	nsb_put_i64(b, code);
	nsb_puts(b, NSB_STATUS_CLOSE);
}

/* nsb_write_all writes b to fd; errors are ignored (a reader that went
 * away must not stop the sandbox, as in Go). */
static void nsb_write_all(int fd, const struct nsb_buf *b)
{
	const char *p = b->p;
	size_t n = b->n;
	if (b->over || b->bad)
		return;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* nsb_watch_started is run_state.go's started, once the payload runs: the
 * record, then the pid file, then the first status line. -1 after printing
 * Go's error (the caller kills the sandbox and exits 125). */
static int nsb_watch_started(struct nsb_watch *w, struct nsb_rec *r, int init, unsigned long ns_flags)
{
	char line[1024], num[24];
	struct nsb_buf b = {line, 0, sizeof line, 0, 0};
	int have_ns = 0;

	r->pid = nsb_payload_pid(r->init_pid, init);
	if (w->name) {
		if (nsb_watch_record(w, r) < 0)
			return -1;
		have_ns = w->recorded;
	}
	if (w->pidfile) {
		struct nsb_buf p = {num, 0, sizeof num, 0, 0};
		const char *op;
		nsb_put_i64(&p, r->pid);
		nsb_put(&p, "\n", 1);
		if (nsb_write_file(AT_FDCWD, w->pidfile, num, p.n, 0644, &op) < 0) {
			nsb_watch_fail("--pidfile", w->pidfile, "", errno);
			return -1;
		}
	}
	if (w->status_fd >= 0) {
		/* A reader that went away must not stop nsbox, which would
		 * leave the sandbox and its record behind: EPIPE, not SIGPIPE,
		 * as Go's runtime does for fds other than 1 and 2. The payload
		 * runs already, with its own dispositions. */
		signal(SIGPIPE, SIG_IGN);
		if (!have_ns && nsb_ns_inodes(r->init_pid, r) < 0)
			memset(r->has_ns, 0, sizeof r->has_ns);
		nsb_status_start(&b, r->pid, r, ns_flags, r->iface);
		nsb_write_all(w->status_fd, &b);
	}
	return 0;
}

/* nsb_watch_ended is run_state.go's ended: the record removed if it is
 * still this run's (sbstate's Remove, under the lock), the pid file
 * removed, the last status line. */
static void nsb_watch_ended(struct nsb_watch *w, int code)
{
	static char buf[65536];
	char file[NSB_SBX_NAME_MAX + 16], line[64];
	struct nsb_buf b = {line, 0, sizeof line, 0, 0};
	if (w->recorded && nsb_flock(w->dirfd, LOCK_EX) == 0) {
		if (nsb_rec_read(w, buf, sizeof buf) == 0 && nsb_rec_num(buf, NSB_REC_INIT_PID) == w->init_pid &&
		    nsb_rec_num(buf, NSB_REC_START_TICKS) == (long long)w->ticks) {
			nsb_rec_path(w, 0, file, sizeof file);
			(void)unlinkat(w->dirfd, file, 0); /* gone already: fine */
		}
	}
	nsb_watch_release(w);
	if (w->pidfile)
		(void)unlink(w->pidfile);
	if (w->status_fd >= 0) {
		nsb_status_end(&b, code);
		nsb_write_all(w->status_fd, &b);
	}
}

/* nsb_watch_fits checks before the spawn that the record's command is one
 * this file writes as Go does (ASCII: Go's UTF-8 handling is Go's) and
 * that the record fits its buffer (each byte at most 6 escaped). */
static int nsb_watch_fits(char *const *cmd)
{
	size_t n = 0;
	for (; *cmd; cmd++) {
		for (const char *s = *cmd; *s; s++, n += 6)
			if ((unsigned char)*s >= 128)
				return -1;
		n += 3;
	}
	return n < 32768 ? 0 : -1;
}

/* nsb_rec_ns_kind is nsb_rec_ns[k], for Go's tests (cgo cannot reach a
 * static array). */
static __attribute__((unused)) const char *nsb_rec_ns_kind(int k) { return nsb_rec_ns[k]; }
