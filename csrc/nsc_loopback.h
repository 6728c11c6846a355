/*
 * nsc_loopback.h: bring lo up in the caller's network namespace, with raw
 * syscalls only (the CLONE_VM child of clone_shim.c and run's late_ns.c
 * helper share the caller's errno).
 */
#ifndef NSBOX_NSC_LOOPBACK_H
#define NSBOX_NSC_LOOPBACK_H

#ifndef _LINUX_IF_H /* run_fast.c has the kernel's, whose struct ifreq is the same */
#include <net/if.h>
#endif
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "nsc_syscall.h"

/* nsc_lo_up sets IFF_UP on lo with SIOCGIFFLAGS/SIOCSIFFLAGS on a datagram
 * socket made in the namespace: three syscalls, where a netlink exchange
 * would need more. It returns 0 or -errno. */
static inline long nsc_lo_up(void)
{
	struct ifreq ifr;
	long fd, ret;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_name[0] = 'l';
	ifr.ifr_name[1] = 'o';
	fd = SYS3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	ret = SYS3(SYS_ioctl, fd, SIOCGIFFLAGS, &ifr);
	if (ret >= 0) {
		ifr.ifr_flags |= IFF_UP;
		ret = SYS3(SYS_ioctl, fd, SIOCSIFFLAGS, &ifr);
	}
	SYS1(SYS_close, fd);
	return ret < 0 ? ret : 0;
}

#endif
