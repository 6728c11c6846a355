/*
 * netns_fast.c: the C fast path of `nsbox netns add NAME` and
 * `nsbox netns del|delete NAME`, run from run_fast.c's ELF constructor
 * before the Go runtime starts, so that one add or del costs what ip's does
 * (the work is ~0.5 ms; starting the Go runtime costs far more).
 *
 * Go (netns.Add, netns.Delete, cmd/nsbox/netns.go) stays the one source of
 * truth. This file takes exactly argv = {nsbox, netns, add|del|delete, NAME}
 * with a NAME that netns.ValidateName surely accepts (FuzzNetnsFastParity
 * checks it) and does the same steps in the same order as Go. Error parity is
 * by construction: on any failure it undoes what it did (the namespace
 * file it created, the bind mount it made, the network namespace it entered)
 * and returns, and Go runs the same command again from the start and prints
 * its own `nsbox: ...` line and exit code. This file prints nothing, with
 * two exceptions that cannot happen short of a kernel failure, after a bind
 * mount that failed: setns back to the original network namespace fails (Go
 * must not start in a foreign namespace), or the file it just created cannot
 * be unlinked (Go would report "already exists"). Then it prints one line of
 * Go's shape and exits 1 (nsb_netns_stuck).
 *
 * Left as Go leaves it: /run/netns and its shared mount point (state that
 * Go's prepareRunDir reaches the same way; other processes may be using it).
 *
 * Single threaded (a constructor), so unshare and setns on the main thread
 * are fine. Every blockable signal is blocked while the namespace file is
 * in a half-made state, so an interrupt leaves no bare file behind; as in
 * Go, which catches SIGINT and SIGTERM, a finished command exits 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nsb_name.h" /* name rules and defaults generated from Go */


/* What nsb_netns_parse found on the command line. */
enum { NSB_NETNS_GO = 0, NSB_NETNS_ADD = 1, NSB_NETNS_DEL = 2 };

/* nsb_netns_name_ok accepts a name of netns.ValidateName's rule
 * (internal/names.Netns, generated into nsbox_gen.h) made of ASCII bytes and
 * not starting with '-' (it would look like a flag): a strict subset. */
static __attribute__((unused)) int nsb_netns_name_ok(const char *name) { return nsb_name_ok(&nsb_rule_netns, name); }

/* nsb_netns_parse says what the fast path does with argv: NSB_NETNS_ADD or
 * NSB_NETNS_DEL for exactly `nsbox netns add|del|delete NAME` with a name it
 * accepts, NSB_NETNS_GO for anything else. */
static __attribute__((unused)) int nsb_netns_parse(int argc, char **argv)
{
	if (argc != 4 || strcmp(argv[1], "netns") != 0 || !nsb_netns_name_ok(argv[3]))
		return NSB_NETNS_GO;
	if (strcmp(argv[2], "add") == 0)
		return NSB_NETNS_ADD;
	if (strcmp(argv[2], "del") == 0 || strcmp(argv[2], "delete") == 0)
		return NSB_NETNS_DEL;
	return NSB_NETNS_GO;
}

/* nsb_netns_share_dir makes the existing directory NSB_NETNS_DIR a shared
 * mount point of its own, under a lock, as netns.prepareRunDir does: bind
 * onto itself, then private (out of its parent's peer group), then shared.
 * A failure after the bind detaches that bind again. 0 on success. */
static int nsb_netns_share_dir(void)
{
	int dfd, rc = -1;

	dfd = open(NSB_NETNS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	/* Two processes must not both bind it (it would stack two mounts). */
	if (flock(dfd, LOCK_EX) < 0)
		goto out;
	/* Someone else may have done it while we waited for the lock. */
	if (mount("", NSB_NETNS_DIR, "none", MS_SHARED | MS_REC, 0) == 0) {
		rc = 0;
		goto out;
	}
	if (mount(NSB_NETNS_DIR, NSB_NETNS_DIR, "none", MS_BIND | MS_REC, 0) < 0)
		goto out;
	if (mount("", NSB_NETNS_DIR, "none", MS_PRIVATE | MS_REC, 0) < 0 ||
	    mount("", NSB_NETNS_DIR, "none", MS_SHARED | MS_REC, 0) < 0) {
		/* Undo our bind (still under the lock): Go then retries the
		 * whole setup and reports the failure itself. Unchecked: if
		 * it fails, Go finds a mount point and makes it shared, which
		 * is still a valid /run/netns. */
		(void)umount2(NSB_NETNS_DIR, MNT_DETACH);
		goto out;
	}
	rc = 0;
out:
	close(dfd); /* releases the lock */
	return rc;
}

/* nsb_netns_prepare_dir makes NSB_NETNS_DIR exist and be a shared mount
 * point of its own (netns.prepareRunDir). 0 on success. */
static int nsb_netns_prepare_dir(void)
{
	if (mkdir(NSB_NETNS_DIR, 0755) < 0 && errno != EEXIST)
		return -1;
	/* The usual case: already a mount point; make sure it is shared. */
	if (mount("", NSB_NETNS_DIR, "none", MS_SHARED | MS_REC, 0) == 0)
		return 0;
	if (errno != EINVAL) /* EINVAL: not a mount point yet */
		return -1;
	return nsb_netns_share_dir();
}

/* nsb_netns_bind_new moves the calling thread into a new network namespace
 * and bind-mounts that namespace onto path (an existing file). On success
 * the thread stays in the new namespace (the caller exits). On failure it
 * returns -1 with errno set, the thread back in its original namespace; if
 * even that fails it returns -2 with setns's errno: the thread is in a
 * foreign namespace. */
static __attribute__((unused)) int nsb_netns_bind_new(const char *path)
{
	int orig, err;

	/* Opened before unshare: the way back if the bind fails. */
	orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0)
		return -1;
	if (unshare(CLONE_NEWNET) < 0) {
		err = errno;
		close(orig);
		errno = err;
		return -1;
	}
	if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, 0) == 0) {
		close(orig);
		return 0;
	}
	err = errno;
	if (setns(orig, CLONE_NEWNET) < 0) {
		err = errno;
		close(orig);
		errno = err;
		return -2;
	}
	close(orig);
	errno = err;
	return -1;
}

