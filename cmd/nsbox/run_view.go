package main

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/nsbox/nsbox/nsclone"
)

// orderedArg is one repeatable flag of run whose order matters (the view's
// --bind, --ro-bind, --tmpfs, --dev; the environment's --clearenv, --setenv,
// --unsetenv), as typed.
type orderedArg struct{ flag, value string }

// orderedValue is a pflag.Value that appends to a list shared by several
// flags, so that their relative order survives parsing.
type orderedValue struct {
	flag   string
	list   *[]orderedArg
	isBool bool
	last   string // the last value given (for the empty-value check)
}

func (v *orderedValue) String() string { return v.last }

func (v *orderedValue) Set(s string) error {
	if v.isBool && s != "true" {
		return fmt.Errorf("takes no value")
	}
	v.last = s
	*v.list = append(*v.list, orderedArg{flag: "--" + v.flag, value: s})
	return nil
}

func (v *orderedValue) Type() string {
	if v.isBool {
		return "bool"
	}
	return "string"
}

// viewFlag is one flag of the view and environment group. viewFlags
// defines them from viewFlagTable, and go generate ./cmd/nsbox writes the
// table into csrc/nsbox_gen.h after runFlags: the C fast path of run takes
// every one of them (FuzzRunFastParity checks it makes the same spec).
type viewFlag struct {
	name, usage string
	isBool      bool
	// ref is the field a plain flag sets (*string or *bool); nil for an
	// ordered one.
	ref func(o *runOptions) any
	// same is the flag whose value an alias sets ("" for itself).
	same string
	// ordered: repeatable, kept in the order typed in one list with the
	// other ordered flags of that list: the view's (--bind, --ro-bind,
	// --tmpfs, --dev) or, with env, the environment's.
	ordered, env bool
}

// viewFlagTable are the flags of the view and the environment, in the
// order of the help.
var viewFlagTable = []viewFlag{
	{name: "rootfs", usage: "make DIR the payload's / (bind onto itself, pivot_root, old root detached; like bwrap --bind DIR /)", ref: func(o *runOptions) any { return &o.rootfs }},
	{name: "root", usage: "same as --rootfs (unshare's --root, done with pivot_root instead of chroot)", ref: func(o *runOptions) any { return &o.rootfs }, same: "rootfs"},
	{name: "ro-root", usage: "make the root (--rootfs DIR, else the host's /) and every mount below it read-only", isBool: true, ref: func(o *runOptions) any { return &o.roRoot }},
	{name: "bind", usage: "bind SRC[:DEST] (DEST inside the new root, default SRC; repeatable, in order; bwrap --bind)", ordered: true},
	{name: "ro-bind", usage: "read-only bind SRC[:DEST] (keeps nosuid/nodev/noexec; bwrap --ro-bind)", ordered: true},
	{name: "tmpfs", usage: "fresh tmpfs DEST[:size=BYTES[,mode=OCTAL]] (bwrap --tmpfs)", ordered: true},
	{name: "dev", usage: "minimal /dev: null zero full random urandom tty, pts, shm, fd links (bwrap --dev /dev)", isBool: true, ordered: true},
	{name: "chdir", usage: "working directory inside the sandbox (default: yours if it exists there, else /)", ref: func(o *runOptions) any { return &o.chdir }},
	{name: "wd", usage: "same as --chdir (unshare's --wd)", ref: func(o *runOptions) any { return &o.chdir }, same: "chdir"},
	{name: "clearenv", usage: "start from an empty environment (applied in order with --setenv and --unsetenv)", isBool: true, ordered: true, env: true},
	{name: "setenv", usage: "set NAME=VALUE in the payload's environment (repeatable)", ordered: true, env: true},
	{name: "unsetenv", usage: "remove NAME from the payload's environment (repeatable)", ordered: true, env: true},
}

// viewFlags adds the flags of the filesystem view and the environment.
func viewFlags(fs *pflag.FlagSet, o *runOptions) {
	for _, f := range viewFlagTable {
		if !f.ordered {
			switch p := f.ref(o).(type) {
			case *string:
				fs.StringVar(p, f.name, "", f.usage)
			case *bool:
				fs.BoolVar(p, f.name, false, f.usage)
			}
			continue
		}
		list := &o.fsArgs
		if f.env {
			list = &o.envArgs
		}
		fl := fs.VarPF(&orderedValue{flag: f.name, list: list, isBool: f.isBool}, f.name, "", f.usage)
		if f.isBool {
			fl.NoOptDefVal = "true"
		}
	}
}

// hasView reports whether o asks for a filesystem view.
func (o *runOptions) hasView() bool { return o.rootfs != "" || o.roRoot || len(o.fsArgs) > 0 }

// checkView validates the view and environment flags without touching the
// system and builds their steps.
func (o *runOptions) checkView() error {
	if o.rootfs != "" && !path.IsAbs(o.rootfs) {
		return &exitError{code: exitSetupFailed, err: fmt.Errorf("run: --rootfs %s: not an absolute path", o.rootfs)}
	}
	if o.chdir != "" && !path.IsAbs(o.chdir) {
		return usagef("run: --chdir %s: not an absolute path", o.chdir)
	}
	o.fs = nil
	for _, a := range o.fsArgs {
		m, err := parseFSArg(a)
		if err != nil {
			return err
		}
		o.fs = append(o.fs, m)
	}
	for _, a := range o.envArgs {
		switch a.flag {
		case "--setenv":
			name, _, ok := strings.Cut(a.value, "=")
			if !ok || !validEnvName(name) {
				return usagef("run: --setenv %q: want NAME=VALUE", a.value)
			}
		case "--unsetenv":
			if !validEnvName(a.value) {
				return usagef("run: --unsetenv %q: not a variable name", a.value)
			}
		}
		if strings.IndexByte(a.value, 0) >= 0 {
			return usagef("run: %s: contains a NUL byte", a.flag)
		}
	}
	return nil
}

