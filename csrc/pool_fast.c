/*
 * pool_fast.c: the warm pool part of the C fast path of `nsbox run`:
 *
 *   nsbox run --pool NAME [namespace flags...] -- CMD
 *
 * included by run_fast.c and run from its ELF constructor, before the Go
 * runtime starts. It does what pool.Client.Claim and run's runNet do for a
 * claim, with the wire format of internal/poolwire generated into
 * nsbox_gen.h: connect to the pool's SOCK_SEQPACKET socket (refusing one
 * owned by neither root nor us, as the Go client does), send the claim
 * request, receive the reply and its fds (SCM_RIGHTS). A granted claim
 * carries NSB_POOL_CLAIM_FDS fds, the claimed network namespace first;
 * an empty pool's reply carries one and an error none: both are left to Go.
 * The spawn then joins the namespace (setns by fd in the child), and the
 * claim lasts as long as the connection: run_fast.c closes it once the
 * payload ended (the pool destroys the namespace), and the kernel closes it
 * if nsbox dies, as with the Go client.
 *
 * Errors: this file never prints. Any failure before the spawn closes
 * what it holds (a claimed namespace goes back to the pool, which destroys
 * it) and returns to Go, which claims again and prints its own message. The
 * claim request does not wait (wait_ms 0): the pool answers at once with a
 * ready namespace or "empty", and an empty pool is Go's (it waits up to
 * --pool-timeout, then wires a namespace itself), so it costs one round
 * trip more, never a second wait.
 * A new mount namespace (the default namespaces) gets the slot's
 * resolv.conf bound over NSB_POOL_RESOLV_TARGET, as run_pool.go's claim
 * does: the pool writes that file when it wires the namespace and sends it
 * as a third fd; nsb_pool_resolv turns it into the path the child binds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "nsbox_gen.h" /* internal/poolwire's wire format */
#include "nsb_name.h"  /* the pool name rule's check */

/* nsb_pool is one claim: the connection that holds it and the namespace. */
struct nsb_pool {
	const char *name;
	int conn;   /* the claim lasts until this is closed; -1 */
	int netns;  /* the claimed network namespace; -1 */
	int resolv; /* its resolv.conf (the pool's file), -1 if it has none */
	char resolv_path[256];
};

/* nsb_pool_name_ok applies poolwire.ValidName (its rule, generated). */
static int nsb_pool_name_ok(const char *s) { return nsb_name_ok(&nsb_rule_pool, s); }

/* nsb_pool_close gives the claim back (the pool destroys the namespace). */
static void nsb_pool_close(struct nsb_pool *p)
{
	if (p->netns >= 0)
		close(p->netns);
	if (p->resolv >= 0)
		close(p->resolv);
	if (p->conn >= 0)
		close(p->conn);
	p->netns = p->resolv = p->conn = -1;
}

/* nsb_pool_connect connects to the pool's socket as pool.Client.dial:
 * a socket owned by root or by us, else -1. */
static int nsb_pool_connect(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {NSB_POOL_REPLY_TIMEOUT_MS / 1000, (NSB_POOL_REPLY_TIMEOUT_MS % 1000) * 1000};
	struct stat st;
	int fd;

	if (snprintf(sa.sun_path, sizeof sa.sun_path, NSB_POOL_SOCKET_DIR "/%s" NSB_POOL_SOCKET_SUFFIX, name) >=
	    (int)sizeof sa.sun_path)
		return -1;
	if (stat(sa.sun_path, &st) < 0 || !S_ISSOCK(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()))
		return -1;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Below 3 the child would take it for a stdio fd (stdio is open, see
	 * nsb_stdio_open, so this cannot happen; checked all the same). */
	if (fd < 3 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* nsb_pool_is_netns is true when fd is a network namespace (nsfs). */
static int nsb_pool_is_netns(int fd)
{
	struct statfs sf;
	return fd >= 3 && fstatfs(fd, &sf) == 0 && sf.f_type == NSFS_MAGIC;
}

/* nsb_pool_claim claims a namespace of pool p->name; 0 on success (p holds
 * the connection and the namespace), -1 with nothing held. */
static int nsb_pool_claim(struct nsb_pool *p)
{
	static char reply[NSB_POOL_MAX_MESSAGE];
	static const char req[] = NSB_POOL_CLAIM_REQUEST;
	union {
		char buf[CMSG_SPACE(sizeof(int) * (NSB_POOL_CLAIM_FDS + 2))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {reply, sizeof reply};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
	int fds[NSB_POOL_CLAIM_FDS + 2], nfds = 0;
	ssize_t n;

	p->netns = p->resolv = -1;
	if ((p->conn = nsb_pool_connect(p->name)) < 0)
		return -1;
	do
		n = send(p->conn, req, sizeof req - 1, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(sizeof req - 1))
		goto fail;
	do
		n = recvmsg(p->conn, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		goto fail;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (nfds < NSB_POOL_CLAIM_FDS + 2)
				fds[nfds++] = fd;
			else
				close(fd);
		}
	}
	/* A granted claim is a non-empty reply with exactly its fds, the
	 * resolv.conf one optional (as pool.Client.Claim checks); an empty pool
	 * or an error is Go's. */
	if (n > 0 && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
	    (nfds == NSB_POOL_CLAIM_FDS || (nfds == NSB_POOL_CLAIM_FDS + 1 && NSB_POOL_CLAIM_RESOLV_FD == NSB_POOL_CLAIM_FDS)) &&
	    nsb_pool_is_netns(fds[NSB_POOL_CLAIM_NETNS_FD])) {
		for (int i = 0; i < nfds; i++)
			if (i != NSB_POOL_CLAIM_NETNS_FD && i != NSB_POOL_CLAIM_RESOLV_FD)
				close(fds[i]); /* the bridge's namespace: for --publish, Go's */
		p->netns = fds[NSB_POOL_CLAIM_NETNS_FD];
		if (nfds > NSB_POOL_CLAIM_RESOLV_FD)
			p->resolv = fds[NSB_POOL_CLAIM_RESOLV_FD];
		return 0;
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
fail:
	nsb_pool_close(p);
	return -1;
}

/* nsb_pool_resolv fills m with the bind of the claim's resolv.conf over
 * NSB_POOL_RESOLV_TARGET, the mount run_pool.go adds for a new mount
 * namespace: the source is the path of the file the pool sent (its fd's
 * link), which the child binds in its copy of this mount namespace (a
 * bind from the fd itself would name a mount of another namespace). It
 * returns 0 with m filled, 1 when the slot has no resolv.conf (no DNS: no
 * bind, as in Go), -1 when the path is not the pool's file (Go then runs). */
static int nsb_pool_resolv(struct nsb_pool *p, struct nsc_mount *m)
{
	static const char dir[] = NSB_POOL_SOCKET_DIR "/";
	char link[32];
	ssize_t n;

	if (p->resolv < 0)
		return 1;
	snprintf(link, sizeof link, "/proc/self/fd/%d", p->resolv);
	n = readlink(link, p->resolv_path, sizeof p->resolv_path - 1);
	if (n <= 0 || n >= (ssize_t)sizeof p->resolv_path - 1)
		return -1;
	p->resolv_path[n] = 0;
	if (strncmp(p->resolv_path, dir, sizeof dir - 1) != 0 || strstr(p->resolv_path, "/../"))
		return -1;
	close(p->resolv);
	p->resolv = -1; /* the file stays until the claim ends (the pool removes it) */
	m->source = p->resolv_path;
	m->target = NSB_POOL_RESOLV_TARGET;
	m->fstype = 0;
	m->data = 0;
	m->flags = MS_BIND;
	return 0;
}
