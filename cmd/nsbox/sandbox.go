package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/sbstate"
	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/sandbox/cgroup"
)

const psUsage = `ps                     list the running named sandboxes (run --name); -j for JSON`

const enterUsage = `enter NAME|PID [--all | --net --mount --pid --ipc --uts --user --cgroup]... [--env]
    [--uid U] [--gid G] [--] [CMD [ARG...]]   (nsenter --all -t PID; all namespaces by default)`

const killUsage = `kill NAME [SIGNAL]     signal a named sandbox (default TERM), like kill on its init`

func psCommand() *command {
	return &command{name: "ps", usage: psUsage, run: psMain}
}

func enterCommand() *command {
	return &command{name: "enter", usage: enterUsage, noBatch: true, run: enterMain}
}

func killCommand() *command {
	return &command{name: "kill", usage: killUsage, run: killMain}
}

// psEntry is one sandbox of nsbox -j ps.
type psEntry struct {
	Name       string            `json:"name"`
	Pid        int               `json:"pid"`
	Started    time.Time         `json:"started"`
	Namespaces map[string]uint64 `json:"namespaces"`
	Addresses  []string          `json:"addresses"`
	Command    []string          `json:"command"`
	// Limits and Usage: the cgroup limits (--memory, --pids, ...) and the
	// current memory (bytes) and task count, for sandboxes that have them.
	Limits *sbstate.Limits `json:"limits,omitempty"`
	Usage  *psUsageEntry   `json:"usage,omitempty"`
}

// psUsageEntry is what a sandbox's cgroup holds now; -1 where the group has
// no such controller.
type psUsageEntry struct {
	Memory int64 `json:"memory"`
	Pids   int64 `json:"pids"`
}

// usageOf reads the current use of r's cgroup, or nil without one.
func usageOf(r *sbstate.Record) *psUsageEntry {
	if len(r.Cgroup) == 0 {
		return nil
	}
	mem, pids := (&cgroup.Group{Dirs: r.Cgroup}).Usage()
	return &psUsageEntry{Memory: mem, Pids: pids}
}

// limitsText is the LIMITS column: "mem=64 MiB/12 MiB pids=100/3 cpus=0.5"
// (limit/current use), or "-".
func limitsText(r *sbstate.Record) string {
	if r.Limits == nil {
		return "-"
	}
	u := usageOf(r)
	var parts []string
	if r.Limits.Memory > 0 {
		p := "mem=" + cgroup.FormatBytes(r.Limits.Memory)
		if u != nil && u.Memory >= 0 {
			p += "/" + cgroup.FormatBytes(u.Memory)
		}
		parts = append(parts, strings.ReplaceAll(p, " ", ""))
	}
	if r.Limits.Pids > 0 {
		p := "pids=" + strconv.FormatInt(r.Limits.Pids, 10)
		if u != nil && u.Pids >= 0 {
			p += "/" + strconv.FormatInt(u.Pids, 10)
		}
		parts = append(parts, p)
	}
	if r.Limits.CPUs > 0 {
		parts = append(parts, "cpus="+strconv.FormatFloat(r.Limits.CPUs, 'f', -1, 64))
	}
	return strings.Join(parts, " ")
}

func psMain(_ context.Context, e *env, args []string) error {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprintln(e.stdout, "usage: nsbox [-j] "+psUsage)
			return nil
		}
		return usagef("ps: unexpected argument %q", args[0])
	}
	recs, err := sbstate.Store{Dir: stateDir()}.List()
	if err != nil {
		return fmt.Errorf("ps: %w", unwrapSbstate(err))
	}
	if e.json {
		out := []psEntry{}
		for _, r := range recs {
			out = append(out, psEntry{Name: r.Name, Pid: r.Pid, Started: r.Started, Namespaces: r.Namespaces,
				Addresses: r.Addresses, Command: r.Command, Limits: r.Limits, Usage: usageOf(r)})
		}
		b, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("ps: %w", err)
		}
		fmt.Fprintln(e.stdout, string(b))
		return nil
	}
	self, _ := sbstate.Namespaces(os.Getpid())
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPID\tAGE\tNAMESPACES\tADDRESSES\tLIMITS\tCOMMAND")
	for _, r := range recs {
		var own []string
		for _, k := range sbstate.NamespaceKinds {
			if r.Namespaces[k] != self[k] {
				own = append(own, k)
			}
		}
		addrs := strings.Join(r.Addresses, ",")
		if addrs == "" {
			addrs = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Pid, time.Since(r.Started).Round(time.Second),
			strings.Join(own, ","), addrs, limitsText(r), strings.Join(r.Command, " "))
	}
	return tw.Flush()
}

