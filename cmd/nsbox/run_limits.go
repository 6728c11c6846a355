package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/sandbox/caps"
	"github.com/nsbox/nsbox/sandbox/cgroup"
	"github.com/nsbox/nsbox/sandbox/rlimit"
	"github.com/nsbox/nsbox/sandbox/seccomp"
)

// limitOptions are run's flags for what the payload may do: capabilities,
// no_new_privs, seccomp, rlimits and cgroup limits, and --sandbox.
type limitOptions struct {
	capOps     []caps.Op // --cap-add/--cap-drop in order; --sandbox adds a drop of ALL at its place
	capsGiven  bool
	noNewPrivs bool
	seccomp    string
	rlimits    []string
	memory     string
	memorySwap string
	pids       string
	cpus       string
	cgroupPar  string
	sandbox    bool
}

// capValue is --cap-add or --cap-drop: each use appends to the shared,
// ordered list, so "--cap-drop ALL --cap-add kill" keeps kill.
type capValue struct {
	o    *limitOptions
	drop bool
}

func (v *capValue) String() string { return "" }
func (v *capValue) Type() string   { return "CAP" }
func (v *capValue) Set(s string) error {
	if s == "" {
		return errors.New("empty capability name")
	}
	v.o.capOps = append(v.o.capOps, caps.Op{Drop: v.drop, Name: s})
	v.o.capsGiven = true
	return nil
}

// sandboxValue is --sandbox: its "drop every capability" takes its place
// among the --cap-* flags, so a --cap-add after it adds one back.
type sandboxValue struct{ o *limitOptions }

func (v *sandboxValue) String() string   { return "false" }
func (v *sandboxValue) Type() string     { return "bool" }
func (v *sandboxValue) IsBoolFlag() bool { return true }
func (v *sandboxValue) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	v.o.sandbox = on
	if on {
		v.o.capOps = append(v.o.capOps, caps.Op{Drop: true, Name: "ALL"})
		v.o.capsGiven = true
	}
	return nil
}

// addLimitFlags defines the flags of limitOptions on fs.
func addLimitFlags(fs *pflag.FlagSet, o *limitOptions) {
	fs.Var(&capValue{o: o, drop: true}, "cap-drop", "drop capability CAP (capabilities(7) name, with or without CAP_) or ALL; repeatable, in order with --cap-add")
	fs.Var(&capValue{o: o}, "cap-add", "keep or add capability CAP (raised as ambient for a non-root --uid); repeatable")
	fs.BoolVar(&o.noNewPrivs, "no-new-privs", false, "set no_new_privs: setuid bits and file capabilities grant nothing (implied by --seccomp unless CAP_SYS_ADMIN is kept)")
	fs.StringVar(&o.seccomp, "seccomp", "", "seccomp profile: default (nsbox's, see README), unconfined, or an OCI/Docker JSON FILE")
	fs.StringArrayVar(&o.rlimits, "rlimit", nil, "resource limit NAME=SOFT[:HARD] (nofile, nproc, as, cpu, core, fsize, memlock, stack, ...; unlimited allowed); repeatable")
	fs.StringVar(&o.memory, "memory", "", "memory limit of the sandbox's cgroup, BYTES with suffix k, m or g")
	fs.StringVar(&o.memorySwap, "memory-swap", "", "memory plus swap limit, BYTES (-1: unlimited swap; needs --memory)")
	fs.StringVar(&o.pids, "pids", "", "most processes and threads in the sandbox's cgroup")
	fs.StringVar(&o.cpus, "cpus", "", "CPU quota N.N, in CPUs")
	fs.StringVar(&o.cgroupPar, "cgroup-parent", "", "parent cgroup PATH (absolute in the hierarchy, must exist; default: a nsbox group)")
	fs.Var(&sandboxValue{o: o}, "sandbox", "lock it down: new IPC, PID, mount, UTS, net, cgroup namespaces, uid/gid 65534, every capability dropped, no_new_privs, --seccomp default, --pids 1024; later flags override")
	fs.Lookup("sandbox").NoOptDefVal = "true"
}

// setupf is a bad value of a limit flag: one line naming the flag, exit 125
// (nothing was started).
func setupf(format string, a ...any) error {
	return &exitError{code: exitSetupFailed, err: fmt.Errorf("run: "+format, a...)}
}

