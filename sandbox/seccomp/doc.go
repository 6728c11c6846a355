// Package seccomp reads seccomp profiles in the OCI runtime-spec format (the
// JSON of Docker's and podman's --security-opt seccomp=FILE: defaultAction,
// defaultErrnoRet, architectures, syscalls with names, action, errnoRet and
// args) into github.com/opencontainers/runtime-spec/specs-go types, and
// compiles them to classic BPF in pure Go (no libseccomp, so the nsbox binary
// stays static): syscall numbers and audit architectures come from the
// tables of github.com/elastic/go-seccomp-bpf (generated from the kernel's,
// and copied by go generate into zsyscalls_GOARCH.go, static data that costs
// nothing at start-up), the program is assembled in compile.go (that module's own Policy compiler,
// v1.6.0, tests every rule after the first one with conditions against an
// argument instead of the syscall number), and golang.org/x/net/bpf prints
// it.
//
// Docker's and podman's own keys (comment, archMap, defaultErrno and errno,
// and the includes/excludes conditions on caps, arches and minKernel) are
// read too; ParseFor evaluates the conditions for the capabilities the
// payload keeps, as dockerd does.
//
// Every compiled program checks the architecture first: a system call made
// through another ABI (i386's int 0x80 on x86_64, or any foreign audit arch)
// kills the process, as libseccomp's default bad-arch action does, and an x32
// system call returns ENOSYS. Unknown syscall names, unknown actions or
// operators, and profiles that do not cover the running architecture are
// errors naming what is wrong: nothing is skipped silently.
//
// Default returns nsbox's built-in profile (see its doc and the README); its
// program is generated ahead of time (zdefaultprog.go, go generate) so that
// using it costs only the seccomp(2) load.
//
// Installing a program is nsclone's job (the last step before exec). Debugging:
// grep Seccomp /proc/PID/status; strace shows refused calls as EPERM/ENOSYS;
// Dump prints a program.
package seccomp
