package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/sbstate"
	"github.com/nsbox/nsbox/nsclone"
)

// stateDirEnv names the variable that moves the folder of named sandboxes
// (for tests that must not share /run/nsbox with a running system).
const stateDirEnv = "NSBOX_STATE_DIR"

// stateDir is the folder of named sandboxes; NSBOX_STATE_DIR moves it.
func stateDir() string {
	if d := os.Getenv(stateDirEnv); d != "" {
		return d
	}
	return sbstate.DefaultDir
}

// watchFlag is one of run's flags that name, watch or find the sandbox.
// go generate ./cmd/nsbox writes them into the C fast path's flag table
// after runFlags and viewFlagTable: the fast path takes them all.
type watchFlag struct {
	name, usage string
	ref         func(o *runOptions) any // *string, or *int (default -1)
}

// watchFlags are --name, --status-fd and --pidfile, in the order of the help.
var watchFlags = []watchFlag{
	{name: "name", usage: "register the sandbox as NAME for nsbox ps, enter and kill (/run/nsbox/sandboxes/NAME.json)", ref: func(o *runOptions) any { return &o.name }},
	{name: "status-fd", usage: "write JSON lines to inherited fd FD: child-pid and namespaces once set up, exit-code at the end (bwrap --json-status-fd)", ref: func(o *runOptions) any { return &o.statusFD }},
	{name: "pidfile", usage: "write the payload's pid to FILE (removed when it ends)", ref: func(o *runOptions) any { return &o.pidfile }},
}

// addWatchFlags defines watchFlags in fs.
func addWatchFlags(fs *pflag.FlagSet, o *runOptions) {
	for _, f := range watchFlags {
		switch p := f.ref(o).(type) {
		case *string:
			fs.StringVar(p, f.name, "", f.usage)
		case *int:
			fs.IntVar(p, f.name, -1, f.usage)
		default:
			panic(fmt.Sprintf("run: flag --%s: unsupported field type %T", f.name, p))
		}
	}
}

// The lines of --status-fd, as bubblewrap's --json-status-fd writes them:
// one object a line, "{ " and " }", keys and values separated by ": ",
// fields by ", ". go generate ./cmd/nsbox writes these into
// csrc/nsbox_gen.h, from which the C fast path writes the same lines
// (TestStatusLinesFastMatchGo).
const (
	statusOpen      = "{ "
	statusSep       = ", "
	statusKV        = ": "
	statusClose     = " }\n"
	statusChildPid  = "child-pid"
	statusNSSuffix  = "-namespace"
	statusInterface = "interface"
	statusAddresses = "addresses"
	statusExitCode  = "exit-code"
)

// statusKey is key as a status line writes it, with its separator.
func statusKey(key string) string { return `"` + key + `"` + statusKV }

// statusStartLine is the first status line: the payload's pid, the inodes
// of the namespaces in nsBits (ns, by kind, in sbstate.NamespaceKinds'
// order), and with a network (net) its interface and addresses.
func statusStartLine(pid int, ns map[string]uint64, nsBits nsclone.Namespace, net bool, ifname string, addrs []string) string {
	line := []string{statusKey(statusChildPid) + strconv.Itoa(pid)}
	for _, k := range sbstate.NamespaceKinds {
		if v, ok := ns[k]; ok && nsBits&kindBit(k) != 0 {
			line = append(line, statusKey(k+statusNSSuffix)+strconv.FormatUint(v, 10))
		}
	}
	if net {
		b, _ := json.Marshal(ifname)
		a, _ := json.Marshal(addrs)
		line = append(line, statusKey(statusInterface)+string(b), statusKey(statusAddresses)+string(a))
	}
	return statusOpen + strings.Join(line, statusSep) + statusClose
}

// statusEndLine is the last status line: the exit code.
func statusEndLine(code int) string {
	return statusOpen + statusKey(statusExitCode) + strconv.Itoa(code) + statusClose
}

// runWatch is what run does around a payload that is named (--name),
// watched (--status-fd) or whose pid is asked for (--pidfile).
type runWatch struct {
	name    string
	store   sbstate.Store
	lock    *sbstate.Lock
	rec     *sbstate.Record
	status  *os.File
	pidfile string
	spec    *nsclone.Spec
	sn      *sandboxNet
	cmd     []string
}