// limitFlag is one flag of addLimitFlags as the C fast path's table knows it
// (go generate ./cmd/nsbox writes it into csrc/nsbox_gen.h after the view's
// flags; TestLimitFlagTable checks it against addLimitFlags).
type limitFlag struct {
	name   string
	isBool bool
	// fast: the C fast path takes it (FuzzRunFastParity checks that it
	// makes the same spec of it as Go).
	fast bool
	// caps: it takes its place in the ordered list of --cap-drop and
	// --cap-add (--sandbox drops ALL there).
	caps bool
}

// limitFlagTable are the flags of addLimitFlags, in its order. --rlimit,
// --memory, --memory-swap, --cpus and --cgroup-parent stay Go's.
var limitFlagTable = []limitFlag{
	{name: "cap-drop", fast: true, caps: true},
	{name: "cap-add", fast: true, caps: true},
	{name: "no-new-privs", isBool: true, fast: true},
	{name: "seccomp", fast: true},
	{name: "rlimit"},
	{name: "memory"},
	{name: "memory-swap"},
	{name: "pids", fast: true},
	{name: "cpus"},
	{name: "cgroup-parent"},
	{name: "sandbox", isBool: true, fast: true, caps: true},
}

// sandboxDefaults is what --sandbox turns on: the bool flags it sets (the
// network namespace too unless --netns or --pool gives one), the values it
// fills in where the user gave none, and the view's steps it puts before the
// user's. go generate ./cmd/nsbox renders it into csrc/nsbox_gen.h for the C
// fast path.
var sandboxDefaults = struct {
	on                   []string // bool flags of runFlags and viewFlagTable
	uid, gid             string
	seccomp, pids        string
	fs                   []orderedArg
	noNewPrivs, capsDrop bool
}{
	on:         []string{"ipc", "pid", "mount", "uts", "cgroup", "ro-root"},
	uid:        "65534",
	gid:        "65534",
	seccomp:    "default",
	pids:       "1024",
	fs:         []orderedArg{{flag: "--dev", value: "true"}, {flag: "--tmpfs", value: "/tmp:mode=1777"}},
	noNewPrivs: true,
	capsDrop:   true, // "--cap-drop ALL" at --sandbox's place (sandboxValue)
}

// applySandbox fills in what --sandbox implies and the user did not set.
func (o *runOptions) applySandbox() {
	if !o.lim.sandbox {
		return
	}
	d := &sandboxDefaults
	for _, name := range d.on {
		o.setBool(name)
	}
	if o.netns == "" && o.pool == "" { // --netns and --pool give it a network namespace
		o.net = true
	}
	if o.uid == "" {
		o.uid = d.uid
	}
	if o.gid == "" {
		o.gid = d.gid
	}
	// The view: the root read-only, a minimal /dev (with its own /dev/shm
	// tmpfs) and a private /tmp first, so the user's own mounts come after.
	o.fsArgs = append(append([]orderedArg(nil), d.fs...), o.fsArgs...)
	o.lim.noNewPrivs = o.lim.noNewPrivs || d.noNewPrivs
	if o.lim.seccomp == "" {
		o.lim.seccomp = d.seccomp
	}
	if o.lim.pids == "" {
		o.lim.pids = d.pids
	}
}

// setBool turns on the bool flag name of runFlags or viewFlagTable.
func (o *runOptions) setBool(name string) {
	for _, f := range runFlags {
		if f.name == name {
			*f.ref(o).(*bool) = true
			return
		}
	}
	for _, f := range viewFlagTable {
		if f.name == name && !f.ordered {
			*f.ref(o).(*bool) = true
			return
		}
	}
	panic("run: --sandbox: no bool flag --" + name)
}

