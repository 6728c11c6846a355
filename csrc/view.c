/*
 * view.c: the payload's filesystem view (nsclone's Spec.Root, ReadOnlyRoot
 * and FS), built by the CLONE_VM child in its new mount namespace before the
 * exec. Included by clone_shim.c; it follows the child's rules (raw syscalls
 * only, no allocation, every call checked, the first failure reported as
 * {stage, errno, index} by nsc_fail).
 *
 * It uses the new mount API (open_tree, move_mount, fsopen, fsmount,
 * mount_setattr) so that every mount is attached to a file descriptor that
 * openat2(RESOLVE_IN_ROOT) resolved inside the new root: a symlink in the
 * rootfs that points at /etc lands on the rootfs's own /etc, and ".." never
 * climbs out of it. Go lays the steps out (csrc/clone_shim.h, struct
 * nsc_fsop); --dev, for example, is a tmpfs followed by binds, a devpts and
 * symlinks.
 */
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#ifndef MOUNT_ATTR_RDONLY
/* musl's <sys/mount.h> lacks the new mount API that glibc's (2.36) has. */
#include <linux/mount.h>
#endif
#ifndef STATX_TYPE
/* Nor has musl 1.2.3 statx. */
#include <linux/stat.h>
#endif

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* nsc_open_in_root opens path (relative, already cleaned by Go) under
 * rootfd as O_PATH, resolving every symlink and ".." inside the root. */
