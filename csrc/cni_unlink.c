/*
 * cni_unlink.c: hand one rtnetlink request (an RTM_DELLINK) to a forked child
 * that makes it and exits, so that the plugin need not wait for the end of
 * the kernel's teardown.
 *
 * Why: unregistering a net device returns only after synchronize_net() and
 * rcu_barrier() (several RCU grace periods, 10-50 ms on a loaded host),
 * long after the device left the namespace's list. The plugin's caller only
 * needs the device gone (its name and index free, nothing listed); the
 * parent (Go) polls for that and also reads the child's verdict, so an
 * error is still reported. A thread cannot do this: the process's exit
 * (and the runtime's wait4) waits for every thread, one stuck in the
 * kernel included.
 *
 * The child runs no Go and no libc beyond syscall(): it closes every fd but
 * the netlink socket (the runtime's stdout pipe must see EOF when the
 * parent exits), sends the request, reads the acknowledgement and exits
 * with the errno it carries (0 on success), or 200-202 when it could not
 * talk to the kernel. Compiled into package cni through cni/unlink.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <unistd.h>

/* child_run is the child: raw syscalls only, then exit. */
static void child_run(int sock, const void *msg, size_t len)
{
	union {
		struct nlmsghdr h;
		char b[1024];
	} ack;
	long n;
	int err = 0;

	/* Everything but the socket, so no pipe end of the caller lingers. */
	if (sock > 0)
		syscall(SYS_close_range, 0U, (unsigned)sock - 1, 0U);
	syscall(SYS_close_range, (unsigned)sock + 1, ~0U, 0U);
	n = syscall(SYS_sendto, sock, msg, len, 0, NULL, 0);
	if (n < 0) {
		syscall(SYS_exit_group, 200);
	}
	for (;;) {
		n = syscall(SYS_recvfrom, sock, &ack, sizeof(ack), 0, NULL, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	if (n < (long)(sizeof(struct nlmsghdr) + sizeof(int)))
		syscall(SYS_exit_group, 201);
	if (ack.h.nlmsg_type == NLMSG_ERROR)
		err = -*(int *)NLMSG_DATA(&ack.h);
	syscall(SYS_exit_group, err > 0 && err < 200 ? err : (err ? 202 : 0));
}

/* nsb_cni_unlink_spawn opens a NETLINK_ROUTE socket in the caller's
 * network namespace and forks a child that sends msg (a whole netlink
 * message with NLM_F_ACK) on it. It returns the child's pid, or -errno. */
int nsb_cni_unlink_spawn(const void *msg, size_t len);
int nsb_cni_unlink_spawn(const void *msg, size_t len)
{
	sigset_t all, old;
	long pid;
	int sock, e;

	sock = (int)syscall(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (sock < 0)
		return -errno;
	/* No signal handler of the Go runtime may run in the child. */
	sigfillset(&all);
	if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0) {
		e = errno;
		close(sock);
		return -e;
	}
	/* Plain fork semantics (own copy of the memory, SIGCHLD to the
	 * parent) without glibc's fork handlers: the child calls none of
	 * glibc's locking code. */
	pid = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, 0UL);
	if (pid == 0)
		child_run(sock, msg, len);
	e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(sock);
	if (pid < 0)
		return -e;
	return (int)pid;
}
