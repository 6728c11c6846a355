package nsclone

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/sandbox/caps"
	"github.com/nsbox/nsbox/sandbox/cgroup"
	"github.com/nsbox/nsbox/sandbox/rlimit"
)

// Namespace is a set of Linux namespace kinds; its bits are the CLONE_NEW*
// flags of clone(2).
type Namespace uint64

// The namespace kinds.
const (
	IPC Namespace = unix.CLONE_NEWIPC
	PID Namespace = unix.CLONE_NEWPID
	// Mnt is the mount namespace (CLONE_NEWNS, /proc/PID/ns/mnt); the
	// name Mount belongs to the mount(2) description type.
	Mnt    Namespace = unix.CLONE_NEWNS
	Net    Namespace = unix.CLONE_NEWNET
	UTS    Namespace = unix.CLONE_NEWUTS
	User   Namespace = unix.CLONE_NEWUSER
	Cgroup Namespace = unix.CLONE_NEWCGROUP

	allNamespaces = IPC | PID | Mnt | Net | UTS | User | Cgroup
)

// nsNames lists the kinds in the order the child joins them: the user
// namespace first (it grants the rights for the others), mount last.
var nsNames = []struct {
	ns   Namespace
	name string
}{
	{User, "user"}, {IPC, "ipc"}, {UTS, "uts"}, {Net, "net"}, {PID, "pid"}, {Cgroup, "cgroup"}, {Mnt, "mnt"},
}

