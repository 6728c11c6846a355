/*
 * nsc_syscall.h: raw syscalls for code that must not touch errno or libc
 * (the CLONE_VM child of clone_shim.c, and nsinit.c, which has no libc).
 */
#ifndef NSBOX_NSC_SYSCALL_H
#define NSBOX_NSC_SYSCALL_H

/* Raw syscalls: they return -errno and never touch errno, which the CLONE_VM
 * child shares with the calling thread. */
#if defined(__x86_64__)
static inline long nsc_sys(long n, long a, long b, long c, long d, long e)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
static inline long nsc_sys(long n, long a, long b, long c, long d, long e)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4)
			 : "memory");
	return x0;
}
#else
#error "clone_shim: raw syscalls are written for x86_64 and aarch64 only"
#endif

#define SYS0(n) nsc_sys((n), 0, 0, 0, 0, 0)
#define SYS1(n, a) nsc_sys((n), (long)(a), 0, 0, 0, 0)
#define SYS2(n, a, b) nsc_sys((n), (long)(a), (long)(b), 0, 0, 0)
#define SYS3(n, a, b, c) nsc_sys((n), (long)(a), (long)(b), (long)(c), 0, 0)
#define SYS4(n, a, b, c, d) nsc_sys((n), (long)(a), (long)(b), (long)(c), (long)(d), 0)
#define SYS5(n, a, b, c, d, e) nsc_sys((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e))

#endif
