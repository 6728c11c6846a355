/*
 * cgroup_join.c: measures what moving a new process into a v1 cgroup costs
 * through each file. argv[1] is the hierarchy's directory (such as
 * /sys/fs/cgroup/pids), argv[2] the file ("cgroup.procs" or "tasks"),
 * argv[3] a count N, argv[4] the idle time before each move in
 * microseconds. N times: make a group named after this process, fork a child
 * that writes "0" to the file (moving itself) and times that write alone
 * with CLOCK_MONOTONIC, reap it, remove the group, then stay idle (a
 * separate nsbox run is a fresh process some time after the last move). It
 * prints the N times in nanoseconds, one a line.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
	char dir[512], file[600];
	int n, idle;
	if (argc != 5)
		return 2;
	n = atoi(argv[3]);
	idle = atoi(argv[4]);
	snprintf(dir, sizeof dir, "%s/nsbox-bench-join-%d", argv[1], (int)getpid());
	snprintf(file, sizeof file, "%s/%s", dir, argv[2]);
	for (int i = 0; i < n; i++) {
		int p[2], fd, st;
		long long d = -1;
		if (mkdir(dir, 0755) < 0 || (fd = open(file, O_WRONLY | O_CLOEXEC)) < 0 || pipe(p) < 0) {
			perror(dir);
			rmdir(dir);
			return 1;
		}
		pid_t c = fork();
		if (c == 0) {
			long long t0 = now();
			if (write(fd, "0", 1) != 1)
				_exit(3);
			d = now() - t0;
			if (write(p[1], &d, sizeof d) != sizeof d)
				_exit(4);
			_exit(0);
		}
		close(fd);
		close(p[1]);
		if (c < 0 || read(p[0], &d, sizeof d) != sizeof d || waitpid(c, &st, 0) != c || st != 0) {
			rmdir(dir);
			return 1;
		}
		close(p[0]);
		if (rmdir(dir) < 0) {
			perror(dir);
			return 1;
		}
		printf("%lld\n", d);
		if (idle > 0)
			usleep(idle);
	}
	return 0;
}
