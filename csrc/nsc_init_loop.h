/*
 * nsc_init_loop.h: the loop of nsbox's init, shared by nsinit.c (the init
 * exec'd from a sealed memfd) and clone_shim.c (the init forked on a copy
 * of the caller's memory where no memfd can be exec'd). Raw syscalls only,
 * no libc: nsinit is freestanding. Needs nsc_syscall.h and nsbox_gen.h.
 */
#ifndef NSBOX_NSC_INIT_LOOP_H
#define NSBOX_NSC_INIT_LOOP_H

#include <signal.h>
#include <sys/wait.h>
#include <sys/syscall.h>

/* nsc_init_loop runs with all signals blocked, taking them with
 * rt_sigtimedwait: it reaps every child, forwards the signals of
 * NSB_FWD_SIGNALS to the payload and exits with its status, 128+N when it
 * died of signal N. A signal the terminal sent to the whole foreground
 * process group (SI_KERNEL) is not forwarded: the payload, in our process
 * group, got it already. */
static void __attribute__((noreturn)) nsc_init_loop(long payload)
{
	static const int fwd[NSB_NFWD] = NSB_FWD_SIGNALS;
	unsigned long set = 1UL << (SIGCHLD - 1);
	for (int i = 0; i < NSB_NFWD; i++)
		set |= 1UL << (fwd[i] - 1);
	for (;;) {
		int st;
		long p;
		while ((p = SYS4(SYS_wait4, -1, &st, WNOHANG | __WALL, 0)) > 0) {
			if (p != payload)
				continue;
			if (WIFEXITED(st))
				SYS1(SYS_exit_group, WEXITSTATUS(st));
			SYS1(SYS_exit_group, 128 + WTERMSIG(st));
		}
		if (p == -ECHILD)
			SYS1(SYS_exit_group, 125); /* cannot happen: the payload is ours */
		struct {
			int signo, err, code, pad;
			char rest[112];
		} info; /* the kernel's siginfo_t: 128 bytes */
		long sig = SYS4(SYS_rt_sigtimedwait, &set, &info, 0, 8);
		if (sig > 0 && sig != SIGCHLD && info.code != SI_KERNEL)
			SYS2(SYS_kill, payload, sig);
	}
}

#endif