// watch checks --name, --status-fd and --pidfile before anything runs and
// reserves the name. It returns nil when none is given (plain run pays
// nothing).
func (o *runOptions) watch(spec *nsclone.Spec, sn *sandboxNet) (*runWatch, error) {
	if o.name == "" && o.statusFD < 0 && o.pidfile == "" {
		return nil, nil
	}
	w := &runWatch{name: o.name, store: sbstate.Store{Dir: stateDir()}, pidfile: o.pidfile, spec: spec, sn: sn, cmd: spec.Args}
	if o.statusFD >= 0 {
		if _, err := unix.FcntlInt(uintptr(o.statusFD), unix.F_GETFD, 0); err != nil {
			return nil, &exitError{code: exitSetupFailed, err: fmt.Errorf("run: --status-fd %d: %w", o.statusFD, err)}
		}
		// Close-on-exec: the payload never inherits it (nsclone closes
		// every fd it was not given anyway).
		unix.CloseOnExec(o.statusFD)
		w.status = os.NewFile(uintptr(o.statusFD), "status-fd")
	}
	if o.pidfile != "" {
		if fi, err := os.Stat(filepath.Dir(o.pidfile)); err != nil || !fi.IsDir() {
			return nil, &exitError{code: exitSetupFailed, err: fmt.Errorf("run: --pidfile %s: no such folder", o.pidfile)}
		}
	}
	if o.name != "" {
		l, err := w.store.Reserve(o.name)
		if err != nil {
			return nil, &exitError{code: exitSetupFailed, err: fmt.Errorf("run: --name %s: %w", o.name, unwrapSbstate(err))}
		}
		w.lock = l
	}
	return w, nil
}

// unwrapSbstate drops the package prefix of sbstate's messages.
func unwrapSbstate(err error) error {
	return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "sbstate: "))
}

// abort releases what watch took when the spawn failed.
func (w *runWatch) abort() {
	if w != nil && w.lock != nil {
		w.lock.Release()
	}
}

// payloadPid is the payload's pid: the init's only child, or the spawned
// process itself without an init.
func payloadPid(spec *nsclone.Spec, p *nsclone.Process) int {
	if !spec.Init {
		return p.Pid()
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/task/" + strconv.Itoa(p.Pid()) + "/children")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return p.Pid() // the payload has ended already: the init stands for it
}

// started records the running sandbox, writes the first status line and the
// pid file. A failure here kills the sandbox (its record must not lie).
func (w *runWatch) started(p *nsclone.Process) error {
	if w == nil {
		return nil
	}
	pid := payloadPid(w.spec, p)
	var ifname string
	var addrs []string
	if w.sn != nil {
		ifname = w.sn.cfg.IfName
		if ifname == "" {
			ifname = "eth0"
		}
		w.sn.mu.Lock()
		if w.sn.att != nil && w.sn.att.Addr.IsValid() {
			addrs = append(addrs, w.sn.att.Addr.String())
		}
		w.sn.mu.Unlock()
	}
	if w.lock != nil {
		// The spawned process (the init, or the payload) is ours to reap,
		// so its /proc entry stays until Wait; once it is a zombie the
		// sandbox has ended already and there is nothing to record.
		ticks, state, err := sbstate.StartTicks(p.Pid())
		ns, nerr := sbstate.Namespaces(p.Pid())
		if err != nil || nerr != nil || state == 'Z' {
			w.abort()
			return nil
		}
		w.rec = &sbstate.Record{Name: w.name, Pid: pid, InitPid: p.Pid(), Started: time.Now().UTC(), StartTicks: ticks,
			Namespaces: ns, Interface: ifname, Addresses: addrs, Command: w.cmd, NsboxPid: os.Getpid()}
		if addrs == nil {
			w.rec.Addresses = []string{}
		}
		if w.sn != nil {
			w.rec.Bridge = w.sn.cfg.Bridge
		}
		if g := p.Cgroup(); g != nil {
			w.rec.Limits = &sbstate.Limits{Memory: g.Limits.Memory, MemorySwap: g.Limits.MemorySwap, Pids: g.Limits.Pids, CPUs: g.Limits.CPUs}
			w.rec.Cgroup = g.Dirs
		}
		if err := w.lock.Add(w.rec); err != nil {
			w.rec = nil
			return fmt.Errorf("run: --name %s: %w", w.name, unwrapSbstate(err))
		}
	}
	// The record, then the pid file, then the first status line: once a
	// reader sees that line, the other two are there.
	if w.pidfile != "" {
		if err := os.WriteFile(w.pidfile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			w.abort()
			return fmt.Errorf("run: --pidfile %s: %w", w.pidfile, unwrapPathError(err))
		}
	}
	if w.status != nil {
		ns, _ := sbstate.Namespaces(p.Pid())
		// A reader that went away must not stop the sandbox.
		_, _ = w.status.WriteString(statusStartLine(pid, ns, w.spec.Namespaces, w.sn != nil, ifname, addrs))
	}
	return nil
}

// ended writes the last status line and removes the record and pid file.
func (w *runWatch) ended(code int) {
	if w == nil {
		return
	}
	if w.rec != nil {
		_ = w.store.Remove(w.rec) // a stale record is ignored and cleaned by readers
	}
	if w.pidfile != "" {
		os.Remove(w.pidfile)
	}
	if w.status != nil {
		_, _ = w.status.WriteString(statusEndLine(code))
		w.status.Close()
	}
}

// kindBit maps a /proc/PID/ns word to its nsclone kind.
func kindBit(k string) nsclone.Namespace {
	switch k {
	case "cgroup":
		return nsclone.Cgroup
	case "ipc":
		return nsclone.IPC
	case "mnt":
		return nsclone.Mnt
	case "net":
		return nsclone.Net
	case "pid":
		return nsclone.PID
	case "user":
		return nsclone.User
	case "uts":
		return nsclone.UTS
	}
	return 0
}