func validEnvName(s string) bool { return s != "" && !strings.ContainsAny(s, "=\x00") }

// parseFSArg turns one --bind, --ro-bind, --tmpfs or --dev into a step.
func parseFSArg(a orderedArg) (nsclone.FSMount, error) {
	var m nsclone.FSMount
	if strings.IndexByte(a.value, 0) >= 0 {
		return m, usagef("run: %s: contains a NUL byte", a.flag)
	}
	switch a.flag {
	case "--dev":
		m.Kind, m.Dest = nsclone.Dev, "/dev"
	case "--bind", "--ro-bind":
		m.Kind = nsclone.Bind
		if a.flag == "--ro-bind" {
			m.Kind = nsclone.ROBind
		}
		// SRC[:DEST]: DEST follows the last ':'.
		m.Source, m.Dest = a.value, a.value
		if i := strings.LastIndex(a.value, ":"); i >= 0 {
			m.Source, m.Dest = a.value[:i], a.value[i+1:]
		}
		if m.Source == "" {
			return m, usagef("run: %s %q: empty source", a.flag, a.value)
		}
		if !path.IsAbs(m.Dest) {
			return m, usagef("run: %s %q: destination %q is not an absolute path", a.flag, a.value, m.Dest)
		}
	case "--tmpfs":
		dest, opts, _ := strings.Cut(a.value, ":")
		if !path.IsAbs(dest) {
			return m, usagef("run: --tmpfs %q: destination %q is not an absolute path", a.value, dest)
		}
		m.Kind, m.Dest = nsclone.Tmpfs, dest
		if opts != "" {
			for _, kv := range strings.Split(opts, ",") {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "size":
					n, err := parseSize(v)
					if err != nil {
						return m, usagef("run: --tmpfs %q: size %q: %v", a.value, v, err)
					}
					m.Size = n
				case "mode":
					n, err := strconv.ParseUint(v, 8, 32)
					if err != nil || n > 0o7777 {
						return m, usagef("run: --tmpfs %q: mode %q: want octal permissions such as 0755", a.value, v)
					}
					m.Mode = os.FileMode(n & 0o777)
					if n&0o1000 != 0 {
						m.Mode |= os.ModeSticky
					}
					if n&0o2000 != 0 {
						m.Mode |= os.ModeSetgid
					}
					if n&0o4000 != 0 {
						m.Mode |= os.ModeSetuid
					}
				default:
					return m, usagef("run: --tmpfs %q: unknown option %q (want size= and mode=)", a.value, k)
				}
			}
		}
	}
	if path.Clean(m.Dest) == "/" {
		return m, usagef("run: %s %q: cannot mount onto / (use --rootfs)", a.flag, a.value)
	}
	return m, nil
}

// parseSize reads BYTES with an optional k, m or g suffix (powers of 1024).
func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult, s = 1<<10, s[:n-1]
		case 'm', 'M':
			mult, s = 1<<20, s[:n-1]
		case 'g', 'G':
			mult, s = 1<<30, s[:n-1]
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("want a positive number of bytes (k, m, g suffixes allowed)")
	}
	if n > (1<<64-1)/mult {
		return 0, fmt.Errorf("too large")
	}
	return n * mult, nil
}

// viewSpec fills the view of spec from o, checking the paths the user
// gave: a rootfs that is not a directory, a missing source.
func (o *runOptions) viewSpec(s *nsclone.Spec) error {
	if o.rootfs != "" {
		fi, err := os.Stat(o.rootfs)
		if err != nil {
			return &exitError{code: exitSetupFailed, err: fmt.Errorf("run: --rootfs %s: %w", o.rootfs, unwrapPathError(err))}
		}
		if !fi.IsDir() {
			return &exitError{code: exitSetupFailed, err: fmt.Errorf("run: --rootfs %s: not a directory", o.rootfs)}
		}
		s.Root = o.rootfs
	}
	s.ReadOnlyRoot = o.roRoot
	for i, m := range o.fs {
		if m.Kind == nsclone.Bind || m.Kind == nsclone.ROBind {
			flag := o.fsArgs[i].flag
			src, err := filepath.Abs(m.Source)
			if err != nil {
				return &exitError{code: exitSetupFailed, err: fmt.Errorf("run: %s %s: %w", flag, m.Source, err)}
			}
			if _, err := os.Stat(src); err != nil {
				return &exitError{code: exitSetupFailed, err: fmt.Errorf("run: %s %s: %w", flag, m.Source, unwrapPathError(err))}
			}
			m.Source = src
		}
		s.FS = append(s.FS, m)
	}
	if o.chdir != "" {
		s.Dir = o.chdir
	}
	return nil
}

// unwrapPathError drops the *PathError's repetition of the path.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// applyEnv applies --clearenv, --setenv and --unsetenv in order to env.
func applyEnv(env []string, ops []orderedArg) []string {
	for _, a := range ops {
		switch a.flag {
		case "--clearenv":
			env = nil
		case "--setenv":
			name, _, _ := strings.Cut(a.value, "=")
			env = append(unsetEnv(env, name), a.value)
		case "--unsetenv":
			env = unsetEnv(env, a.value)
		}
	}
	if env == nil {
		env = []string{}
	}
	return env
}

// setEnv sets NAME=VALUE in env, replacing any earlier value.
func setEnv(env []string, name, value string) []string {
	return append(unsetEnv(env, name), name+"="+value)
}

func unsetEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != name {
			out = append(out, kv)
		}
	}
	return out
}
