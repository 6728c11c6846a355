/*
 * enter_fast.c: the C fast path of `nsbox enter NAME|PID [--] CMD [ARG...]`
 * (every namespace, no flags), included by run_fast.c and called from its
 * constructor before the Go runtime starts, so that entering costs what
 * nsenter costs. It does cmd/nsbox/sandbox.go's steps in the same order:
 * the target (a pid, or a record of /run/nsbox/sandboxes whose init's start
 * time still matches), a pidfd of it, the namespaces that differ from
 * nsbox's own entered with one setns(pidfd), the target's root and working
 * directory, then the command forked (a joined PID namespace takes only
 * children) and waited for, signals forwarded, its status as the exit code.
 *
 * Anything unusual (flags, no command, a bad name, a target that is gone, a
 * setns that fails: all before nsbox has changed anything) returns to Go,
 * which does everything again and prints its own error. After the setns
 * nsbox is inside the target's namespaces and cannot go back to Go, so the
 * few failures left print one line of Go's shape and exit as Go would.
 */

/* nsb_enter_num parses a decimal number; -1 if s is not one. */
static long long nsb_enter_num(const char *s, const char **end)
{
	long long v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9' && v < (1LL << 50))
		v = v * 10 + (*s++ - '0');
	if (end)
		*end = s;
	return v;
}

/* nsb_enter_target resolves the target word: a pid, or a sandbox name
 * whose record's init still runs. It sets the pid whose namespaces to join
 * (the init) and the one whose root and directory to take (the payload). */
static int nsb_enter_target(const char *t, long *join, long *payload)
{
	const char *end, *dir = nsb_state_dir();
	char path[4096], buf[8192];
	long long v = nsb_enter_num(t, &end);

	if (v > 0 && *end == 0 && v < (1LL << 31)) {
		*join = *payload = (long)v;
		return 0;
	}
	if (!nsb_sbx_name_ok(t)) /* sbstate.ValidateName's rule, generated */
		return -1;
	if (snprintf(path, sizeof path, "%s/%s" NSB_REC_SUFFIX, dir, t) >= (int)sizeof path)
		return -1;
	if (nsb_read_small(AT_FDCWD, path, buf, sizeof buf, 0) <= 0)
		return -1;
	/* The record's keys are generated from sbstate.Record. */
	if (nsb_rec_live(buf) != 1)
		return -1; /* stale: Go says so and removes it */
	*payload = (long)nsb_rec_num(buf, NSB_REC_PID);
	*join = (long)nsb_rec_num(buf, NSB_REC_INIT_PID);
	if (*join <= 0)
		*join = *payload;
	snprintf(path, sizeof path, "/proc/%ld", *payload);
	if (access(path, F_OK) < 0)
		*payload = *join;
	return 0;
}

/* nsb_enter_fail prints one line of Go's shape and exits: nsbox is inside
 * the target's namespaces already. */
static void __attribute__((noreturn)) nsb_enter_fail(int code, const char *what, const char *obj, int err)
{
	char buf[NSB_ERRBUF];

	/* Go's errno text (generated), whatever the C library's strerror says. */
	fprintf(stderr, "nsbox: %s%s: %s\n", what, obj, nsb_strerror(err, buf));
	_exit(code);
}

static void nsb_fast_enter(int argc, char **argv, char **envp)
{
	static const struct {
		const char *name;
		int flag;
	} kinds[] = {{"user", CLONE_NEWUSER}, {"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
		     {"net", CLONE_NEWNET}, {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS}};
	const int *fwd = nsb_fwd; /* internal/abi.ForwardedSignals, generated */
	long join, payload;
	int pidfd, rootfd, cwdfd, i, cmd = 3, flags = 0, errp[2], st, err = 0;
	char path[96], state = 0;
	struct sigaction sa, old[NSB_NFWD];
	sigset_t all, mask;
	pid_t child;

	if (argc < 4 || argv[2][0] == '-')
		return;
	if (nsb_streq(argv[3], "--"))
		cmd = 4;
	else if (argv[3][0] == '-')
		return; /* flags: Go */
	if (cmd >= argc || nsb_enter_target(argv[2], &join, &payload) < 0)
		return;
	if ((pidfd = (int)syscall(SYS_pidfd_open, join, 0)) < 0)
		return;
	/* The pidfd pins the process: check that it is still the one meant. */
	if (nsb_proc_ticks(join, &state) < 0 || state == 'Z') {
		close(pidfd);
		return;
	}
	for (i = 0; i < 7; i++) {
		struct stat a, b;
		snprintf(path, sizeof path, "/proc/%ld/ns/%s", join, kinds[i].name);
		if (stat(path, &a) < 0) {
			close(pidfd);
			return;
		}
		snprintf(path, sizeof path, "/proc/self/ns/%s", kinds[i].name);
		if (stat(path, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
			flags |= kinds[i].flag;
	}
	snprintf(path, sizeof path, "/proc/%ld/root", payload);
	rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof path, "/proc/%ld/cwd", payload);
	cwdfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0 || cwdfd < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		close(pidfd);
		if (rootfd >= 0)
			close(rootfd);
		if (cwdfd >= 0)
			close(cwdfd);
		return;
	}
	if (flags && setns(pidfd, flags) < 0) {
		close(pidfd), close(rootfd), close(cwdfd), close(errp[0]), close(errp[1]);
		return; /* nothing changed: Go reports it */
	}
	close(pidfd);
	snprintf(path, sizeof path, "/proc/%ld/root", payload);
	if (fchdir(rootfd) < 0 || chroot(".") < 0)
		nsb_enter_fail(125, "enter ", argv[2], errno);
	if (fchdir(cwdfd) < 0)
		nsb_enter_fail(125, "enter ", argv[2], errno);
	close(rootfd);
	close(cwdfd);

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = nsb_forward;
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &mask);
	for (i = 0; i < NSB_NFWD; i++)
		sigaction(fwd[i], &sa, &old[i]);
	child = fork();
	if (child == 0) {
		for (i = 0; i < NSB_NFWD; i++)
			sigaction(fwd[i], &old[i], 0);
		sigprocmask(SIG_SETMASK, &mask, 0);
		environ = envp;
		execvp(argv[cmd], argv + cmd);
		err = errno;
		while (write(errp[1], &err, sizeof err) < 0 && errno == EINTR)
			;
		_exit(127);
	}
	if (child < 0)
		nsb_enter_fail(125, "enter ", argv[2], errno);
	nsb_child = child;
	sigprocmask(SIG_SETMASK, &mask, 0);
	for (i = 0; i < NSB_NFWD; i++)
		if (nsb_pending[fwd[i]])
			kill(child, fwd[i]);
	close(errp[1]);
	while ((i = (int)read(errp[0], &err, sizeof err)) < 0 && errno == EINTR)
		;
	while (waitpid(child, &st, __WALL) < 0)
		if (errno != EINTR)
			_exit(125);
	if (i == (int)sizeof err) {
		/* The messages and codes of run.go's spawnError. */
		if (err == ENOENT) {
			fprintf(stderr, "nsbox: run: %s: command not found (no such file or directory)\n", argv[cmd]);
			_exit(127);
		}
		nsb_enter_fail(err == EACCES || err == ENOEXEC || err == EISDIR || err == EPERM || err == ETXTBSY ||
					       err == ENOTDIR || err == ELOOP || err == ENAMETOOLONG
				       ? 126
				       : 125,
			       "run: ", argv[cmd], err);
	}
	if (WIFSIGNALED(st))
		_exit(128 + WTERMSIG(st));
	_exit(WEXITSTATUS(st));
}
