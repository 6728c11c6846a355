/*
 * nsb_file.h: reading a small file whole, for the fast paths (one helper
 * for every /proc, cgroup, /etc and record file they read), and the start
 * time of a process (/proc/PID/stat) that records and nat owners carry.
 */
#ifndef NSBOX_NSB_FILE_H
#define NSBOX_NSB_FILE_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* nsb_read_small reads path (relative to dirfd; AT_FDCWD for a plain path)
 * into buf of size bytes and NUL-terminates it. It returns the length read,
 * or -1 with errno set: the open's or the read's, or EFBIG when whole is set
 * and the file fills buf (nothing is parsed from a cut file: the caller
 * leaves it to Go). Without whole, a longer file is cut at size - 1 bytes
 * (for a caller that reads only its start). One read suffices: the files
 * are small, and a regular or proc file's read returns what there is. It
 * uses openat: musl's open() adds an fcntl(FD_CLOEXEC) after each O_CLOEXEC
 * open, one syscall more. */
static __attribute__((unused)) ssize_t nsb_read_small(int dirfd, const char *path, char *buf, size_t size, int whole)
{
	ssize_t n;
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd); /* leaves errno alone when it succeeds, as here */
	if (n < 0)
		return -1;
	if (whole && (size_t)n == size - 1) {
		errno = EFBIG;
		return -1;
	}
	buf[n] = 0;
	return n;
}

/* nsb_proc_ticks reads the start time (clock ticks after boot) and the state
 * letter of pid from /proc/PID/stat, as sbstate.StartTicks; -1 if it
 * cannot. */
static __attribute__((unused)) long long nsb_proc_ticks(long pid, char *state)
{
	char path[64], buf[1024];
	const char *p;
	long long v = 0;
	int i;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if (nsb_read_small(AT_FDCWD, path, buf, sizeof buf, 0) <= 0)
		return -1;
	if (!(p = strrchr(buf, ')')) || p[1] != ' ')
		return -1;
	p += 2;
	*state = *p;
	for (i = 0; i < 19 && p; i++) /* state is field 3, starttime 22 */
		if ((p = strchr(p, ' ')))
			p++;
	if (!p || *p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return v;
}

#endif