/* nsb_netns_path writes NSB_NETNS_DIR/name into buf (name_ok bounds it). */
static void nsb_netns_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", NSB_NETNS_DIR, name);
}

/* nsb_netns_stuck reports a failure that cannot be undone and exits: Go
 * must not run in a foreign network namespace, nor redo an add whose file
 * could not be removed (it would report EEXIST instead of the cause). The
 * line has Go's shape: "nsbox: netns: add NAME: STEP: CAUSE". */
static void nsb_netns_stuck(const char *name, const char *step, int err)
{
	char buf[NSB_ERRBUF];

	/* Go's errno text (generated), whatever the C library's strerror says. */
	dprintf(2, "nsbox: netns: add %s: %s: %s\n", name, step, nsb_strerror(err, buf));
	_exit(1);
}

/* nsb_netns_add does netns.Add: prepare the directory, create the file
 * exclusively, bind a new network namespace onto it. 0 on success, -1 when
 * it failed and undid its work (Go takes over); what it cannot undo ends
 * the process in nsb_netns_stuck. */
static __attribute__((unused)) int nsb_netns_add(const char *name)
{
	char path[sizeof NSB_NETNS_DIR + 256];
	int fd, rc, err;

	if (nsb_netns_prepare_dir() < 0)
		return -1;
	nsb_netns_path(path, sizeof path, name);
	/* Exclusive: an existing name is left untouched (Go says so). */
	fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	close(fd);
	rc = nsb_netns_bind_new(path);
	if (rc == 0)
		return 0;
	err = errno;
	/* Remove the file made above, so that Go's redo starts afresh. */
	if (unlink(path) < 0 && rc == -1)
		nsb_netns_stuck(name, "mount --bind", err); /* Go would say EEXIST */
	if (rc == -2)
		nsb_netns_stuck(name, "setns back to the original namespace", err);
	return -1;
}

/* nsb_netns_rebind puts the namespace held open by fd back onto path (the
 * undo of a detach-unmount). */
static void nsb_netns_rebind(int fd, const char *path)
{
	char src[32];

	snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
	/* Unchecked on purpose: if it fails, the state is the one Go alone
	 * would leave after the same failed unlink, and Go reports that. */
	(void)mount(src, path, "none", MS_BIND, 0);
}

/* nsb_netns_del does netns.Delete: detach-unmount (EINVAL: a bare file left
 * by a failed add, not mounted), then unlink. 0 on success, -1 when it
 * failed and undid its work (Go takes over). */
static __attribute__((unused)) int nsb_netns_del(const char *name)
{
	char path[sizeof NSB_NETNS_DIR + 256];
	struct stat st;
	int fd, mounted = 1;

	nsb_netns_path(path, sizeof path, name);
	/* Missing, a symlink, a directory...: Go's errors. */
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	/* Held open so that a failed unlink can bind the namespace back. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (umount2(path, MNT_DETACH) < 0) {
		if (errno != EINVAL) {
			close(fd);
			return -1;
		}
		mounted = 0;
	}
	if (unlink(path) < 0) {
		if (mounted)
			nsb_netns_rebind(fd, path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* nsb_fast_netns handles `nsbox netns add|del NAME` and exits; it returns
 * when Go must handle the command line (or redo a command that failed). */
static __attribute__((unused)) void nsb_fast_netns(int argc, char **argv, char **envp)
{
	sigset_t all, old;
	int op, rc;

	(void)envp;
	op = nsb_netns_parse(argc, argv);
	if (op == NSB_NETNS_GO)
		return;
	/* No signal may leave a half-made namespace file behind. */
	sigfillset(&all);
	if (sigprocmask(SIG_BLOCK, &all, &old) < 0)
		return;
	rc = op == NSB_NETNS_ADD ? nsb_netns_add(argv[3]) : nsb_netns_del(argv[3]);
	if (rc == 0)
		_exit(0); /* as Go: silent success; caught signals do not matter */
	/* Unchecked: SIG_SETMASK with a mask sigprocmask gave cannot fail.
	 * A signal that came meanwhile acts now, with nothing half made. */
	(void)sigprocmask(SIG_SETMASK, &old, 0);
}
