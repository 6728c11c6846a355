package nsclone

/*
#cgo CFLAGS: -Wall -Wextra -Werror -O2 -I${SRCDIR}/../csrc
#include <stdlib.h>
#include "clone_shim.h"
#include "nsinit_elf.h"

static const void *nsc_init_elf(void) { return nsinit_elf; }
static unsigned long nsc_init_elf_len(void) { return nsinit_elf_len; }
static const char *nsc_init_hash(void) { return nsinit_source_hash; }

extern int nscloneGoHook(uintptr_t ctx, int pid);
static nsc_hook nsc_go_hook(void) { return nscloneGoHook; }
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/cgo"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/abi"
	"github.com/nsbox/nsbox/sandbox/cgroup"
)

const maxJoin = C.NSC_MAX_JOIN

// initELF returns nsinit (csrc/nsinit_elf.h), read-only C memory; empty where
// no blob was built for the architecture.
func initELF() []byte {
	n := int(C.nsc_init_elf_len())
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(C.nsc_init_elf()), n)
}

// initSourceHash is the hash of the sources initELF was built from.
func initSourceHash() string { return C.GoString(C.nsc_init_hash()) }

// Start spawns the process described by s and returns once it has exec'd the
// payload (or, with Init, once the payload has exec'd). Cancelling ctx kills
// the child with SIGKILL (with a PID namespace, all of it). The caller must
// call Wait to release the child. Start is safe to call from many goroutines
// at once.
func Start(ctx context.Context, s *Spec) (*Process, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nsclone: start %s: %w", s.Path, err)
	}
	env := s.Env
	if env == nil {
		env = os.Environ()
	}
	path, err := s.LookPath()
	if err != nil {
		return nil, err
	}
	args := s.Args
	if len(args) == 0 {
		args = []string{s.Path}
	}

	lim, err := planLimits(s)
	if err != nil {
		return nil, err
	}
	var cg *cgroupRun
	if s.group != nil {
		if cg, err = watchGroup(s.group); err != nil {
			return nil, err
		}
	} else if s.Cgroup != nil && !s.Cgroup.Limits.IsZero() {
		cfg := *s.Cgroup
		cfg.Freeze = s.Namespaces&PID == 0 // with a PID namespace the kernel kills all of it
		if cg, err = startCgroup(&cfg); err != nil {
			return nil, err
		}
	}
	waited := make(chan struct{})
	// The kernel refuses to move a process that shares its memory
	// (CLONE_VM) into another user namespace: an init joining one is
	// cloned without CLONE_VM.
	_, joinUser := s.Join[User]
	forkInit := s.Init && (joinUser || s.JoinPidfdNamespaces&User != 0)
	res, err := spawn(s, path, args, env, forkInit, waited, lim, cg)
	if err != nil && s.Init && len(initELF()) > 0 && s.BeforeExec == nil &&
		res.stage == C.NSC_STAGE_EXEC && res.index == 1 && lim.filter == nil {
		// nsinit could not be exec'd from a memfd (an LSM, a seccomp
		// filter): fall back to the init cloned without CLONE_VM. (Not
		// with a hook, which must not run twice, nor with our own
		// filter, which is what refused it.)
		res, err = spawn(s, path, args, env, true, waited, lim, cg)
	}
	if cg != nil {
		cg.placed = res.placed != 0
		cg.closeFds()
	}
	if err != nil {
		cg.finish()
		return nil, err
	}
	p := &Process{pid: int(res.pid), pidfd: int(res.pidfd), waited: waited, cg: cg}
	if ctx.Done() != nil {
		go p.watch(ctx)
	}
	return p, nil
}

// Run starts the process of s and waits for it. If ctx was cancelled and
// the process killed for it, the error wraps ctx.Err().
func Run(ctx context.Context, s *Spec) (ExitStatus, error) {
	p, err := Start(ctx, s)
	if err != nil {
		return ExitStatus{}, err
	}
	st, err := p.Wait()
	if err == nil && p.killedByCtx() {
		err = fmt.Errorf("nsclone: %s killed: %w", s.Path, context.Cause(ctx))
	}
	return st, err
}

// spawn builds the C spec and runs the shim once. With a ParentDeathSignal
// the shim runs on a goroutine of its own that keeps its OS thread locked
// until waited is closed (the child is reaped): the kernel sends the signal
// when the *thread* that cloned the child exits, and Go ends a thread whose
// goroutine exits locked (netns.Do after a failed setns, any LockOSThread
// without Unlock), so a thread back in the pool could take the sandbox
// with it at any time.
func spawn(s *Spec, path string, args, env []string, forkInit bool, waited <-chan struct{}, lim *limitsPlan, cg *cgroupRun) (C.struct_nsc_result, error) {
	var res C.struct_nsc_result
	b, err := newBuild(s, path, args, env, forkInit, lim, cg)
	defer b.free()
	if err != nil {
		return res, err
	}
	if s.ParentDeathSignal == 0 {
		runtime.LockOSThread()
		C.nsc_spawn(b.spec, &res)
		runtime.UnlockOSThread()
	} else {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			C.nsc_spawn(b.spec, &res)
			ok := res.stage == C.NSC_OK
			close(done)
			if ok {
				<-waited
			}
			runtime.UnlockOSThread()
		}()
		<-done
	}
	runtime.KeepAlive(b)
	if res.stage != C.NSC_OK {
		return res, b.setupError(&res)
	}
	return res, nil
}

// memfdNoExec reports whether the system forbids executable memfds
// (vm.memfd_noexec = 2).
func memfdNoExec() bool {
	b, err := os.ReadFile("/proc/sys/vm/memfd_noexec")
	return err == nil && strings.TrimSpace(string(b)) == "2"
}

// initMemfd returns a sealed memfd holding nsinit, ready to exec.
func initMemfd() (int, error) {
	fd, err := unix.MemfdCreate("nsbox-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL { // kernels before 6.3 have no MFD_EXEC
		fd, err = unix.MemfdCreate("nsbox-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return -1, err
	}
	for data := initELF(); len(data) > 0; {
		n, err := unix.Write(fd, data)
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
		data = data[n:]
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS,
		unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// build holds the C memory of one spawn: the spec and everything it points
// to, laid out in one allocation, plus the fds opened for it.
type build struct {
	spec    *C.struct_nsc_spec
	mem     unsafe.Pointer
	size    uintptr
	off     uintptr
	opened  []int // fds to close after the spawn
	files   []*os.File
	s       *Spec
	path    string
	join    []Namespace
	handle  cgo.Handle
	hookErr error
	euid    int
	steps   []fsStep // the filesystem view's C steps
	lim     *limitsPlan
	cg      *cgroupRun
}

func (b *build) alloc(n, align uintptr) unsafe.Pointer {
	b.off = (b.off + align - 1) &^ (align - 1)
	if b.off+n > b.size {
		panic("nsclone: internal error: spec arena too small")
	}
	p := unsafe.Add(b.mem, b.off)
	b.off += n
	return p
}

func (b *build) cstr(s string) *C.char {
	p := b.alloc(uintptr(len(s))+1, 1)
	dst := unsafe.Slice((*byte)(p), len(s)+1)
	copy(dst, s)
	dst[len(s)] = 0
	return (*C.char)(p)
}

func (b *build) cstrs(ss []string) **C.char {
	p := b.alloc(uintptr(len(ss)+1)*unsafe.Sizeof(uintptr(0)), unsafe.Alignof(uintptr(0)))
	arr := unsafe.Slice((**C.char)(p), len(ss)+1)
	for i, s := range ss {
		arr[i] = b.cstr(s)
	}
	arr[len(ss)] = nil
	return (**C.char)(p)
}

func (b *build) ints(v []int) *C.int {
	if len(v) == 0 {
		return nil
	}
	p := b.alloc(uintptr(len(v))*4, 4)
	arr := unsafe.Slice((*C.int)(p), len(v))
	for i, x := range v {
		arr[i] = C.int(x)
	}
	return (*C.int)(p)
}

// free releases the C memory and closes the fds the spawn opened.
func (b *build) free() {
	for _, fd := range b.opened {
		unix.Close(fd)
	}
	b.opened = nil
	if b.handle != 0 {
		b.handle.Delete()
		b.handle = 0
	}
	if b.mem != nil {
		C.free(b.mem)
		b.mem = nil
	}
}

// newBuild lays out the C spec for s.
func newBuild(s *Spec, path string, args, env []string, forkInit bool, lim *limitsPlan, cg *cgroupRun) (*build, error) {
	b := &build{s: s, path: path, join: s.joinOrder(), euid: os.Geteuid(), lim: lim, cg: cg}
	var cgFds []int
	if cg != nil {
		cgFds = cg.fds
	}
	// Size: every string with its NUL, the pointer arrays, the mounts and
	// the fd arrays, with slack for alignment.
	strs := len(path) + len(s.Dir) + len(s.Hostname) + 8
	for _, a := range args {
		strs += len(a) + 1
	}
	for _, e := range env {
		strs += len(e) + 1
	}
	for _, m := range s.Mounts {
		strs += len(m.Source) + len(m.Target) + len(m.FSType) + len(m.Data) + 4
	}
	nfds := 3 + len(s.ExtraFiles)
	if s.hasView() {
		b.steps = s.viewSteps()
		strs += int(viewSize(s, b.steps))
	}
	dir := s.Dir
	if dir == "" && s.Root != "" {
		// The caller's directory if it exists inside the root, else "/".
		if wd, err := os.Getwd(); err == nil {
			dir = wd
		} else {
			dir = "/"
		}
	}
	strs += len(dir)
	if s.Init {
		// nsinit's argv: its own words, the path and the payload's argv again.
		strs += 2*len(path) + 64
		for _, a := range args {
			strs += len(a) + 1
		}
	}
	b.size = uintptr(strs) + 8*uintptr(2*len(args)+len(env)+12) + 48 +
		unsafe.Sizeof(C.struct_nsc_spec{}) + uintptr(len(s.Mounts))*unsafe.Sizeof(C.struct_nsc_mount{}) +
		4*uintptr(2*nfds+maxJoin+len(s.Groups)) + 64 + lim.arenaSize(len(cgFds))
	b.mem = C.malloc(C.size_t(b.size))
	if b.mem == nil {
		return b, errors.New("nsclone: out of C memory")
	}
	spec := (*C.struct_nsc_spec)(b.alloc(unsafe.Sizeof(C.struct_nsc_spec{}), 8))
	*spec = C.struct_nsc_spec{}
	b.spec = spec

	spec.path = b.cstr(path)
	spec.argv = b.cstrs(args)
	spec.envp = b.cstrs(env)
	if dir != "" {
		spec.dir = b.cstr(dir)
		if s.Dir == "" {
			spec.dir_fallback = 1
		}
	}
	spec.ns_flags = C.ulong(s.Namespaces)
	if s.Namespaces&Mnt != 0 {
		spec.propagation = C.ulong(propagations[s.Propagation])
	}
	if s.hasView() {
		b.layoutView(b.steps) // /proc is its first step
	} else if s.MountProc {
		spec.mount_proc = 1
	}
	if s.Hostname != "" {
		spec.hostname = b.cstr(s.Hostname)
		spec.hostname_len = C.int(len(s.Hostname))
	}
	if len(s.Mounts) > 0 {
		p := b.alloc(uintptr(len(s.Mounts))*unsafe.Sizeof(C.struct_nsc_mount{}), 8)
		ms := unsafe.Slice((*C.struct_nsc_mount)(p), len(s.Mounts))
		for i, m := range s.Mounts {
			ms[i] = C.struct_nsc_mount{flags: C.ulong(m.Flags)}
			if m.Source != "" {
				ms[i].source = b.cstr(m.Source)
			}
			ms[i].target = b.cstr(m.Target)
			if m.FSType != "" {
				ms[i].fstype = b.cstr(m.FSType)
			}
			if m.Data != "" {
				ms[i].data = b.cstr(m.Data)
			}
		}
		spec.mounts = (*C.struct_nsc_mount)(p)
		spec.nmounts = C.int(len(s.Mounts))
	}
	denied := s.Namespaces&User != 0 && b.euid != 0
	if (s.UID != nil || s.GID != nil) && !denied {
		spec.set_groups = 1
		if len(s.Groups) > 0 {
			g := make([]int, len(s.Groups))
			for i, v := range s.Groups {
				g[i] = int(int32(v))
			}
			spec.ngroups = C.int(len(g))
			spec.groups = (*C.uint)(unsafe.Pointer(b.ints(g)))
		}
	}
	if s.GID != nil {
		spec.set_gid, spec.gid = 1, C.uint(*s.GID)
	}
	if s.UID != nil {
		spec.set_uid, spec.uid = 1, C.uint(*s.UID)
	}

	// Namespaces to join, opened here so that a missing one fails early.
	var keep []int
	for i, ns := range b.join {
		p := s.Join[ns]
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return b, &SetupError{Stage: StageOpen, Object: p, Err: err}
		}
		b.opened = append(b.opened, fd)
		spec.join_fd[i] = C.int(fd)
		spec.join_type[i] = C.int(ns)
		keep = append(keep, fd)
	}
	spec.njoin = C.int(len(b.join))
	if s.JoinPidfd != nil {
		spec.join_pidfd = C.int(s.JoinPidfd.Fd())
		spec.join_pidfd_ns = C.ulong(s.JoinPidfdNamespaces)
		b.files = append(b.files, s.JoinPidfd)
		keep = append(keep, int(s.JoinPidfd.Fd()))
	}
	for i, p := range []string{s.EnterRoot, s.EnterDir} {
		if p == "" {
			continue
		}
		fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return b, &SetupError{Stage: StageOpen, Object: p, Err: err}
		}
		b.opened = append(b.opened, fd)
		keep = append(keep, fd)
		if i == 0 {
			spec.enter |= C.NSC_ENTER_ROOT
			spec.enter_root_fd = C.int(fd)
		} else {
			spec.enter |= C.NSC_ENTER_DIR
			spec.enter_dir_fd = C.int(fd)
		}
	}

	// Fds: stdio then extra files; nil stdio reads and writes /dev/null.
	fds := make([]int, nfds)
	null := -1
	for i, f := range append([]*os.File{s.Stdin, s.Stdout, s.Stderr}, s.ExtraFiles...) {
		switch {
		case f != nil:
			fds[i] = int(f.Fd())
			b.files = append(b.files, f)
		case i < 3:
			if null < 0 {
				fd, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
				if err != nil {
					return b, &SetupError{Stage: StageOpen, Object: os.DevNull, Err: err}
				}
				b.opened = append(b.opened, fd)
				null = fd
			}
			fds[i] = null
		default:
			fds[i] = -1
		}
	}
	spec.init_fd = -1
	if s.ParentDeathSignal != 0 {
		spec.parent_death_sig = C.int(s.ParentDeathSignal)
	}
	if s.Init {
		spec.init = 1
		flags := 0
		if s.Namespaces&PID == 0 {
			spec.pdeathsig = C.int(unix.SIGKILL)
			flags = 3 // subreaper, and SIGKILL to the payload if the init dies
		}
		if len(initELF()) > 0 && !forkInit && !memfdNoExec() {
			fd, err := initMemfd()
			if err != nil {
				return b, &SetupError{Stage: StageOpen, Object: "memfd nsbox-init", Err: err}
			}
			b.opened = append(b.opened, fd)
			keep = append(keep, fd)
			spec.init_fd = C.int(fd)
			scratch := (*C.char)(b.alloc(48, 8))
			spec.init_scratch = scratch
			argv := b.cstrs(append([]string{"nsbox-init", "", "", strconv.Itoa(flags), path}, args...))
			av := unsafe.Slice(argv, len(args)+6)
			av[1], av[2] = scratch, (*C.char)(unsafe.Add(unsafe.Pointer(scratch), 24))
			spec.init_argv = argv
		}
	}
	b.fillLimits(lim, cg)
	keep = sortedUnique(append(append(keep, fds...), cgFds...))
	spec.nfds = C.int(len(fds))
	spec.fds = b.ints(fds)
	spec.nkeep = C.int(len(keep))
	spec.keep = b.ints(keep)

	if s.BeforeExec != nil || s.MapRoot || len(s.UIDMap) > 0 || len(s.GIDMap) > 0 {
		b.handle = cgo.NewHandle(b)
		spec.hook = C.nsc_go_hook()
		spec.hook_ctx = C.uintptr_t(b.handle)
	}
	return b, nil
}

// hook runs in the parent between the clone and the child's go-ahead.
func (b *build) hook(pid int) error {
	if err := b.writeMaps(pid); err != nil {
		return err
	}
	if b.s.BeforeExec != nil {
		if err := b.s.BeforeExec(pid); err != nil {
			return &SetupError{Stage: StageBeforeExec, Err: err}
		}
	}
	return nil
}

// writeMaps writes setgroups (deny, when the caller is not root: the kernel
// requires it before an unprivileged gid_map), uid_map and gid_map.
func (b *build) writeMaps(pid int) error {
	s := b.s
	if !s.MapRoot && len(s.UIDMap) == 0 && len(s.GIDMap) == 0 {
		return nil
	}
	uidMap, gidMap := formatMap(s.UIDMap), formatMap(s.GIDMap)
	if s.MapRoot {
		uidMap = "0 " + strconv.Itoa(b.euid) + " 1\n"
		gidMap = "0 " + strconv.Itoa(os.Getegid()) + " 1\n"
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	write := func(name, data string) error {
		if data == "" {
			return nil
		}
		fd, err := unix.Open(dir+name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			_, err = unix.Write(fd, []byte(data))
			unix.Close(fd)
		}
		if err != nil {
			return &SetupError{Stage: StageUserMap, Object: dir + name, Err: err}
		}
		return nil
	}
	if b.euid != 0 {
		if err := write("setgroups", "deny"); err != nil {
			return err
		}
	}
	if err := write("uid_map", uidMap); err != nil {
		return err
	}
	return write("gid_map", gidMap)
}

func formatMap(m []IDMap) string {
	var sb strings.Builder
	for _, l := range m {
		fmt.Fprintf(&sb, "%d %d %d\n", l.ContainerID, l.HostID, l.Size)
	}
	return sb.String()
}

// setupError turns the C result into a *SetupError.
func (b *build) setupError(r *C.struct_nsc_result) error {
	if r.stage == C.NSC_STAGE_HOOK {
		if b.hookErr != nil {
			return b.hookErr
		}
		return &SetupError{Stage: StageBeforeExec, Err: errors.New("refused")}
	}
	err := syscall.Errno(r.err)
	idx := int(r.index)
	e := &SetupError{Err: err}
	switch r.stage {
	case C.NSC_STAGE_CLONE:
		e.Stage, e.Object = StageClone, b.s.Namespaces.String()
	case C.NSC_STAGE_PIPE:
		e.Stage = StagePipe
	case C.NSC_STAGE_SYNC:
		e.Stage = StageSync
	case C.NSC_STAGE_SETNS:
		e.Stage = StageSetns
		if idx >= 0 && idx < len(b.join) {
			e.Object = b.s.Join[b.join[idx]]
		}
	case C.NSC_STAGE_PROPAGATION:
		e.Stage, e.Object = StagePropagation, "/ "+b.s.Propagation
		if b.s.Propagation == "" {
			e.Object = "/ private"
		}
		if idx == 1 {
			e.Object = "/proc private"
		}
	case C.NSC_STAGE_MOUNT_PROC:
		e.Stage = StageMountProc
	case C.NSC_STAGE_MOUNT:
		e.Stage = StageMount
		if idx >= 0 && idx < len(b.s.Mounts) {
			m := b.s.Mounts[idx]
			e.Object = m.Source + " on " + m.Target
		}
	case C.NSC_STAGE_HOSTNAME:
		e.Stage, e.Object = StageHostname, b.s.Hostname
	case C.NSC_STAGE_FORK:
		e.Stage = StageFork
	case C.NSC_STAGE_SETGROUPS:
		e.Stage = StageSetgroups
	case C.NSC_STAGE_SETGID:
		e.Stage, e.Object = StageSetgid, strconv.FormatUint(uint64(*b.s.GID), 10)
	case C.NSC_STAGE_SETUID:
		e.Stage, e.Object = StageSetuid, strconv.FormatUint(uint64(*b.s.UID), 10)
	case C.NSC_STAGE_CHDIR:
		e.Stage, e.Object = StageChdir, b.s.Dir
	case C.NSC_STAGE_FDS:
		e.Stage, e.Object = StageFds, "fd "+strconv.Itoa(idx)
	case C.NSC_STAGE_SIGNALS:
		e.Stage = StageSignals
	case C.NSC_STAGE_EXEC:
		e.Stage, e.Object = StageExec, b.path
		if idx == 1 {
			e.Object = "nsbox-init (memfd)"
		}
	case C.NSC_STAGE_CGROUP, C.NSC_STAGE_RLIMIT, C.NSC_STAGE_CAPS, C.NSC_STAGE_NO_NEW_PRIVS, C.NSC_STAGE_SECCOMP,
		C.NSC_STAGE_LOOPBACK:
		b.limitsError(e, C.int(r.stage), idx)
	case C.NSC_STAGE_SETNS_PIDFD:
		e.Stage, e.Object = StageSetns, b.s.JoinPidfdNamespaces.String()+" (pidfd)"
	case C.NSC_STAGE_ENTER_ROOT:
		e.Stage, e.Object = StageEnterRoot, b.s.EnterRoot
	case C.NSC_STAGE_ENTER_DIR:
		e.Stage, e.Object = StageEnterDir, b.s.EnterDir
	default:
		b.viewError(r.stage, idx, e)
	}
	return e
}

// DefaultPath is the search path for a Spec.Path without a slash when Env
// has no PATH (the one of execvp and of nsbox run's C fast path).
const DefaultPath = abi.DefaultPath

// resolvePath finds file in the PATH of env when it has no slash, like a
// shell: the first executable regular file wins; if there is none but a
// candidate exists, the error is EACCES (exit 126), else ENOENT (127).
func resolvePath(file string, env []string, where func(string) string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	pathEnv := DefaultPath
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			pathEnv = v
			break
		}
	}
	var denied string
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		hp := p
		if where != nil {
			if hp = where(p); hp == "" {
				continue
			}
		}
		var st unix.Stat_t
		if err := unix.Stat(hp, &st); err != nil {
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG && unix.Access(hp, unix.X_OK) == nil {
			return p, nil
		}
		if denied == "" {
			denied = p
		}
	}
	if denied != "" {
		return "", &SetupError{Stage: StageExec, Object: denied, Err: unix.EACCES}
	}
	return "", &SetupError{Stage: StageExec, Object: file, Err: unix.ENOENT}
}

// LookPath returns the path Start execs for s.Path: s.Path itself when it
// has a slash, else the first executable regular file of that name in the
// PATH of s.Env (os.Environ() when Env is nil, DefaultPath without PATH),
// looked for where the payload will see it: through the binds of FS, under
// Root or EnterRoot (a folder on a fresh Tmpfs or Dev holds no program
// yet). With no such file the error is a *SetupError of StageExec: EACCES
// when a candidate exists but cannot run, else ENOENT.
func (s *Spec) LookPath() (string, error) {
	env := s.Env
	if env == nil {
		env = os.Environ()
	}
	return resolvePath(s.Path, env, s.callerPath)
}

// Process is a spawned child.
type Process struct {
	pid    int
	waited chan struct{}

	mu      sync.Mutex
	pidfd   int  // -1 once Wait reaped the child
	waiting bool // Wait was called
	ctxKill bool // killed because the context ended

	cg *cgroupRun // nil without Spec.Cgroup
}

// Cgroup is the process's cgroup (Spec.Cgroup), or nil. It is removed when
// Wait returns.
func (p *Process) Cgroup() *cgroup.Group {
	if p.cg == nil {
		return nil
	}
	return p.cg.group
}

// Pid is the child's pid as the caller sees it (the init's with Init).
func (p *Process) Pid() int { return p.pid }

// Signal sends sig to the child (with Init, the init forwards SIGINT,
// SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the payload). It uses a
// pidfd, so it never hits a recycled pid; after Wait it returns
// os.ErrProcessDone.
func (p *Process) Signal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("nsclone: signal %d: unsupported signal type %T", p.pid, sig)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signalLocked(s)
}

func (p *Process) signalLocked(s syscall.Signal) error {
	if p.pidfd < 0 {
		return os.ErrProcessDone
	}
	if err := unix.PidfdSendSignal(p.pidfd, s, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return os.ErrProcessDone
		}
		return fmt.Errorf("nsclone: signal %d with %s: %w", p.pid, unix.SignalName(s), err)
	}
	return nil
}

// watch kills the child when ctx ends before Wait returns.
func (p *Process) watch(ctx context.Context) {
	select {
	case <-ctx.Done():
		p.mu.Lock()
		if p.signalLocked(unix.SIGKILL) == nil {
			p.ctxKill = true
		}
		p.mu.Unlock()
	case <-p.waited:
	}
}

func (p *Process) killedByCtx() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ctxKill
}

// Wait waits for the child to end, reaps it and returns its status. Call it
// exactly once.
func (p *Process) Wait() (ExitStatus, error) {
	p.mu.Lock()
	if p.waiting {
		p.mu.Unlock()
		return ExitStatus{}, fmt.Errorf("nsclone: wait %d: Wait already called", p.pid)
	}
	p.waiting = true
	p.mu.Unlock()

	var ws unix.WaitStatus
	var err error
	for {
		_, err = unix.Wait4(p.pid, &ws, unix.WALL, nil)
		if err != unix.EINTR {
			break
		}
	}
	p.mu.Lock()
	unix.Close(p.pidfd)
	p.pidfd = -1
	p.mu.Unlock()
	close(p.waited)
	st := ExitStatus{ws: ws}
	if p.cg != nil {
		if n, oerr := p.cg.group.OOMKills(); oerr == nil && n > 0 {
			st.oom = true
		}
		if cerr := p.cg.finish(); cerr != nil && err == nil {
			return st, cerr
		}
	}
	if err != nil {
		return ExitStatus{}, fmt.Errorf("nsclone: wait %d: %w", p.pid, err)
	}
	return st, nil
}

// stackNeed spawns s through the shim's stack probe and returns how many
// bytes of the child's stack were touched (for the test that checks the
// size stated in csrc/clone_shim.c). The child is waited for.
func stackNeed(s *Spec) (int, error) {
	b, err := newBuild(s, s.Path, s.Args, s.Env, false, nil, nil)
	defer b.free()
	if err != nil {
		return 0, err
	}
	var res C.struct_nsc_result
	runtime.LockOSThread()
	used := C.nsc_stack_probe(b.spec, &res)
	runtime.UnlockOSThread()
	runtime.KeepAlive(b)
	if res.stage != C.NSC_OK {
		return 0, b.setupError(&res)
	}
	p := &Process{pid: int(res.pid), pidfd: int(res.pidfd), waited: make(chan struct{})}
	if _, err := p.Wait(); err != nil {
		return 0, err
	}
	return int(used), nil
}

// stackSize is the size of the child's stack in the shim.
const stackSize = C.NSC_STACK_SIZE