func killMain(_ context.Context, e *env, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(e.stdout, "usage: nsbox "+killUsage)
		return nil
	}
	if len(args) < 1 || len(args) > 2 {
		return usagef("kill: want NAME [SIGNAL]")
	}
	if args[0] == "" {
		return usagef("kill: empty sandbox name")
	}
	sig := unix.SIGTERM
	if len(args) == 2 {
		s, err := parseSignal(args[1])
		if err != nil {
			return usagef("kill %s: %v", args[0], err)
		}
		sig = s
	}
	r, err := sbstate.Store{Dir: stateDir()}.Get(args[0])
	if err != nil {
		return fmt.Errorf("kill %s: %w", args[0], unwrapSbstate(err))
	}
	// Through a pidfd checked against the record, so a recycled pid is
	// never signalled.
	pid := r.InitPid
	if pid == 0 {
		pid = r.Pid
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("kill %s: pid %d: %w", args[0], pid, err)
	}
	defer unix.Close(fd)
	if !r.Live() {
		return fmt.Errorf("kill %s: %w (it has ended)", args[0], sbstate.ErrNotFound)
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("kill %s: pid %d: %w", args[0], pid, err)
	}
	return nil
}

// parseSignal reads TERM, SIGTERM or 15.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("signal %d out of range", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// enterOptions are the flags of nsbox enter.
type enterOptions struct {
	all, net, mount, pid, ipc, uts, user, cgroup bool
	env, help                                    bool
	uid, gid                                     string
}

func enterFlagSet(o *enterOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("enter", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.BoolVarP(&o.all, "all", "a", false, "every namespace of the target (the default)")
	fs.BoolVarP(&o.net, "net", "n", false, "its network namespace")
	fs.BoolVarP(&o.mount, "mount", "m", false, "its mount namespace, root and working directory")
	fs.BoolVarP(&o.pid, "pid", "p", false, "its PID namespace (the command is forked inside)")
	fs.BoolVarP(&o.ipc, "ipc", "i", false, "its IPC namespace")
	fs.BoolVarP(&o.uts, "uts", "u", false, "its UTS namespace")
	fs.BoolVarP(&o.user, "user", "U", false, "its user namespace")
	fs.BoolVarP(&o.cgroup, "cgroup", "C", false, "its cgroup namespace")
	fs.BoolVarP(&o.env, "env", "e", false, "take the target's environment")
	fs.StringVarP(&o.uid, "uid", "S", "", "run as this uid (or user name of the target's /etc/passwd)")
	fs.StringVarP(&o.gid, "gid", "G", "", "run with this gid (or group name)")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	return fs
}

func enterMain(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("enter: want NAME or PID (try nsbox enter -h)")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stdout, "usage: nsbox "+enterUsage+"\n\nflags:")
		fmt.Fprint(e.stdout, enterFlagSet(&enterOptions{}).FlagUsages())
		return nil
	}
	target := args[0]
	if target == "" {
		return usagef("enter: empty sandbox name or pid")
	}
	o := &enterOptions{}
	fs := enterFlagSet(o)
	if err := fs.Parse(args[1:]); err != nil {
		return usagef("enter %s: %v", target, err)
	}
	if o.help {
		return enterMain(ctx, e, []string{"-h"})
	}
	var empty string
	fs.Visit(func(f *pflag.Flag) {
		if f.Value.Type() == "string" && f.Value.String() == "" && empty == "" {
			empty = f.Name
		}
	})
	if empty != "" {
		return usagef("enter %s: --%s: empty value", target, empty)
	}
	spec, err := o.spec(target, fs.Args())
	if err != nil {
		return err
	}
	defer spec.JoinPidfd.Close()
	return runSpawn(ctx, spec, nil)
}

