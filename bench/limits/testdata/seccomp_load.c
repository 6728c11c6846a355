/*
 * seccomp_load.c: measures what loading a seccomp program costs. argv[1] is
 * a file of struct sock_filter, argv[2] a count N: N times, a forked child
 * sets no_new_privs and loads the program, timing the seccomp(2) call alone
 * with CLOCK_MONOTONIC; the parent prints the N times in nanoseconds, one a
 * line.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static struct sock_filter prog[4096];
	int fd, n, p[2];
	long len;
	if (argc != 3 || (fd = open(argv[1], O_RDONLY)) < 0)
		return 2;
	len = read(fd, prog, sizeof prog);
	if (len <= 0 || len % sizeof prog[0])
		return 2;
	n = atoi(argv[2]);
	if (pipe(p) < 0)
		return 2;
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return 3;
		if (pid == 0) {
			struct sock_fprog f = {(unsigned short)(len / sizeof prog[0]), prog};
			struct timespec a, b;
			long long ns;
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
				_exit(4);
			clock_gettime(CLOCK_MONOTONIC, &a);
			if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &f) < 0)
				_exit(5);
			clock_gettime(CLOCK_MONOTONIC, &b);
			ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
			if (write(p[1], &ns, sizeof ns) != sizeof ns)
				_exit(6);
			_exit(0);
		}
		int st;
		long long ns;
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 7;
		if (read(p[0], &ns, sizeof ns) != sizeof ns)
			return 8;
		printf("%lld\n", ns);
	}
	return 0;
}
