package nsclone

/*
#include <stdlib.h>
#include "clone_shim.h"
#include "cgroup_watch.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/sandbox/caps"
	"github.com/nsbox/nsbox/sandbox/cgroup"
	"github.com/nsbox/nsbox/sandbox/rlimit"
	"github.com/nsbox/nsbox/sandbox/seccomp"
)

// limitsPlan is what the child applies of Capabilities, NoNewPrivs, Seccomp
// and Rlimits, computed and checked in the parent before the clone.
type limitsPlan struct {
	filter  []unix.SockFilter
	capsSet bool
	keep    caps.Set
	ambient bool
	capLast int
	nnp     bool
	rlimits []rlimit.Limit
}

// planLimits checks the limits of s against the caller and compiles the
// seccomp profile.
func planLimits(s *Spec) (*limitsPlan, error) {
	p := &limitsPlan{nnp: s.NoNewPrivs, rlimits: s.Rlimits}
	for _, l := range s.Rlimits {
		if err := rlimit.Check(l); err != nil {
			return nil, &SetupError{Stage: StageRlimit, Err: err}
		}
	}
	finalUID := os.Geteuid()
	if s.UID != nil {
		finalUID = int(*s.UID)
	}
	userNS := s.Namespaces&User != 0
	sysAdmin := false
	if s.Capabilities != nil {
		all, err := caps.All()
		if err != nil {
			return nil, &SetupError{Stage: StageCaps, Err: err}
		}
		base := all // a new user namespace gives the child every capability in it
		if !userNS {
			if base, err = caps.Effective(); err != nil {
				return nil, &SetupError{Stage: StageCaps, Err: err}
			}
		}
		keep := *s.Capabilities
		if extra := keep &^ base; extra != 0 {
			return nil, &SetupError{Stage: StageCaps, Object: extra.String(),
				Err: errors.New("not in the caller's effective set, so it cannot be granted")}
		}
		last, _ := capability.LastCap()
		p.capsSet, p.keep, p.capLast = true, keep, int(last)
		p.ambient = finalUID != 0 && keep != 0
		sysAdmin = keep.Has(capability.CAP_SYS_ADMIN)
	} else if s.Seccomp != nil && (finalUID == 0 || s.UID == nil) {
		// Only a filter needs it: reading /proc/self/status for every
		// spawn was 12% of a Go program's CPU in a storm of sandboxes
		// (bench/pool's nsbox-pool-lib).
		eff, err := caps.Effective()
		sysAdmin = userNS || (err == nil && eff.Has(capability.CAP_SYS_ADMIN))
	}
	if s.Seccomp != nil {
		f, err := seccomp.Compile(s.Seccomp)
		if err != nil {
			return nil, &SetupError{Stage: StageSeccomp, Err: err}
		}
		p.filter = f
		// Without CAP_SYS_ADMIN the kernel loads a filter only under
		// no_new_privs.
		if !sysAdmin {
			p.nnp = true
		}
	}
	return p, nil
}

// arenaSize is the C memory the plan needs in the spec's arena.
func (p *limitsPlan) arenaSize(ncgroup int) uintptr {
	if p == nil {
		return 0
	}
	return uintptr(len(p.rlimits))*unsafe.Sizeof(C.struct_nsc_rlimit{}) +
		uintptr(len(p.filter))*8 + uintptr(ncgroup)*4 + 64
}

// fill writes the plan and the join files' fds into the C spec, and a v2
// group's directory for clone3(CLONE_INTO_CGROUP).
func (b *build) fillLimits(p *limitsPlan, cg *cgroupRun) {
	lim := &b.spec.lim
	if b.s.LoopbackUp {
		lim.loopback_up = 1
	}
	if cg != nil && len(cg.fds) > 0 {
		lim.ncgroup = C.int(len(cg.fds))
		lim.cgroup_fds = b.ints(cg.fds)
		if cg.dirfd >= 0 {
			lim.into_cgroup, lim.cgroup_dirfd = 1, C.int(cg.dirfd)
		}
	}
	if p == nil {
		return
	}
	if n := len(p.rlimits); n > 0 {
		ptr := b.alloc(uintptr(n)*unsafe.Sizeof(C.struct_nsc_rlimit{}), 8)
		rl := unsafe.Slice((*C.struct_nsc_rlimit)(ptr), n)
		for i, l := range p.rlimits {
			rl[i] = C.struct_nsc_rlimit{resource: C.int(l.Resource), soft: C.ulonglong(l.Soft), hard: C.ulonglong(l.Hard)}
		}
		lim.nrlimits, lim.rlimits = C.int(n), (*C.struct_nsc_rlimit)(ptr)
	}
	if p.capsSet {
		lim.caps_set = 1
		lim.caps_keep = C.ulonglong(p.keep)
		lim.cap_last = C.int(p.capLast)
		if p.ambient {
			lim.caps_ambient = 1
		}
	}
	if p.nnp {
		lim.no_new_privs = 1
	}
	if n := len(p.filter); n > 0 {
		ptr := b.alloc(uintptr(n)*8, 8)
		copy(unsafe.Slice((*unix.SockFilter)(ptr), n), p.filter)
		lim.seccomp_len, lim.seccomp_filter = C.ushort(n), ptr
	}
}

// limitsError names the object of a failed limits stage.
func (b *build) limitsError(e *SetupError, stage C.int, idx int) {
	switch stage {
	case C.NSC_STAGE_CGROUP:
		e.Stage = StageCgroup
		if b.cg != nil && idx >= 0 && idx < len(b.cg.joins) {
			e.Object = b.cg.joins[idx]
		}
	case C.NSC_STAGE_RLIMIT:
		e.Stage = StageRlimit
		if b.lim != nil && idx >= 0 && idx < len(b.lim.rlimits) {
			e.Object = b.lim.rlimits[idx].String()
		}
	case C.NSC_STAGE_CAPS:
		e.Stage = StageCaps
		if idx >= 0 {
			e.Object = "cap_" + capability.Cap(idx).String()
		}
	case C.NSC_STAGE_NO_NEW_PRIVS:
		e.Stage = StageNoNewPrivs
	case C.NSC_STAGE_SECCOMP:
		e.Stage = StageSeccomp
	case C.NSC_STAGE_LOOPBACK:
		e.Stage, e.Object = StageLoopback, "lo"
	}
}

// cgroupRun is the group of one spawn and the watcher that removes it.
type cgroupRun struct {
	group   *cgroup.Group
	procs   []string // cgroup.procs, which the watcher reads
	joins   []string // the files the child writes "0" to (Group.JoinFiles)
	fds     []int    // joins opened for writing, one per dir
	dirfd   int      // v2: the group's directory, for clone3(CLONE_INTO_CGROUP); -1 if none
	placed  bool     // clone3 placed the child (it did not join)
	wfd     int      // write end of the watcher's pipe; -1 once closed
	watcher int      // pid, 0 if not started
	mem     unsafe.Pointer
}

// startCgroup creates the group of cfg, opens its join files and
// starts the watcher that removes it once wfd is closed (by finish, or by
// the kernel when the caller dies).
func startCgroup(cfg *cgroup.Config) (*cgroupRun, error) {
	g, err := cgroup.Create(*cfg)
	if err != nil {
		return nil, &SetupError{Stage: StageCgroup, Err: err}
	}
	return watchGroup(g)
}

// watchGroup opens the join files of g (and a v2 group's directory, so that
// the child is cloned into it) and starts the watcher that removes g.
func watchGroup(g *cgroup.Group) (*cgroupRun, error) {
	r := &cgroupRun{group: g, procs: g.ProcsFiles(), joins: g.JoinFiles(), wfd: -1, dirfd: -1}
	fail := func(err error) (*cgroupRun, error) {
		r.closeFds()
		if r.watcher == 0 {
			g.Remove()
		}
		r.finish()
		return nil, err
	}
	for _, p := range r.joins {
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(&SetupError{Stage: StageCgroup, Object: p, Err: err})
		}
		r.fds = append(r.fds, fd)
	}
	if g.V2 && len(g.Dirs) == 1 {
		fd, err := unix.Open(g.Dirs[0], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(&SetupError{Stage: StageCgroup, Object: g.Dirs[0], Err: err})
		}
		r.dirfd = fd
	}
	var pp [2]int
	if err := unix.Pipe2(pp[:], unix.O_CLOEXEC); err != nil {
		return fail(&SetupError{Stage: StagePipe, Err: err})
	}
	r.wfd = pp[1]
	// One C allocation: the watch struct, the path arrays and strings,
	// and the watcher's stack; freed only after the watcher is reaped.
	strs := len(g.KillFile) + len(g.FreezeFile) + 2
	for i := range g.Dirs {
		strs += len(g.Dirs[i]) + len(r.procs[i]) + 2
	}
	for _, p := range g.Parents {
		strs += len(p) + 1
	}
	ptrs := uintptr(2*len(g.Dirs)+len(g.Parents)+3) * unsafe.Sizeof(uintptr(0))
	size := unsafe.Sizeof(C.struct_nsc_cg_watch{}) + ptrs + uintptr(strs) + 64 + C.NSC_CG_STACK_SIZE
	r.mem = C.malloc(C.size_t(size))
	if r.mem == nil {
		unix.Close(pp[0])
		return fail(errors.New("nsclone: out of C memory"))
	}
	a := &build{mem: r.mem, size: size}
	stack := a.alloc(C.NSC_CG_STACK_SIZE, 16)
	w := (*C.struct_nsc_cg_watch)(a.alloc(unsafe.Sizeof(C.struct_nsc_cg_watch{}), 8))
	*w = C.struct_nsc_cg_watch{rd: C.int(pp[0]), n: C.int(len(g.Dirs))}
	w.dirs = a.cstrs(g.Dirs)
	w.procs = a.cstrs(r.procs)
	w.np = C.int(len(g.Parents))
	w.parents = a.cstrs(g.Parents)
	if g.KillFile != "" {
		w.kill = a.cstr(g.KillFile)
	}
	if g.FreezeFile != "" {
		w.freeze = a.cstr(g.FreezeFile)
	}
	pid := C.nsc_cg_watch(w, stack, C.NSC_CG_STACK_SIZE)
	unix.Close(pp[0])
	if pid < 0 {
		return fail(&SetupError{Stage: StageCgroup, Object: "watcher", Err: unix.Errno(-pid)})
	}
	r.watcher = int(pid)
	return r, nil
}

// closeFds closes the join files' fds (the child has its own copies).
func (r *cgroupRun) closeFds() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
	if r.dirfd >= 0 {
		unix.Close(r.dirfd)
		r.dirfd = -1
	}
}

// finish closes the watcher's pipe and waits until it has killed what was
// left in the group and removed it. It is safe to call more than once.
func (r *cgroupRun) finish() error {
	if r == nil {
		return nil
	}
	r.closeFds()
	if r.wfd >= 0 {
		unix.Close(r.wfd)
		r.wfd = -1
	}
	if r.watcher > 0 {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(r.watcher, &ws, unix.WALL, nil)
			if err != unix.EINTR {
				break
			}
		}
		r.watcher = 0
	}
	if r.mem != nil {
		C.free(r.mem)
		r.mem = nil
	}
	for _, d := range r.group.Dirs {
		if _, err := os.Stat(d); err == nil {
			return fmt.Errorf("nsclone: cgroup %s still exists after cleanup", d)
		}
	}
	return nil
}