static long nsc_open_in_root(int rootfd, const char *path)
{
	struct open_how how;
	how.flags = O_PATH | O_CLOEXEC;
	how.mode = 0;
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	return SYS4(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* nsc_dircache holds one directory inside the root open between steps:
 * the parent in which the last step created its mount point (for --dev,
 * the new /dev), so the next steps that create a node in it (the other
 * device nodes, pts, shm, the symlinks) skip the openat2 that finds the
 * node missing, the openat2 of the parent and the one of the new node.
 * It is dropped as soon as a mount covers it or a folder above it. */
struct nsc_dircache {
	long fd; /* -1: none */
	const char *path; /* its path from the root, as in nsc_fsop.prefix */
};

static int nsc_streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* nsc_dircache_drop closes the cached folder if a mount at path (a DEST
 * from the root) covers it: path is the folder or one above it. */
static void nsc_dircache_drop(struct nsc_dircache *c, const char *path)
{
	const char *a = path, *b = c->path;
	if (c->fd < 0)
		return;
	while (*a && *a == *b)
		a++, b++;
	if (!*a && (!*b || *b == '/')) {
		SYS1(SYS_close, c->fd);
		c->fd = -1;
	}
}

/* nsc_fs_create makes the last of the upto components of op's DEST in the
 * cached folder, if that is its parent and the node is missing: a file
 * (O_EXCL, opened: that fd is the mount point) or a folder (then opened
 * without following a symlink). -1 when it does not apply or fails: the
 * caller goes the long way (nsc_fs_dest), which finds what is there or
 * reports the same error. */
static long nsc_fs_create(struct nsc_dircache *c, const struct nsc_fsop *op, int upto)
{
	const char *name;
	long ret;
	if (upto < 2 || c->fd < 0 || !nsc_streq(c->path, op->prefix[upto - 2]))
		return -1;
	name = op->name[upto - 1];
	if (op->flags & NSC_FS_FILE) {
		ret = SYS4(SYS_openat, c->fd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		return ret < 0 ? -1 : ret;
	}
	if (SYS3(SYS_mkdirat, c->fd, name, 0755) < 0)
		return -1;
	ret = SYS4(SYS_openat, c->fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	return ret < 0 ? -1 : ret;
}

/* nsc_fs_dest returns an O_PATH fd of the first upto components of op's
 * DEST inside the root, creating the missing ones: directories, and for the
 * last component of a file bind an empty file. Each creation is relative to
 * a parent fd that was itself resolved inside the root, with a name that has
 * no '/', so nothing is ever made outside it (a dangling symlink there gives
 * EEXIST and then ENOENT, an error). */
static long nsc_fs_dest(int rootfd, const struct nsc_fsop *op, int upto, struct nsc_dircache *c)
{
	long ret, parent = -1;
	if (upto == 0)
		return SYS4(SYS_openat, rootfd, ".", O_PATH | O_CLOEXEC | O_DIRECTORY, 0);
	ret = nsc_open_in_root(rootfd, op->prefix[upto - 1]);
	if (ret != -ENOENT)
		return ret;
	for (int i = 0; i < upto; i++) {
		/* The last one was just found missing (a race that made it
		 * meanwhile ends in EEXIST below, then it is opened). */
		ret = i == upto - 1 ? -ENOENT : nsc_open_in_root(rootfd, op->prefix[i]);
		if (ret == -ENOENT) {
			long pfd = i == 0 ? rootfd : parent, r;
			if (i == upto - 1 && (op->flags & NSC_FS_FILE)) {
				r = SYS4(SYS_openat, pfd, op->name[i],
					 O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
				if (r >= 0)
					SYS1(SYS_close, r);
			} else {
				r = SYS3(SYS_mkdirat, pfd, op->name[i], 0755);
			}
			if (r < 0 && r != -EEXIST)
				ret = r;
			else
				ret = nsc_open_in_root(rootfd, op->prefix[i]);
		}
		if (parent >= 0 && i == upto - 1 && ret >= 0) {
			/* The last one was made in parent: kept for the next. */
			if (c->fd >= 0)
				SYS1(SYS_close, c->fd);
			c->fd = parent;
			c->path = op->prefix[i - 1];
		} else if (parent >= 0) {
			SYS1(SYS_close, parent);
		}
		if (ret < 0)
			return ret;
		parent = ret;
	}
	return parent;
}

/* nsc_fs_new makes a new filesystem (tmpfs, devpts, proc) with op's fsconfig
 * options and returns its detached mount. */
static long nsc_fs_new(const struct nsc_fsop *op)
{
	long fsfd, ret;
	fsfd = SYS2(SYS_fsopen, op->source, FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return fsfd;
	for (int i = 0; i + 1 < NSC_FS_NOPT && op->opt[i]; i += 2) {
		if (op->opt[i + 1])
			ret = SYS5(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, op->opt[i], op->opt[i + 1], 0);
		else
			ret = SYS5(SYS_fsconfig, fsfd, FSCONFIG_SET_FLAG, op->opt[i], 0, 0);
		if (ret < 0)
			goto out;
	}
	if ((ret = SYS5(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, 0, 0, 0)) < 0)
		goto out;
	ret = SYS3(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, op->attr);
out:
	SYS1(SYS_close, fsfd);
	return ret;
}

/* nsc_set_rdonly makes the mount at fd, and every mount below it, read-only.
 * Only MOUNT_ATTR_RDONLY is set: nosuid, nodev and noexec (locked or not)
 * stay as they are. A refusal is an error, never a writable mount. */
static long nsc_set_rdonly(int fd)
{
	struct mount_attr a;
	memset(&a, 0, sizeof a);
	a.attr_set = MOUNT_ATTR_RDONLY;
	return SYS5(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a);
}

/* nsc_fs_sources opens the source tree of every bind before anything is
 * mounted, so a source always means the caller's path even if an earlier
 * step covers it (as bubblewrap's sources are always the old root's). */
static void nsc_fs_sources(const struct nsc_spec *s, int errfd)
{
	long ret;
	for (int i = 0; i < s->nfsops; i++) {
		const struct nsc_fsop *op = &s->fsops[i];
		s->fs_fd[i] = -1;
		if (op->kind != NSC_FS_BIND)
			continue;
		ret = SYS3(SYS_open_tree, AT_FDCWD, op->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (ret < 0)
			nsc_fail(errfd, NSC_STAGE_FS_SOURCE, ret, i);
		s->fs_fd[i] = (int)ret;
		if ((op->flags & NSC_FS_RDONLY) && (ret = nsc_set_rdonly(s->fs_fd[i])) < 0)
			nsc_fail(errfd, NSC_STAGE_FS_RDONLY, ret, i);
	}
}

/* nsc_file_type returns the S_IFMT bits of fd, or -errno. */
static long nsc_file_type(int fd)
{
	struct statx st;
	long ret = SYS5(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_TYPE, &st);
	return ret < 0 ? ret : (long)(st.stx_mode & S_IFMT);
}

/* nsc_same_type checks that a bind's source and its mount point are both
 * directories or both not: -ENOTDIR for a directory onto a file, -EISDIR
 * for a file onto a directory. */
static long nsc_same_type(int src, int dest)
{
	long a = nsc_file_type(src), b;
	if (a < 0)
		return a;
	if ((b = nsc_file_type(dest)) < 0)
		return b;
	if ((a == S_IFDIR) != (b == S_IFDIR))
		return a == S_IFDIR ? -ENOTDIR : -EISDIR;
	return 0;
}

/* nsc_fs_step applies op i under rootfd. */
static void nsc_fs_step(const struct nsc_spec *s, int errfd, int rootfd, int i, struct nsc_dircache *c)
{
	const struct nsc_fsop *op = &s->fsops[i];
	long dest, ret, mnt;
	int last = op->ncomp;

	/* Whatever this step mounts covers a cached folder at or below it. */
	if (op->kind != NSC_FS_SYMLINK)
		nsc_dircache_drop(c, op->prefix[op->ncomp - 1]);
	if (op->kind == NSC_FS_SYMLINK && last >= 2 && c->fd >= 0 && nsc_streq(c->path, op->prefix[last - 2])) {
		/* The link's folder is the cached one. */
		if ((ret = SYS3(SYS_symlinkat, op->source, c->fd, op->name[last - 1])) < 0)
			nsc_fail(errfd, NSC_STAGE_FS_MOUNT, ret, i);
		return;
	}

	if (op->kind == NSC_FS_SYMLINK)
		last--; /* the link is made in its parent */
	if (op->kind == NSC_FS_RO_SELF) {
		/* Never created: what is not there needs no cover. */
		dest = nsc_open_in_root(rootfd, op->prefix[op->ncomp - 1]);
		if (dest == -ENOENT)
			return;
		if (dest < 0)
			nsc_fail(errfd, NSC_STAGE_FS_DEST, dest, i);
		mnt = SYS3(SYS_open_tree, dest, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
		if (mnt < 0) {
			SYS1(SYS_close, dest);
			nsc_fail(errfd, NSC_STAGE_FS_MOUNT, mnt, i);
		}
		if ((ret = nsc_set_rdonly((int)mnt)) < 0) {
			SYS1(SYS_close, mnt);
			SYS1(SYS_close, dest);
			nsc_fail(errfd, NSC_STAGE_FS_RDONLY, ret, i);
		}
		ret = SYS5(SYS_move_mount, mnt, "", dest, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
		SYS1(SYS_close, mnt);
		SYS1(SYS_close, dest);
		if (ret < 0)
			nsc_fail(errfd, NSC_STAGE_FS_MOUNT, ret, i);
		return;
	}
	dest = op->kind == NSC_FS_SYMLINK ? -1 : nsc_fs_create(c, op, last);
	if (dest < 0)
		dest = nsc_fs_dest(rootfd, op, last, c);
	if (dest < 0)
		nsc_fail(errfd, NSC_STAGE_FS_DEST, dest, i);
	switch (op->kind) {
	case NSC_FS_SYMLINK:
		ret = SYS3(SYS_symlinkat, op->source, dest, op->name[op->ncomp - 1]);
		break;
	case NSC_FS_BIND:
		ret = SYS5(SYS_move_mount, s->fs_fd[i], "", dest, "",
			   MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
		/* The kernel says EINVAL for a directory over a file, and
		 * never attaches one: then (only, it costs two statx a bind)
		 * say which. */
		if (ret == -EINVAL) {
			long t = nsc_same_type(s->fs_fd[i], (int)dest);
			if (t < 0)
				ret = t;
		}
		SYS1(SYS_close, s->fs_fd[i]);
		s->fs_fd[i] = -1;
		break;
	default:
		mnt = nsc_fs_new(op);
		if (mnt < 0) {
			ret = mnt;
			break;
		}
		ret = SYS5(SYS_move_mount, mnt, "", dest, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
		SYS1(SYS_close, mnt);
	}
	SYS1(SYS_close, dest);
	if (ret < 0)
		nsc_fail(errfd, NSC_STAGE_FS_MOUNT, ret, i);
}

/* nsc_pivot makes rootfd the root: pivot_root(".", ".") stacks the old root
 * on the new one, which is then detached (MNT_DETACH) after being made a
 * slave so that the unmount cannot propagate anywhere (runc does the same). */
static void nsc_pivot(int errfd, int rootfd)
{
	long ret;
	if ((ret = SYS1(SYS_fchdir, rootfd)) < 0 ||
	    (ret = SYS2(SYS_pivot_root, ".", ".")) < 0 ||
	    (ret = SYS5(SYS_mount, 0, ".", 0, MS_SLAVE | MS_REC, 0)) < 0 ||
	    (ret = SYS2(SYS_umount2, ".", MNT_DETACH)) < 0 ||
	    (ret = SYS1(SYS_chdir, "/")) < 0)
		nsc_fail(errfd, NSC_STAGE_PIVOT, ret, 0);
}

/* nsc_view builds the view: sources opened, the new root bound onto itself
 * (or the current root), made read-only if asked, the steps in order, then
 * pivot_root into the new root. Every fd it opens is closed before it
 * returns (nsc_payload's fd shuffle relies on it). */
static void nsc_view(const struct nsc_spec *s, int errfd)
{
	long ret, rootfd;
	struct nsc_dircache c = {-1, 0};
	nsc_fs_sources(s, errfd);
	if (s->root) {
		if ((ret = SYS5(SYS_mount, s->root, s->root, 0, MS_BIND | MS_REC, 0)) < 0)
			nsc_fail(errfd, NSC_STAGE_ROOT, ret, 0);
		rootfd = SYS4(SYS_openat, AT_FDCWD, s->root, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
	} else {
		rootfd = SYS4(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
	}
	if (rootfd < 0)
		nsc_fail(errfd, NSC_STAGE_ROOT, rootfd, 0);
	if (s->ro_root && (ret = nsc_set_rdonly((int)rootfd)) < 0)
		nsc_fail(errfd, NSC_STAGE_RO_ROOT, ret, 0);
	for (int i = 0; i < s->nfsops; i++)
		nsc_fs_step(s, errfd, (int)rootfd, i, &c);
	if (c.fd >= 0)
		SYS1(SYS_close, c.fd);
	if (s->root)
		nsc_pivot(errfd, (int)rootfd);
	SYS1(SYS_close, rootfd);
}
