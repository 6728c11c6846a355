package seccomp

import (
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Refused lists what the default profile refuses, group by group, with the
// reason. Names unknown on an architecture (iopl exists on x86 only) are
// left out there. The README prints this table.
var Refused = []struct {
	Names  []string
	Reason string
}{
	{[]string{"mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"},
		"change the mount tree: uncover what the sandbox's view hides"},
	{[]string{"unshare", "setns"},
		"make or join namespaces: new user namespaces reach kernel code written for root, setns leaves the sandbox"},
	{[]string{"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module"},
		"load code into the kernel or replace it"},
	{[]string{"bpf", "perf_event_open", "userfaultfd"},
		"large kernel attack surface, often used in exploits (userfaultfd stretches kernel races)"},
	{[]string{"keyctl", "add_key", "request_key"},
		"the kernel keyrings are not namespaced: keys of the host can leak or be planted"},
	{[]string{"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp"},
		"read or change other processes' memory, registers and files"},
	{[]string{"reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "vhangup", "syslog"},
		"administer the machine, or read the kernel log (addresses for exploits)"},
	{[]string{"settimeofday", "clock_settime", "clock_adjtime", "adjtimex"},
		"the clock is not namespaced: changing it changes the host's"},
	{[]string{"open_by_handle_at", "name_to_handle_at"},
		"open files by handle, bypassing the mount view (the Shocker escape)"},
	{[]string{"iopl", "ioperm", "modify_ldt", "uselib", "nfsservctl", "_sysctl", "lookup_dcookie"},
		"raw port I/O, legacy or obsolete interfaces with a history of bugs"},
}

// ioctls refused by the default profile: terminal input injection into the
// caller's terminal (CVE-2017-5226 in bubblewrap) and console control.
const (
	ioctlTIOCSTI   = 0x5412
	ioctlTIOCLINUX = 0x541c
)

// nsFlags are the CLONE_NEW* bits: clone with any of them is refused.
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// personalities the default profile allows (Docker's list): Linux, the
// 32-bit personality, UNAME26 and both, and the query 0xffffffff; anything
// else (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE...) weakens exploit defences.
var personalities = []uint64{0, 0x8, 0x20000, 0x20008, 0xffffffff}

// defaultProfile builds, once, the value Default returns; Compile
// recognises it by pointer and uses the program generated ahead of time.
var defaultProfile = sync.OnceValue(buildDefault)

// Default returns nsbox's built-in profile: every system call is allowed
// except those that break out of or administer a sandbox, which fail with
// EPERM (the list is Refused, plus clone with namespace flags, clone3 with
// ENOSYS so that libc falls back to clone, personality with unsafe flags,
// and the TIOCSTI and TIOCLINUX ioctls). It is a deny list in the manner of
// flatpak's (bubblewrap's main user) rather than Docker's allow list: it
// breaks no ordinary program, and every refusal has a stated reason.
//
// The returned value is shared: do not modify it (copy it first); Compile
// of it returns the program built ahead of time.
func Default() *specs.LinuxSeccomp { return defaultProfile() }

func uintp(v uint) *uint { return &v }

func buildDefault() *specs.LinuxSeccomp {
	known := func(names []string) []string {
		var out []string
		for _, n := range names {
			if _, ok := lookupSyscall(n); ok {
				out = append(out, n)
			}
		}
		return out
	}
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	if a, err := nativeArch(); err == nil {
		p.Architectures = []specs.Arch{a}
	}
	for _, g := range Refused {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: known(g.Names), Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EPERM))})
	}
	p.Syscalls = append(p.Syscalls,
		specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOSYS))},
		// The kernel takes ioctl's request as 32 bits, so only the low
		// half is compared: junk in the upper half must not slip past
		// (flatpak's CVE-2019-10063).
		specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EPERM)),
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xffffffff, ValueTwo: ioctlTIOCSTI, Op: specs.OpMaskedEqual}}},
		specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EPERM)),
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xffffffff, ValueTwo: ioctlTIOCLINUX, Op: specs.OpMaskedEqual}}},
	)
	// clone with any CLONE_NEW* bit: one rule a bit (MASKED_EQ with the
	// bit as mask and value), since the rules of a profile are ORed and
	// the conditions of one rule ANDed.
	for bit := uint64(1); bit != 0; bit <<= 1 {
		if nsFlags&bit != 0 {
			p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActErrno,
				ErrnoRet: uintp(uint(unix.EPERM)),
				Args:     []specs.LinuxSeccompArg{{Index: cloneFlagsArg(), Value: bit, ValueTwo: bit, Op: specs.OpMaskedEqual}}})
		}
	}
	// personality takes an unsigned int: its low 32 bits are compared,
	// as the kernel reads them. The allowed values first, then the rest
	// refused.
	for _, v := range personalities {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, ValueTwo: v, Op: specs.OpMaskedEqual}}})
	}
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActErrno,
		ErrnoRet: uintp(uint(unix.EPERM))})
	return p
}

// cloneFlagsArg is the index of clone's flags argument (0 everywhere but
// s390).
func cloneFlagsArg() uint { return 0 }