// enterTarget resolves NAME|PID to the pid whose root and directory to
// take and a pidfd, checked to be the sandbox's own process (a named
// sandbox's init, by its recorded start time), whose namespaces to join.
func enterTarget(target string) (int, *os.File, error) {
	var pid, payload int
	var ticks uint64
	if n, err := strconv.Atoi(target); err == nil && n > 0 {
		pid, payload = n, n
	} else {
		r, err := sbstate.Store{Dir: stateDir()}.Get(target)
		if err != nil {
			return 0, nil, &exitError{code: exitFailed, err: fmt.Errorf("enter %s: %w", target, unwrapSbstate(err))}
		}
		pid, payload, ticks = r.InitPid, r.Pid, r.StartTicks
		if pid == 0 {
			pid = r.Pid
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(payload)); err != nil {
			payload = pid // the payload has ended; the init stands for it
		}
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			err = errors.New("no such process")
		}
		return 0, nil, &exitError{code: exitFailed, err: fmt.Errorf("enter %s: pid %d: %w", target, pid, err)}
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	t, state, err := sbstate.StartTicks(pid)
	if err != nil || state == 'Z' || (ticks != 0 && t != ticks) {
		f.Close()
		return 0, nil, &exitError{code: exitFailed, err: fmt.Errorf("enter %s: pid %d: no such process (it has ended)", target, pid)}
	}
	return payload, f, nil
}

// spec builds the spawn of nsbox enter: the target's namespaces joined with
// one setns on its pidfd (those nsbox shares already left out, as nsenter
// does), its root and directory with the mount namespace, the command
// forked inside a joined PID namespace.
func (o *enterOptions) spec(target string, cmd []string) (*nsclone.Spec, error) {
	pid, pidfd, err := enterTarget(target)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*nsclone.Spec, error) {
		pidfd.Close()
		return nil, err
	}
	want := map[string]bool{"net": o.net, "mnt": o.mount, "pid": o.pid, "ipc": o.ipc, "uts": o.uts, "user": o.user, "cgroup": o.cgroup}
	any := false
	for _, v := range want {
		any = any || v
	}
	if o.all || !any {
		for k := range want {
			want[k] = true
		}
	}
	theirs, err := sbstate.Namespaces(pid) // the init's are the same
	if err != nil {
		return fail(&exitError{code: exitFailed, err: fmt.Errorf("enter %s: %w", target, unwrapSbstate(err))})
	}
	ours, err := sbstate.Namespaces(os.Getpid())
	if err != nil {
		return fail(&exitError{code: exitFailed, err: fmt.Errorf("enter %s: %w", target, unwrapSbstate(err))})
	}
	s := &nsclone.Spec{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, JoinPidfd: pidfd}
	for k, on := range want {
		if on && theirs[k] != ours[k] {
			s.JoinPidfdNamespaces |= kindBit(k)
		}
	}
	if s.JoinPidfdNamespaces == 0 {
		s.JoinPidfd = nil
		pidfd.Close()
		pidfd = nil
	}
	proc := "/proc/" + strconv.Itoa(pid)
	root := ""
	if want["mnt"] {
		s.EnterRoot, s.EnterDir = proc+"/root", proc+"/cwd"
		root = s.EnterRoot
	}
	// Forked inside a joined PID namespace; a joined user namespace needs
	// a process that does not share nsbox's memory: both take the init.
	s.Init = s.JoinPidfdNamespaces&(nsclone.PID|nsclone.User) != 0
	s.Env = os.Environ()
	if o.env {
		b, err := os.ReadFile(proc + "/environ")
		if err != nil {
			return fail(&exitError{code: exitFailed, err: fmt.Errorf("enter %s: read %s/environ: %w", target, proc, unwrapPathError(err))})
		}
		s.Env = []string{}
		for _, kv := range strings.Split(string(b), "\x00") {
			if kv != "" {
				s.Env = append(s.Env, kv)
			}
		}
	}
	if o.gid != "" {
		id, err := lookupID(root, o.gid, "group", "--gid", "group")
		if err != nil {
			return fail(err)
		}
		s.GID = &id
	}
	if o.uid != "" {
		id, err := lookupID(root, o.uid, "passwd", "--uid", "user")
		if err != nil {
			return fail(err)
		}
		s.UID = &id
	}
	s.Args = cmd
	if len(s.Args) == 0 {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		s.Args = []string{sh}
	}
	s.Path = s.Args[0]
	if err := s.Validate(); err != nil {
		return fail(usagef("enter %s: %v", target, err))
	}
	return s, nil
}
