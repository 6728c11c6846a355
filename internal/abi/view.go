package abi

import "golang.org/x/sys/unix"

// FSKind is the kind of one step of a sandbox's filesystem view, as the
// child (csrc/view.c, enum nsc_fs_kind) takes it.
type FSKind int

// The kinds of view steps (csrc/view.c).
const (
	FSBind    FSKind = 1 // Source: a host path, attached with move_mount
	FSNew     FSKind = 2 // Source: a filesystem type for fsopen (tmpfs, devpts, proc)
	FSSymlink FSKind = 3 // Source: the link's text; the destination is the link
	FSROSelf  FSKind = 4 // the destination bound read-only onto itself; skipped if missing
)

// FSMaxOpts is the most fsconfig options (keys and values) of one step.
const FSMaxOpts = 8

// Flags of a bind step.
const (
	FSReadOnly = 1 // read-only, recursively (keeps nosuid/nodev/noexec)
	FSFile     = 2 // the source is not a directory, so the destination is made a file
)

// FSStep is one step of a built-in part of a view (DevSteps, ProcSteps).
// nsclone lays these out for Go's spawn path and nsbox_gen.h carries them
// for the C fast path of run, so both build the same mounts.
type FSStep struct {
	Kind   FSKind
	Flags  int
	Source string
	// Opts are fsconfig key, value pairs of an FSNew step; an empty value
	// is a flag.
	Opts []string
	// Attr are the MOUNT_ATTR_* bits of an FSNew step's mount.
	Attr uint64
	// Name is the destination below the part's directory ("": the
	// directory itself).
	Name string
}

// DevNodes are the device nodes of --dev (nsclone.Dev), bound from the
// caller's /dev.
var DevNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// DevSteps are the steps of --dev below its directory (usually /dev): what
// bubblewrap's --dev makes, less its core link.
var DevSteps = devSteps()

func devSteps() []FSStep {
	out := []FSStep{{Kind: FSNew, Source: "tmpfs", Opts: []string{"source", "tmpfs", "mode", "755"}, Attr: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}}
	for _, n := range DevNodes {
		out = append(out, FSStep{Kind: FSBind, Flags: FSFile, Source: "/dev/" + n, Name: n})
	}
	out = append(out,
		FSStep{Kind: FSNew, Source: "devpts", Opts: []string{"source", "devpts", "newinstance", "", "ptmxmode", "0666", "mode", "620"},
			Attr: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC, Name: "pts"},
		FSStep{Kind: FSSymlink, Source: "pts/ptmx", Name: "ptmx"},
		FSStep{Kind: FSNew, Source: "tmpfs", Opts: []string{"source", "tmpfs", "mode", "1777"}, Attr: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV, Name: "shm"},
		FSStep{Kind: FSSymlink, Source: "/proc/self/fd", Name: "fd"},
		FSStep{Kind: FSSymlink, Source: "/proc/self/fd/0", Name: "stdin"},
		FSStep{Kind: FSSymlink, Source: "/proc/self/fd/1", Name: "stdout"},
		FSStep{Kind: FSSymlink, Source: "/proc/self/fd/2", Name: "stderr"},
	)
	return out
}

// ProcCovered are the entries of a view's /proc made read-only, as
// bubblewrap does: the parts that act on the whole machine (sysctls, SysRq,
// IRQ affinity, bus devices).
var ProcCovered = []string{"sys", "sysrq-trigger", "irq", "bus"}

// ProcSteps are the first steps of a view with a new PID namespace: a fresh
// /proc, then ProcCovered read-only (below ProcDir).
var ProcSteps = procSteps()

// ProcDir is where ProcSteps land.
const ProcDir = "/proc"

func procSteps() []FSStep {
	out := []FSStep{{Kind: FSNew, Source: "proc", Opts: []string{"source", "proc"}, Attr: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}}
	for _, p := range ProcCovered {
		out = append(out, FSStep{Kind: FSROSelf, Name: p})
	}
	return out
}

// TmpfsAttr are the MOUNT_ATTR_* bits of a --tmpfs (nsclone.Tmpfs), and
// TmpfsDefaultMode its mode when none is given.
const (
	TmpfsAttr        = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	TmpfsDefaultMode = 0o755
)
