/*
 * escape.c: the escape probe of TestRunSandboxEscape. It first proves that
 * it runs in mount and PID namespaces other than the test's (whose inodes
 * are argv[1] and argv[2]) and refuses to do anything otherwise. Then it
 * tries each escape and prints one line per attempt: "NAME ok" when the
 * call succeeded, else "NAME ERRNONAME". argv[3] is a host pid to signal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case EROFS: return "EROFS";
	case ENOSYS: return "ENOSYS";
	case ESRCH: return "ESRCH";
	case EAGAIN: return "EAGAIN";
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	}
	static char b[32];
	snprintf(b, sizeof b, "errno%d", e);
	return b;
}

static void report(const char *name, long ret)
{
	if (ret < 0)
		printf("%s %s\n", name, ename(errno));
	else
		printf("%s ok\n", name);
	fflush(stdout);
}

static unsigned long ino(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	return st.st_ino;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 98;
	unsigned long mnt = ino("/proc/self/ns/mnt"), pid = ino("/proc/self/ns/pid");
	if (mnt == 0 || pid == 0 || mnt == strtoul(argv[1], 0, 10) || pid == strtoul(argv[2], 0, 10)) {
		fprintf(stderr, "escape: not in new mount and PID namespaces: refusing\n");
		return 99;
	}
	printf("sandboxed ok\n");

	report("mount", mount("tmpfs", "/mnt", "tmpfs", 0, 0));
	report("umount", umount2("/proc", MNT_DETACH));
	report("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
	report("unshare", unshare(CLONE_NEWUSER));
	{
		int fd = open("/proc/self/ns/net", O_RDONLY);
		report("setns", fd < 0 ? fd : setns(fd, 0));
	}
	{
		struct clone_args ca;
		memset(&ca, 0, sizeof ca);
		ca.flags = CLONE_NEWUSER;
		ca.exit_signal = SIGCHLD;
		long r = syscall(SYS_clone3, &ca, sizeof ca);
		if (r == 0)
			_exit(0);
		report("clone3_newuser", r);
	}
	{
		long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
		if (r == 0)
			_exit(0);
		report("clone_newuser", r);
	}
	report("keyctl", syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0));
	report("bpf", syscall(SYS_bpf, 5 /* BPF_PROG_LOAD */, 0, 0));
	report("perf_event_open", syscall(SYS_perf_event_open, 0, 0, -1, -1, 0));
	report("userfaultfd", syscall(SYS_userfaultfd, 0));
	report("kexec_load", syscall(SYS_kexec_load, 0, 0, 0, 0));
	report("init_module", syscall(SYS_init_module, 0, 0, ""));
	report("reboot", syscall(SYS_reboot, 0xfee1dead, 672274793, 0 /* CAD_OFF */, 0));
	report("ptrace_parent", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, getppid(), 0, 0));
	report("write_usr", open("/usr/escape-probe", O_WRONLY | O_CREAT, 0644));
	report("write_etc", open("/etc/escape-probe", O_WRONLY | O_CREAT, 0644));
	report("open_disk", open("/dev/sda", O_RDONLY));
	report("open_mem", open("/dev/mem", O_RDONLY));
	report("mknod_disk", mknod("/tmp/sda", S_IFBLK | 0600, makedev(8, 0)));
	{
		struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct d[2];
		memset(d, 0, sizeof d);
		d[0].effective = d[0].permitted = 1u << CAP_SYS_ADMIN;
		report("capset", syscall(SYS_capset, &h, d));
	}
	report("kill_host", kill((pid_t)strtol(argv[3], 0, 10), 0));
	{
		/* Fork bomb: children wait; stop at the first failure. */
		int n = 0;
		long r = 0;
		for (n = 0; n < 5000; n++) {
			r = fork();
			if (r == 0) {
				pause();
				_exit(0);
			}
			if (r < 0)
				break;
		}
		report("fork_bomb", r);
		/* The children die with the PID namespace when we exit. */
	}
	return 0;
}
