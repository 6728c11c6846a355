package nsclone

import (
	"os"
	"path"
	"strconv"
	"strings"
)

// FSKind is the kind of one step of Spec.FS.
type FSKind int

// The kinds of filesystem steps.
const (
	// Bind binds Source (a path of the caller's view, symlinks followed)
	// and every mount below it onto Dest.
	Bind FSKind = iota + 1
	// ROBind is Bind made read-only, recursively; the source's nosuid,
	// nodev and noexec stay, and a kernel that refuses the read-only
	// flag fails the spawn instead of leaving the bind writable.
	ROBind
	// Tmpfs mounts a fresh tmpfs (nosuid, nodev) on Dest, of at most Size
	// bytes (0: the kernel's default, half of RAM) and mode Mode (0: 0755).
	Tmpfs
	// Dev builds a minimal /dev at Dest (empty: /dev): a tmpfs holding
	// null, zero, full, random, urandom and tty bound from the caller's
	// /dev, a new devpts instance at pts with the ptmx link, a tmpfs at
	// shm, and the fd, stdin, stdout and stderr links into /proc/self/fd.
	// No disk, memory or console device appears.
	Dev
)

// FSMount is one step of a sandbox's filesystem view (Spec.FS).
type FSMount struct {
	Kind FSKind
	// Source is the caller's path to bind (Bind, ROBind); it is opened
	// before any step is applied, so an earlier step never hides it.
	Source string
	// Dest is where the step lands, as a path inside the new root. It is
	// resolved inside that root (symlinks and ".." never leave it), and
	// missing directories (or, for a bind of a file, the file) are
	// created; where they cannot be, the spawn fails.
	Dest string
	// Size limits a Tmpfs, in bytes; 0 is the kernel's default.
	Size uint64
	// Mode is the permission bits of a Tmpfs's root; 0 means 0755.
	Mode os.FileMode
}

func (k FSKind) String() string {
	switch k {
	case Bind:
		return "bind"
	case ROBind:
		return "read-only bind"
	case Tmpfs:
		return "tmpfs"
	case Dev:
		return "dev"
	}
	return "fs kind " + strconv.Itoa(int(k))
}

// hasView reports whether s asks for a filesystem view.
func (s *Spec) hasView() bool { return s.Root != "" || s.ReadOnlyRoot || len(s.FS) > 0 }

// validateView checks Root, ReadOnlyRoot and FS.
func (s *Spec) validateView() error {
	if !s.hasView() {
		return nil
	}
	if s.Namespaces&Mnt == 0 {
		return invalid("a filesystem view (Root, ReadOnlyRoot, FS) needs a new Mount namespace")
	}
	switch s.Propagation {
	case "shared", "unchanged":
		return invalid("a filesystem view needs propagation private or slave (with %q its mounts could reach the caller's namespace)", s.Propagation)
	}
	if s.Root != "" && !path.IsAbs(s.Root) {
		return invalid("root %q is not an absolute path", s.Root)
	}
	for i, m := range s.FS {
		switch m.Kind {
		case Bind, ROBind:
			if m.Source == "" {
				return invalid("FS[%d]: %s with no source", i, m.Kind)
			}
		case Tmpfs, Dev:
			if m.Source != "" {
				return invalid("FS[%d]: %s takes no source", i, m.Kind)
			}
		default:
			return invalid("FS[%d]: unknown kind %d", i, int(m.Kind))
		}
		dest := m.Dest
		if dest == "" && m.Kind == Dev {
			dest = "/dev"
		}
		if dest == "" && (m.Kind == Bind || m.Kind == ROBind) {
			dest = m.Source
		}
		if !path.IsAbs(dest) {
			return invalid("FS[%d]: %s destination %q is not an absolute path", i, m.Kind, dest)
		}
		if path.Clean(dest) == "/" {
			return invalid("FS[%d]: %s onto / (use Root)", i, m.Kind)
		}
		if m.Mode&^(os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid) != 0 {
			return invalid("FS[%d]: mode %v has bits other than permissions", i, m.Mode)
		}
		if m.Kind != Tmpfs && (m.Size != 0 || m.Mode != 0) {
			return invalid("FS[%d]: size and mode are for Tmpfs", i)
		}
	}
	return nil
}

// callerPath maps path p, as the payload will see it, to where the caller
// finds it now (for the PATH lookup of Path): under EnterRoot; through the
// binds of FS; under Root. It returns "" where the payload's p is on a
// fresh filesystem (a Tmpfs or Dev), which holds no program yet.
func (s *Spec) callerPath(p string) string {
	if s.EnterRoot != "" {
		return s.EnterRoot + p
	}
	if !s.hasView() {
		return p
	}
	// The last step covering p wins, as it is mounted last.
	for i := len(s.FS) - 1; i >= 0; i-- {
		m := s.FS[i]
		dest := m.Dest
		if dest == "" {
			if m.Kind == Dev {
				dest = "/dev"
			} else {
				dest = m.Source
			}
		}
		dest = path.Clean(dest)
		rest, ok := strings.CutPrefix(p, dest)
		if !ok || (rest != "" && rest[0] != '/') {
			continue
		}
		if m.Kind == Bind || m.Kind == ROBind {
			return m.Source + rest
		}
		return ""
	}
	if s.Root != "" {
		return path.Clean(s.Root) + p
	}
	return p
}

// unixMode turns Go's mode bits into the octal of chmod(2).
func unixMode(m os.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}