// String names the kinds in n, joined by "|" (as in /proc/PID/ns: "ipc|pid|mnt").
func (n Namespace) String() string {
	var parts []string
	for _, k := range nsNames {
		if n&k.ns != 0 {
			parts = append(parts, k.name)
		}
	}
	if rest := n &^ allNamespaces; rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint64(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// IDMap is one line of a user namespace's uid_map or gid_map: Size ids from
// HostID on map to ContainerID on.
type IDMap struct{ ContainerID, HostID, Size uint32 }

// Mount is one mount(2) the child makes; Data empty passes NULL.
type Mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
}

// Spec describes a process to spawn. Its zero value is not runnable: Path is
// required. Every other field's zero value keeps the caller's state.
type Spec struct {
	// Path is the program to execute. Without a slash it is looked up in
	// the PATH of Env (or of the caller when Env is nil).
	Path string
	// Args are the arguments including argv[0]; empty means {Path}.
	Args []string
	// Env is the environment; nil means the caller's (os.Environ()).
	Env []string
	// Dir is the working directory of the child; empty keeps the caller's.
	Dir string

	// Namespaces are created for the child.
	Namespaces Namespace
	// MountProc mounts a fresh /proc (needs PID and Mnt).
	MountProc bool
	// Propagation is applied recursively to / in the new mount namespace
	// before any mount: "private" (the default, also when empty), "slave",
	// "shared" or "unchanged". Anything but empty needs Mnt.
	Propagation string
	// Hostname is set in the new UTS namespace (needs UTS); at most 64 bytes.
	Hostname string
	// UID and GID are the ids the child drops to after setup; nil keeps
	// the caller's. When either is set, the supplementary groups become
	// Groups (empty: none).
	UID, GID *uint32
	// Groups are the supplementary groups set with UID or GID (as
	// initgroups(3) would for a user); ignored when neither is set.
	Groups []uint32
	// UIDMap and GIDMap are written for a new user namespace.
	UIDMap, GIDMap []IDMap
	// MapRoot maps the caller's uid and gid to 0 in a new user namespace
	// (the one-line "0 <uid> 1" map); it excludes UIDMap and GIDMap.
	MapRoot bool
	// Join lists existing namespaces to enter (setns), each kind by the
	// path of a namespace file such as /run/netns/NAME or /proc/PID/ns/net.
	// A kind cannot be both joined and new. Joining a PID namespace affects
	// the payload only with Init (setns(PID) moves the children).
	Join map[Namespace]string

	// JoinPidfd, when set, is a pidfd (pidfd_open(2)) of a running
	// process whose namespaces JoinPidfdNamespaces the child enters with
	// one setns(2), atomically, before Join (Linux 5.8+). Leave out the
	// kinds the caller already shares with it: re-entering one's own user
	// namespace is EINVAL.
	JoinPidfd           *os.File
	JoinPidfdNamespaces Namespace
	// EnterRoot and EnterDir, when not empty, become the child's root
	// (chroot) and working directory right after it joined namespaces; to
	// enter a process, its /proc/PID/root and /proc/PID/cwd, as nsenter
	// --root --wd does. They are opened by the caller before the clone,
	// and a Path without a slash is looked up under EnterRoot.
	EnterRoot, EnterDir string

	// Stdin, Stdout and Stderr become fds 0, 1 and 2; nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles become fds 3, 4, ...; a nil entry leaves that fd closed.
	ExtraFiles []*os.File

	// Init runs a tiny init, nsinit (see the package doc), as the child
	// (PID 1 with a PID namespace) that forks the payload, reaps orphans,
	// forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the
	// payload and exits with its status (128+N when it died of signal N, so
	// ExitStatus.Signaled is false then). Without a PID namespace the init
	// is a child subreaper and the payload gets SIGKILL if the init dies.
	Init bool

	// Mounts are extra mounts the child makes, in order, after the
	// propagation change and /proc and after joining Join (so a sysfs
	// mounted here shows the joined netns), before dropping ids. Needs a
	// new mount namespace (Mnt).
	Mounts []Mount

	// Root, when not empty, is the directory (an absolute path of the
	// caller's) that becomes the payload's "/": it is bound onto itself,
	// the steps of FS land inside it, and the child pivot_root()s into it
	// and detaches the old root (MNT_DETACH), so nothing of the caller's
	// tree stays reachable beyond what FS binds in. With MountProc, /proc
	// is mounted inside it. Needs Mnt, and Propagation private or slave.
	// Without Dir, the payload starts in the caller's directory if that
	// exists inside Root, else in "/".
	Root string
	// ReadOnlyRoot makes the root (Root, or the caller's "/" as the new
	// mount namespace sees it) and every mount below it read-only, before
	// the steps of FS (which then need their mount points to exist, or to
	// be created inside a writable step such as a Tmpfs). Needs Mnt.
	ReadOnlyRoot bool
	// FS are the steps of the filesystem view (binds, tmpfs, a minimal
	// /dev), applied in order by the child before the exec, each DEST
	// resolved inside the new root. See FSMount. Needs Mnt.
	FS []FSMount

	// BeforeExec, when set, runs in the parent after the child is cloned
	// (its new namespaces exist) and any uid/gid maps are written; the
	// child waits meanwhile (it joins Join and does the rest of its setup
	// after) and goes on only after it returns nil. An error kills the
	// child (its namespaces go with it) and Start returns that error. pid is
	// the child's pid as the caller sees it. It runs on the goroutine that
	// called Start (on one of its own with ParentDeathSignal), whose OS
	// thread stays locked meanwhile.
	BeforeExec func(pid int) error

	// ParentDeathSignal, when not zero, is sent to the child (the payload,
	// or the init) when the process that started it dies, even of SIGKILL,
	// so that a sandbox never outlives nsbox (its namespaces, and the veth
	// in its network namespace, go with it). It is set after the ids are
	// dropped, right before exec (a credential change clears it); the exec
	// of a set-user-ID program clears it too. If the caller is already gone
	// by then, the child exits instead of running. The kernel sends it when
	// the thread that cloned the child exits, so Start clones on a thread
	// that stays locked to a goroutine of its own until Wait reaps the child
	// (one parked OS thread per running child); no other goroutine can end
	// that thread.
	ParentDeathSignal syscall.Signal

	// LoopbackUp brings the loopback interface of the new network
	// namespace up in the child (needs Net), so that a sandbox without
	// other interfaces still reaches its own 127.0.0.1.
	LoopbackUp bool

	// Capabilities, when not nil, is exactly the set of capabilities the
	// payload keeps (package sandbox/caps builds it from names): every
	// other one is dropped from the bounding set (so no setuid binary or
	// file capability brings it back) and from the permitted, effective
	// and inheritable sets; with a non-root UID the kept ones are also
	// raised in the ambient set, so they survive the payload's exec. It
	// must be within the caller's effective set. nil keeps the caller's
	// capabilities (what a uid change leaves of them, as setuid(2) says).
	Capabilities *caps.Set

	// NoNewPrivs sets PR_SET_NO_NEW_PRIVS before exec: setuid bits and
	// file capabilities no longer raise privileges. It is implied by
	// Seccomp unless the payload keeps CAP_SYS_ADMIN.
	NoNewPrivs bool

	// Seccomp, when not nil, is compiled (package sandbox/seccomp) and
	// installed as the child's last step before exec; it also applies to
	// the init. seccomp.Default() is nsbox's built-in profile, whose
	// program is built ahead of time. nil installs no filter.
	Seccomp *specs.LinuxSeccomp

	// Rlimits are set in the child before exec, in order. A hard limit
	// above the caller's is an error (raising it needs CAP_SYS_RESOURCE).
	Rlimits []rlimit.Limit

	// Cgroup, when not nil and limiting something, gives the child a
	// cgroup of its own (v2 or v1, found at run time) with these limits.
	// The child enters it as its first step, so neither its setup nor the
	// payload ever runs outside it. The group is removed when Wait
	// returns, and everything left in it is killed then; if the caller
	// dies first (even of SIGKILL), a watcher process removes it and kills
	// the sandbox. Process.Cgroup shows where it is; ExitStatus.OOMKilled
	// tells an out-of-memory kill.
	Cgroup *cgroup.Config

	// group, when set, is a group the caller made (tests: a v2 group
	// without controllers, to check the placement by clone3 where no
	// limit can be set); the child goes there and the watcher removes it.
	group *cgroup.Group
}

// ErrInvalidSpec is wrapped by every error of Spec.Validate.
var ErrInvalidSpec = errors.New("invalid spec")

func invalid(format string, a ...any) error {
	return fmt.Errorf("nsclone: %w: %s", ErrInvalidSpec, fmt.Sprintf(format, a...))
}

// maxHostname is HOST_NAME_MAX.
const maxHostname = 64

// propagations maps Spec.Propagation words to mount(2) flags.
var propagations = map[string]uintptr{
	"":          unix.MS_REC | unix.MS_PRIVATE,
	"private":   unix.MS_REC | unix.MS_PRIVATE,
	"slave":     unix.MS_REC | unix.MS_SLAVE,
	"shared":    unix.MS_REC | unix.MS_SHARED,
	"unchanged": 0,
}

// Validate checks s without touching the system. Start calls it.
func (s *Spec) Validate() error {
	if s == nil {
		return invalid("nil spec")
	}
	if s.Path == "" {
		return invalid("no path to execute")
	}
	if rest := s.Namespaces &^ allNamespaces; rest != 0 {
		return invalid("unknown namespace bits %#x", uint64(rest))
	}
	has := func(n Namespace) bool { return s.Namespaces&n != 0 }
	if s.MountProc && (!has(PID) || !has(Mnt)) {
		return invalid("mounting /proc needs new PID and Mount namespaces")
	}
	if _, ok := propagations[s.Propagation]; !ok {
		return invalid("unknown propagation %q (want private, slave, shared or unchanged)", s.Propagation)
	}
	if s.Propagation != "" && !has(Mnt) {
		return invalid("propagation %q needs a new Mount namespace", s.Propagation)
	}
	if len(s.Mounts) > 0 && !has(Mnt) {
		return invalid("mounts need a new Mount namespace")
	}
	if s.LoopbackUp && !has(Net) {
		return invalid("bringing loopback up needs a new Net namespace")
	}
	if s.Hostname != "" && !has(UTS) {
		return invalid("hostname needs a new UTS namespace")
	}
	if len(s.Hostname) > maxHostname {
		return invalid("hostname is %d bytes, more than %d", len(s.Hostname), maxHostname)
	}
	if (s.MapRoot || len(s.UIDMap) > 0 || len(s.GIDMap) > 0) && !has(User) {
		return invalid("uid/gid maps need a new User namespace")
	}
	if s.MapRoot && (len(s.UIDMap) > 0 || len(s.GIDMap) > 0) {
		return invalid("MapRoot excludes UIDMap and GIDMap")
	}
	for _, m := range append(append([]IDMap(nil), s.UIDMap...), s.GIDMap...) {
		if m.Size == 0 || uint64(m.ContainerID)+uint64(m.Size) > 1<<32 || uint64(m.HostID)+uint64(m.Size) > 1<<32 {
			return invalid("bad id map %d %d %d", m.ContainerID, m.HostID, m.Size)
		}
	}
	if len(s.Groups) > 65536 {
		return invalid("%d supplementary groups, more than 65536", len(s.Groups))
	}
	if s.JoinPidfdNamespaces&^allNamespaces != 0 {
		return invalid("unknown namespace bits %#x to join", uint64(s.JoinPidfdNamespaces&^allNamespaces))
	}
	if (s.JoinPidfd == nil) != (s.JoinPidfdNamespaces == 0) {
		return invalid("JoinPidfd and JoinPidfdNamespaces go together")
	}
	if both := s.JoinPidfdNamespaces & s.Namespaces; both != 0 {
		return invalid("namespace %s is both new and joined", both)
	}
	for ns := range s.Join {
		if ns&s.JoinPidfdNamespaces != 0 {
			return invalid("namespace %s is joined twice", ns)
		}
	}
	if _, ok := s.Join[User]; (ok || s.JoinPidfdNamespaces&User != 0) && !s.Init {
		return invalid("joining a user namespace needs Init (a process sharing the caller's memory cannot join one)")
	}
	if s.EnterRoot != "" && s.hasView() {
		return invalid("EnterRoot excludes Root, ReadOnlyRoot and FS")
	}
	if len(s.Join) > maxJoin {
		return invalid("more than %d namespaces to join", maxJoin)
	}
	for ns, path := range s.Join {
		if ns == 0 || ns&(ns-1) != 0 || ns&^allNamespaces != 0 {
			return invalid("join key %s is not one namespace kind", ns)
		}
		if has(ns) {
			return invalid("namespace %s is both new and joined", ns)
		}
		if path == "" {
			return invalid("empty path to join for %s", ns)
		}
	}
	if err := s.validateView(); err != nil {
		return err
	}
	for _, l := range s.Rlimits {
		if l.Soft > l.Hard {
			return invalid("rlimit %s: soft limit above hard limit", l)
		}
	}
	if s.Cgroup != nil {
		if err := s.Cgroup.Limits.Validate(); err != nil {
			return invalid("%v", err)
		}
	}
	for _, m := range s.Mounts {
		if m.Target == "" {
			return invalid("mount of %q has no target", m.Source)
		}
	}
	strs := append(append([]string{s.Path, s.Dir, s.Hostname, s.Root, s.EnterRoot, s.EnterDir}, s.Args...), s.Env...)
	for _, m := range s.Mounts {
		strs = append(strs, m.Source, m.Target, m.FSType, m.Data)
	}
	for _, m := range s.FS {
		strs = append(strs, m.Source, m.Dest)
	}
	for _, p := range s.Join {
		strs = append(strs, p)
	}
	for _, str := range strs {
		if strings.IndexByte(str, 0) >= 0 {
			return invalid("string %q contains a NUL byte", str)
		}
	}
	return nil
}

// joinOrder returns the kinds of s.Join in the order the child enters them.
func (s *Spec) joinOrder() []Namespace {
	var out []Namespace
	for _, k := range nsNames {
		if _, ok := s.Join[k.ns]; ok {
			out = append(out, k.ns)
		}
	}
	return out
}

// Stage names a step of the spawn.
type Stage string

// The stages a *SetupError can name.
const (
	StageClone       Stage = "clone"
	StagePipe        Stage = "pipe"
	StageOpen        Stage = "open"     // opening a namespace file of Join or /dev/null
	StageUserMap     Stage = "user map" // writing setgroups, uid_map, gid_map
	StageBeforeExec  Stage = "before exec"
	StageSync        Stage = "sync"
	StageSetns       Stage = "setns"
	StagePropagation Stage = "propagation"
	StageMountProc   Stage = "mount /proc"
	StageMount       Stage = "mount"
	StageHostname    Stage = "sethostname"
	StageFork        Stage = "fork"
	StageSetgroups   Stage = "setgroups"
	StageSetgid      Stage = "setgid"
	StageSetuid      Stage = "setuid"
	StageChdir       Stage = "chdir"
	StageFds         Stage = "fds"
	StageSignals     Stage = "signals"
	StageExec        Stage = "exec"

	// Stages of the filesystem view (Root, ReadOnlyRoot, FS).
	StageFSSource     Stage = "open source of"      // opening a bind's source
	StageFSReadOnly   Stage = "make read-only"      // the read-only flag of a ROBind
	StageRoot         Stage = "bind root"           // binding Root onto itself
	StageReadOnlyRoot Stage = "make root read-only" // ReadOnlyRoot
	StageFSDest       Stage = "mount point"         // resolving or creating DEST inside the root
	StageFSMount      Stage = "mount"               // attaching a step (or making a link)
	StagePivot        Stage = "pivot_root"

	StageCgroup     Stage = "cgroup"
	StageRlimit     Stage = "setrlimit"
	StageCaps       Stage = "capabilities"
	StageNoNewPrivs Stage = "no_new_privs"
	StageSeccomp    Stage = "seccomp"
	StageLoopback   Stage = "loopback up"
	StageEnterRoot  Stage = "enter root" // chroot to EnterRoot
	StageEnterDir   Stage = "enter directory"
)

// SetupError is a failure before the payload's exec: the stage, the object it
// concerned (a path, a namespace, an fd) and the cause, usually a
// syscall.Errno.
type SetupError struct {
	Stage  Stage
	Object string
	Err    error
}

func (e *SetupError) Error() string {
	what := string(e.Stage)
	if e.Object != "" {
		what += " " + e.Object
	}
	switch e.Stage {
	case StageClone, StagePipe, StageOpen, StageUserMap, StageBeforeExec:
		return "nsclone: " + what + ": " + e.Err.Error()
	case StageCgroup, StageSeccomp, StageRlimit, StageCaps:
		if _, ok := e.Err.(syscall.Errno); ok {
			break
		}
		if e.Object == "" {
			return "nsclone: " + e.Err.Error() // the sandbox package named it
		}
		return "nsclone: " + what + ": " + e.Err.Error()
	}
	return "nsclone: child setup: " + what + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *SetupError) Unwrap() error { return e.Err }

// ExitStatus is how a process ended.
type ExitStatus struct {
	ws  unix.WaitStatus
	oom bool
}

// OOMKilled reports whether the kernel's OOM killer ended a task of the
// process's cgroup (Spec.Cgroup with a memory limit) while it ran.
func (e ExitStatus) OOMKilled() bool { return e.oom }

// Exited reports whether the process called exit.
func (e ExitStatus) Exited() bool { return e.ws.Exited() }

// Signaled reports whether the process died of a signal.
func (e ExitStatus) Signaled() bool { return e.ws.Signaled() }

// Signal is the signal that killed the process, or 0.
func (e ExitStatus) Signal() syscall.Signal {
	if !e.ws.Signaled() {
		return 0
	}
	return syscall.Signal(e.ws.Signal())
}

// Code is the status as a shell reports it: the exit code, or 128+N when the
// process died of signal N.
func (e ExitStatus) Code() int {
	if e.ws.Signaled() {
		return 128 + int(e.ws.Signal())
	}
	return e.ws.ExitStatus()
}

func (e ExitStatus) String() string {
	if e.ws.Signaled() {
		return "signal: " + unix.SignalName(e.ws.Signal())
	}
	return fmt.Sprintf("exit status %d", e.ws.ExitStatus())
}

// sortedUnique returns the sorted distinct non-negative values of v.
func sortedUnique(v []int) []int {
	out := make([]int, 0, len(v))
	for _, x := range v {
		if x >= 0 {
			out = append(out, x)
		}
	}
	sort.Ints(out)
	j := 0
	for i, x := range out {
		if i == 0 || x != out[j-1] {
			out[j] = x
			j++
		}
	}
	return out[:j]
}
