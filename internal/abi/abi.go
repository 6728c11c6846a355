// Package abi holds what the Go code and the C in csrc/ must agree on and
// that belongs to neither side's public API: the numbers of the shim's
// setup stages and the signals that nsbox run, netns exec and the init
// forward to the payload, and the defaults the C fast paths share with Go.
// It is the source of truth: go generate ./internal/abi ./cmd/nsbox writes
// it (with the name rules of internal/names and run's flag table) into
// csrc/nsbox_gen.h, and tests fail when that file is stale.
package abi

//go:generate sh -c "NSBOX_GENERATE=1 go test -count=1 -run ^TestCSection$ ."

import (
	"time"

	"golang.org/x/sys/unix"
)

// Stages are the stages of the C shim's child setup in the order of their
// numbers (enum nsc_stage: NSC_OK is 0, NSC_STAGE_CLONE 1, ...). A failing
// child reports {stage, errno, index}; nsclone turns the number into a
// SetupError. New stages go at the end, so that numbers never change.
var Stages = []string{
	"OK",
	"CLONE",       // clone itself (reported by the parent)
	"PIPE",        // the parent's pipes
	"SYNC",        // waiting for the parent's go-ahead
	"HOOK",        // the parent's hook (maps, BeforeExec) refused
	"SETNS",       // index: the join entry
	"PROPAGATION", // making / (index 0) or /proc (index 1) private, slave or shared
	"MOUNT_PROC",
	"MOUNT", // index: the mount entry
	"HOSTNAME",
	"FORK", // the init forking the payload
	"SETGROUPS",
	"SETGID",
	"SETUID",
	"CHDIR",
	"FDS", // index: the target fd
	"SIGNALS",
	"EXEC", // index 1: the init's own exec from its memfd
	// The filesystem view (csrc/view.c); index: the fsop entry.
	"FS_SOURCE",  // opening a bind's source tree
	"FS_RDONLY",  // making it read-only
	"ROOT",       // binding the new root onto itself
	"RO_ROOT",    // making the root read-only
	"FS_DEST",    // resolving or creating DEST inside the root
	"FS_MOUNT",   // the mount (or symlink) itself
	"PIVOT",      // pivot_root into the new root
	"CHDIR_ROOT", // chdir "/" after the caller's directory was missing
	// csrc/limits.c
	"CGROUP", // index: the cgroup.procs entry
	"RLIMIT", // index: the rlimit entry
	"CAPS",   // index: the capability, or -1 for capset/keepcaps
	"NO_NEW_PRIVS",
	"SECCOMP",
	"LOOPBACK",
	"SETNS_PIDFD", // setns on the pidfd of Spec.JoinPid
	"ENTER_ROOT",  // the joined process's root and directory
	"ENTER_DIR",
}

// ForwardedSignals are the signals nsbox run and netns exec pass on to the
// payload (through the init when there is one) instead of dying of them,
// and that the init forwards to the payload. A signal the terminal sent to
// the whole foreground process group (si_code SI_KERNEL) is not forwarded:
// the payload, in that group too, got it already.
var ForwardedSignals = []unix.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2}

// Defaults the C fast paths share with Go; the Go packages that own them
// define their exported names from these (nsclone.DefaultPath,
// nsnet.DefaultIfName, nsnet.HostIfNameFormat, netns.RunDir).
const (
	// DefaultPath is the command search path when the environment has no PATH.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// DefaultIfName is a sandbox's interface name without --ifname.
	DefaultIfName = "eth0"
	// HostIfNameFormat formats the host end of a sandbox's veth from its pid.
	HostIfNameFormat = "nsb%x"
	// HostIfNameNextFormat formats the host end from the pid and a try
	// number (1 to HostIfNameTries-1) when the name of the tries before is
	// taken: a sandbox's veth goes with its network namespace, which the
	// kernel destroys asynchronously, and under load a dead sandbox's host
	// end was seen to outlive it by more than a minute, long enough for its
	// pid (pid_max is often 32768) to be reused by the next sandbox. A link
	// that has the name is never deleted (it may be a live sandbox's, of
	// another pid namespace): the next name is taken instead.
	HostIfNameNextFormat = "nsb%x-%x"
	// HostIfNameTries is how many names a sandbox's host end tries; its
	// longest name, with the largest pid (pid_max is at most 2^22), fits in
	// IFNAMSIZ-1 bytes.
	HostIfNameTries = 16
	// NetnsDir holds the named network namespaces (iproute2's).
	NetnsDir = "/run/netns"
	// NetnsEtcDir holds per-namespace files bound over /etc by netns exec.
	NetnsEtcDir = "/etc/netns"
)

// The wait for a new veth's carrier (nsnet's waitRunning and the static
// network of run's C fast path): the kernel's link watcher turns a veth's
// carrier on only when it gets the rtnl lock, and until then the sandbox's
// first packet is dropped and costs a retransmission (1 s). Both ends are
// polled for IFF_RUNNING every LinkRunningPoll, for at most LinkRunningWait
// in all; past that the payload starts anyway.
const (
	LinkRunningWait = time.Second
	LinkRunningPoll = 500 * time.Microsecond
)
