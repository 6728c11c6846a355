package nsclone

/*
#include "clone_shim.h"
#include <sys/mount.h>
*/
import "C"

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"unsafe"

	"github.com/nsbox/nsbox/internal/abi"
)

// fsStep is one C step with what it came from (for errors).
type fsStep struct {
	kind   int
	flags  int
	source string
	opts   []string // key, value pairs; "" value is a flag (as nil)
	attr   uint64
	dest   string // cleaned, absolute
	what   string // for errors: "bind /usr on /usr", "mount /proc", ...
	proc   bool
}

// viewSteps expands s.FS (and /proc inside the view) into the C steps; the
// built-in parts (a view's /proc, Dev) come from internal/abi, whose tables
// the C fast path of nsbox run lays out the same way.
func (s *Spec) viewSteps() []fsStep {
	var out []fsStep
	if s.MountProc {
		out = append(out, partSteps(abi.ProcSteps, abi.ProcDir)...)
		out[0].what, out[0].proc = abi.ProcDir, true
	}
	for _, m := range s.FS {
		switch m.Kind {
		case Bind, ROBind:
			dest := m.Dest
			if dest == "" {
				dest = m.Source
			}
			dest = path.Clean(dest)
			st := fsStep{kind: C.NSC_FS_BIND, source: m.Source, dest: dest, what: m.Kind.String() + " " + m.Source + " on " + dest}
			if m.Kind == ROBind {
				st.flags |= C.NSC_FS_RDONLY
			}
			if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
				st.flags |= C.NSC_FS_FILE
			}
			out = append(out, st)
		case Tmpfs:
			dest := path.Clean(m.Dest)
			mode := m.Mode
			if mode == 0 {
				mode = abi.TmpfsDefaultMode
			}
			opts := []string{"source", "tmpfs", "mode", strconv.FormatUint(uint64(unixMode(mode)), 8)}
			if m.Size != 0 {
				opts = append(opts, "size", strconv.FormatUint(m.Size, 10))
			}
			out = append(out, fsStep{kind: C.NSC_FS_NEW, source: "tmpfs", opts: opts, attr: abi.TmpfsAttr,
				dest: dest, what: "tmpfs on " + dest})
		case Dev:
			dest := m.Dest
			if dest == "" {
				dest = "/dev"
			}
			out = append(out, partSteps(abi.DevSteps, path.Clean(dest))...)
		}
	}
	return out
}

// partSteps lays out the steps of a built-in part of a view at dir.
func partSteps(steps []abi.FSStep, dir string) []fsStep {
	out := make([]fsStep, 0, len(steps))
	for _, st := range steps {
		dest := dir
		if st.Name != "" {
			dest = dir + "/" + st.Name
		}
		f := fsStep{kind: int(st.Kind), flags: st.Flags, source: st.Source, opts: st.Opts, attr: st.Attr, dest: dest}
		switch st.Kind {
		case abi.FSNew:
			f.what = st.Source + " on " + dest
		case abi.FSBind:
			f.what = "bind " + st.Source + " on " + dest
		case abi.FSSymlink:
			f.what = "symlink " + dest
		case abi.FSROSelf:
			f.what = "read-only " + dest
		}
		out = append(out, f)
	}
	return out
}

// viewSize is an upper bound of the C memory layoutView takes.
func viewSize(s *Spec, steps []fsStep) uintptr {
	n := uintptr(len(s.Root)) + 64
	for _, st := range steps {
		n += unsafe.Sizeof(C.struct_nsc_fsop{}) + 16 + 4
		n += uintptr(len(st.source)) + 1
		for _, o := range st.opts {
			n += uintptr(len(o)) + 1
		}
		comps := strings.Count(st.dest, "/") + 1
		n += uintptr(comps) * (2*8 + uintptr(len(st.dest)) + 2 + 16)
	}
	return n
}

// layoutView writes the view of s into the spec.
func (b *build) layoutView(steps []fsStep) {
	s, spec := b.s, b.spec
	spec.view = 1
	if s.Root != "" {
		spec.root = b.cstr(path.Clean(s.Root))
	}
	if s.ReadOnlyRoot {
		spec.ro_root = 1
	}
	if len(steps) == 0 {
		return
	}
	p := b.alloc(uintptr(len(steps))*unsafe.Sizeof(C.struct_nsc_fsop{}), 8)
	ops := unsafe.Slice((*C.struct_nsc_fsop)(p), len(steps))
	for i, st := range steps {
		op := &ops[i]
		*op = C.struct_nsc_fsop{kind: C.int(st.kind), flags: C.int(st.flags), attr: C.ulong(st.attr)}
		op.source = b.cstr(st.source)
		for j, o := range st.opts {
			if j%2 == 1 && o == "" {
				continue // a flag: its value stays NULL
			}
			op.opt[j] = b.cstr(o)
		}
		comps := strings.Split(strings.TrimPrefix(st.dest, "/"), "/")
		prefixes := make([]string, len(comps))
		for j := range comps {
			prefixes[j] = strings.Join(comps[:j+1], "/")
		}
		op.ncomp = C.int(len(comps))
		op.prefix = b.cstrs(prefixes)
		op.name = b.cstrs(comps)
	}
	spec.fsops = (*C.struct_nsc_fsop)(p)
	spec.nfsops = C.int(len(steps))
	spec.fs_fd = (*C.int)(b.alloc(uintptr(len(steps))*4, 4))
}

// viewError describes a failed step of the view.
func (b *build) viewError(stage C.int, idx int, e *SetupError) {
	what := ""
	if idx >= 0 && idx < len(b.steps) {
		what = b.steps[idx].what
	}
	switch stage {
	case C.NSC_STAGE_FS_SOURCE:
		e.Stage, e.Object = StageFSSource, what
	case C.NSC_STAGE_FS_RDONLY:
		e.Stage, e.Object = StageFSReadOnly, what
	case C.NSC_STAGE_ROOT:
		e.Stage, e.Object = StageRoot, b.s.Root
	case C.NSC_STAGE_RO_ROOT:
		e.Stage, e.Object = StageReadOnlyRoot, b.s.Root
		if b.s.Root == "" {
			e.Object = "/"
		}
	case C.NSC_STAGE_FS_DEST:
		e.Stage = StageFSDest
		if idx >= 0 && idx < len(b.steps) {
			e.Object = b.steps[idx].dest + " (for " + what + ")"
		}
	case C.NSC_STAGE_FS_MOUNT:
		e.Stage, e.Object = StageFSMount, what
		if idx >= 0 && idx < len(b.steps) && b.steps[idx].proc {
			e.Stage, e.Object = StageMountProc, ""
		}
	case C.NSC_STAGE_PIVOT:
		e.Stage, e.Object = StagePivot, b.s.Root
	case C.NSC_STAGE_CHDIR_ROOT:
		e.Stage, e.Object = StageChdir, "/"
	default:
		e.Stage, e.Object = StageSync, fmt.Sprintf("unknown stage %d", int(stage))
	}
}