// limitSpec sets the limit fields of s from the flags. Every error names its
// flag and is a setup failure (exit 125).
func (o *runOptions) limitSpec(s *nsclone.Spec) error {
	l := &o.lim
	if l.capsGiven {
		all, err := caps.All()
		if err != nil {
			return setupf("--cap-drop/--cap-add: %v", err)
		}
		base := all
		if s.Namespaces&nsclone.User == 0 {
			if base, err = caps.Effective(); err != nil {
				return setupf("--cap-drop/--cap-add: %v", err)
			}
		}
		keep, err := caps.Apply(base, base, l.capOps)
		if err != nil {
			return setupf("%v", err)
		}
		s.Capabilities = &keep
	}
	s.NoNewPrivs = l.noNewPrivs
	switch l.seccomp {
	case "", "unconfined":
	case "default":
		s.Seccomp = seccomp.Default()
	default:
		// Docker's conditional rules are read for the capabilities
		// the payload keeps, as dockerd reads them for a container's.
		env := seccomp.Env{}
		if s.Capabilities != nil {
			env.Caps = *s.Capabilities
		} else if s.UID == nil || *s.UID == 0 {
			env.Caps, _ = caps.Effective()
		}
		p, err := seccomp.LoadFor(l.seccomp, env)
		if err != nil {
			return setupf("--seccomp %s: %v", l.seccomp, err)
		}
		if _, err := seccomp.Compile(p); err != nil {
			return setupf("--seccomp %s: %v", l.seccomp, err)
		}
		s.Seccomp = p
	}
	for _, r := range l.rlimits {
		lim, err := rlimit.Parse(r)
		if err != nil {
			return setupf("--rlimit %s: %v", r, err)
		}
		if err := rlimit.Check(lim); err != nil {
			return setupf("--rlimit %s: %v", r, err)
		}
		s.Rlimits = append(s.Rlimits, lim)
	}
	var cg cgroup.Config
	var err error
	if l.memory != "" {
		if cg.Memory, err = cgroup.ParseBytes(l.memory, false); err != nil {
			return setupf("--memory: %v", err)
		}
	}
	if l.memorySwap != "" {
		if cg.MemorySwap, err = cgroup.ParseBytes(l.memorySwap, true); err != nil {
			return setupf("--memory-swap: %v", err)
		}
		if l.memory == "" {
			return setupf("--memory-swap needs --memory")
		}
		if cg.MemorySwap > 0 && cg.MemorySwap < cg.Memory {
			return setupf("--memory-swap %s is below --memory %s", l.memorySwap, l.memory)
		}
	}
	if l.pids != "" {
		if cg.Pids, err = strconv.ParseInt(l.pids, 10, 64); err != nil || cg.Pids <= 0 {
			return setupf("--pids %q: want a positive number of tasks", l.pids)
		}
	}
	if l.cpus != "" {
		if cg.CPUs, err = strconv.ParseFloat(l.cpus, 64); err != nil || !(cg.CPUs >= 0.01) || cg.CPUs > 1e6 {
			return setupf("--cpus %q: want a number of CPUs such as 0.5 or 2 (at least 0.01)", l.cpus)
		}
	}
	cg.Parent = l.cgroupPar
	if l.cgroupPar != "" {
		if cg.Limits.IsZero() {
			return setupf("--cgroup-parent needs a limit (--memory, --pids or --cpus)")
		}
		if !strings.HasPrefix(l.cgroupPar, "/") {
			return setupf("--cgroup-parent %q: want an absolute path inside the cgroup hierarchy, such as /nsbox", l.cgroupPar)
		}
	}
	if !cg.Limits.IsZero() {
		s.Cgroup = &cg
	}
	return nil
}

// oomError is the one line nsbox prints when the payload was killed for
// exceeding --memory: exit 137, as the SIGKILL would give.
func oomError(limit int64) error {
	return &exitError{code: 137, err: fmt.Errorf("sandbox killed: out of memory (limit %s)", cgroup.FormatBytes(limit))}
}

// limitFlagOf names the flag behind a failed limits stage ("" for other stages).
func limitFlagOf(se *nsclone.SetupError) string {
	switch se.Stage {
	case nsclone.StageCgroup:
		if errors.Is(se.Err, cgroup.ErrParent) {
			return "--cgroup-parent"
		}
		return "--memory/--memory-swap/--pids/--cpus"
	case nsclone.StageSeccomp:
		return "--seccomp"
	case nsclone.StageRlimit:
		return "--rlimit"
	case nsclone.StageCaps:
		return "--cap-add/--cap-drop"
	case nsclone.StageNoNewPrivs:
		return "--no-new-privs"
	}
	return ""
}
