/*
 * nsinit.c: the tiny init of nsbox, a freestanding static program (no libc)
 * that nsclone execs from a sealed memfd as the first process of a sandbox
 * (Spec.Init), so that the init shares nothing with the caller: the spawning
 * child stays a CLONE_VM child that copies no page tables, and no nsbox
 * binary is ever re-executed inside the sandbox (CVE-2019-5736).
 *
 * Built by csrc/gen_init.sh into csrc/nsinit_elf.h.
 *
 * usage: nsbox-init ERRFD MASK FLAGS PATH ARGV0 [ARG...]   (envp: the payload's)
 *   ERRFD  the spawn's error pipe (decimal); the payload reports a failed exec
 *          on it as {stage, errno, index}, and closes it by exec'ing
 *   MASK   the caller's signal mask (hex) for the payload
 *   FLAGS  1: no PID namespace (be a child subreaper); 2: the payload gets
 *          SIGKILL when the init dies
 *
 * It forks the payload, closes every fd, and then, with all signals blocked
 * (as nsclone execs it), runs nsc_init_loop (shared with clone_shim.c's
 * forked init): it reaps every child, forwards the signals of
 * internal/abi.ForwardedSignals to the payload (except those the terminal
 * sent to the whole process group) and exits with the payload's status,
 * 128+N when it died of signal N.
 */
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>

#include "nsc_syscall.h"
#include "nsbox_gen.h" /* enum nsc_stage, NSB_FWD_SIGNALS: generated from Go */
#include "nsc_init_loop.h"

static long parse(const char *s, int base)
{
	long v = 0;
	for (; *s; s++) {
		int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
		if (d < 0 || d >= base)
			return -1;
		v = v * base + d;
	}
	return v;
}

static void __attribute__((noreturn)) fail(long errfd, int stage, long ret)
{
	int rep[3];
	rep[0] = stage;
	rep[1] = (int)-ret;
	rep[2] = 0;
	SYS3(SYS_write, errfd, rep, sizeof rep);
	for (;;)
		SYS1(SYS_exit_group, 127);
}

__attribute__((used)) void nsinit_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	unsigned long mask;
	long errfd, flags, payload;

	if (argc < 6)
		SYS1(SYS_exit_group, 125);
	errfd = parse(argv[1], 10);
	mask = (unsigned long)parse(argv[2], 16);
	flags = parse(argv[3], 10);
	if (errfd < 0 || flags < 0)
		SYS1(SYS_exit_group, 125);

	SYS2(SYS_prctl, PR_SET_NAME, "nsbox-init");
	if (flags & 1)
		SYS2(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1);
	payload = SYS5(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (payload < 0)
		fail(errfd, NSC_STAGE_FORK, payload);
	if (payload == 0) {
		long ret;
		if (flags & 2)
			SYS2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
		SYS3(SYS_fcntl, errfd, F_SETFD, FD_CLOEXEC);
		SYS4(SYS_rt_sigprocmask, SIG_SETMASK, &mask, 0, 8);
		ret = SYS3(SYS_execve, argv[4], argv + 5, envp);
		fail(errfd, NSC_STAGE_EXEC, ret);
	}
	SYS3(SYS_close_range, 0, ~0U, 0);

	nsc_init_loop(payload);
}

#if defined(__x86_64__)
__asm__(".text\n.globl _start\n_start:\n\txor %rbp, %rbp\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall nsinit_main\n\thlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.globl _start\n_start:\n\tmov x0, sp\n\tbl nsinit_main\n\tbrk #0\n");
#endif
