package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/names"
	"github.com/nsbox/nsbox/internal/sbstate"
	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/nsnet"
)

const runUsage = `run [--ipc] [--pid] [--mount] [--net] [--uts] [--user] [--cgroup]
    [--mount-proc|--no-mount-proc] [--propagation private|slave|shared|unchanged]
    [--uid UID|NAME] [--gid GID|NAME] [--map-root] [--hostname NAME]
    [--init|--no-init] [--netns NAME]
    [--net --bridge BR [--dhcp | --addr CIDR [--gateway IP]] [--dns IP[,IP]] [--ifname NAME]]
    [--rootfs DIR] [--ro-root] [--bind SRC[:DEST]]... [--ro-bind SRC[:DEST]]...
    [--tmpfs DEST[:size=N[,mode=M]]]... [--dev] [--chdir DIR]
    [--clearenv] [--setenv NAME=VALUE]... [--unsetenv NAME]...
    [--name NAME] [--status-fd FD] [--pidfile FILE]
    [--cap-drop CAP|ALL]... [--cap-add CAP]... [--no-new-privs]
    [--seccomp default|unconfined|FILE.json] [--rlimit NAME=SOFT[:HARD]]...
    [--memory BYTES] [--memory-swap BYTES] [--pids N] [--cpus N.N] [--cgroup-parent PATH] [--sandbox]
    [--] [CMD [ARG...]]
  unshare spellings: -i -p -m -n -u -U -C (--ipc ... --cgroup), -r/--map-root-user,
  -f/--fork (always), --wd (--chdir), --root (--rootfs). -n AFTER run is --net;
  the global nsbox -n NS BEFORE run names the namespace that holds --bridge.`

// runOptions are the parsed flags and command of nsbox run.
type runOptions struct {
	ipc, pid, mount, net, uts, user, cgroup bool
	mountProc, noMountProc                  bool
	propagation                             string
	uid, gid                                string
	mapRoot                                 bool
	hostname                                string
	init, noInit                            bool
	netns                                   string
	bridge                                  string
	dhcp                                    bool
	addr, gateway, ifname, dns              string
	dhcpTimeout                             time.Duration
	pool                                    string        // --pool NAME (run_pool.go)
	poolTimeout                             time.Duration // --pool-timeout
	nat                                     bool          // --nat
	publish                                 []string      // --publish, repeatable
	verbose                                 bool          // -v
	help                                    bool
	mapRootUser, fork                       bool

	// The view and the environment (run_view.go).
	rootfs, chdir   string
	roRoot          bool
	fsArgs, envArgs []orderedArg
	fs              []nsclone.FSMount
	lim             limitOptions
	name, pidfile   string
	statusFD        int

	cmd []string
}

// runFlag is one flag of nsbox run. The table runFlags is the one source of
// truth for the flags: runFlagSet defines them for Go's parser and help from
// it, and go generate ./cmd/nsbox writes it into csrc/nsbox_gen.h, whose flag
// table the C fast path walks (TestGeneratedHeader fails when that file is
// stale). A flag only the Go path takes needs one entry without fast.
type runFlag struct {
	name, short, usage string
	// ref returns the field of o the flag sets: a *bool, *string,
	// *time.Duration or *[]string (a repeatable flag).
	ref func(o *runOptions) any
	// def is the default of a *time.Duration flag.
	def time.Duration
	// fast: the C fast path takes this flag (it must then make of it what
	// Go makes of it: FuzzRunFastParity checks).
	fast bool
	// clone is the namespace (CLONE_NEW*) a bool flag asks for.
	clone uintptr
	// implies are the bool flags this flag turns on when given (after the
	// default namespaces are chosen, so --hostname alone keeps them).
	implies []string
}

// runFlags are the flags of nsbox run, in the order of the help (then the
// view's and the limits' groups, then -h).
var runFlags = []runFlag{
	{name: "ipc", short: "i", usage: "new IPC namespace", ref: func(o *runOptions) any { return &o.ipc }, fast: true, clone: unix.CLONE_NEWIPC},
	{name: "pid", short: "p", usage: "new PID namespace (the payload, or the init, is PID 1)", ref: func(o *runOptions) any { return &o.pid }, fast: true, clone: unix.CLONE_NEWPID},
	{name: "mount", short: "m", usage: "new mount namespace (its tree is made private first)", ref: func(o *runOptions) any { return &o.mount }, fast: true, clone: unix.CLONE_NEWNS},
	{name: "net", short: "n", usage: "new network namespace", ref: func(o *runOptions) any { return &o.net }, fast: true, clone: unix.CLONE_NEWNET},
	{name: "uts", short: "u", usage: "new UTS namespace (hostname)", ref: func(o *runOptions) any { return &o.uts }, fast: true, clone: unix.CLONE_NEWUTS},
	{name: "user", short: "U", usage: "new user namespace (works without root)", ref: func(o *runOptions) any { return &o.user }, clone: unix.CLONE_NEWUSER},
	{name: "cgroup", short: "C", usage: "new cgroup namespace", ref: func(o *runOptions) any { return &o.cgroup }, fast: true, clone: unix.CLONE_NEWCGROUP},
	{name: "mount-proc", usage: "mount a fresh /proc (needs --pid; implies --mount; the default with --pid --mount)", ref: func(o *runOptions) any { return &o.mountProc }, fast: true, implies: []string{"mount"}},
	{name: "no-mount-proc", usage: "do not mount /proc", ref: func(o *runOptions) any { return &o.noMountProc }, fast: true},
	{name: "propagation", usage: "propagation of / in the new mount namespace: private (default), slave, shared, unchanged", ref: func(o *runOptions) any { return &o.propagation }, fast: true},
	// --uid: the user's groups and HOME, USER, LOGNAME are Go's business.
	{name: "uid", usage: "run the command as this user (number or name from /etc/passwd)", ref: func(o *runOptions) any { return &o.uid }, fast: true},
	{name: "gid", usage: "run the command with this group (number or name from /etc/group); supplementary groups are cleared", ref: func(o *runOptions) any { return &o.gid }, fast: true},
	{name: "map-root", usage: "map your uid and gid to root in the new user namespace (needs --user)", ref: func(o *runOptions) any { return &o.mapRoot }},
	{name: "hostname", usage: "set the hostname (at most 64 bytes; implies --uts)", ref: func(o *runOptions) any { return &o.hostname }, fast: true, implies: []string{"uts"}},
	{name: "init", usage: "run a tiny init as PID 1 that reaps orphans and forwards signals (the default with --pid)", ref: func(o *runOptions) any { return &o.init }, fast: true},
	{name: "no-init", usage: "make the command itself PID 1, as the walkthrough does", ref: func(o *runOptions) any { return &o.noInit }, fast: true},
	{name: "netns", usage: "join this network namespace: a name of /run/netns, a path (/proc/PID/ns/net) or a pid", ref: func(o *runOptions) any { return &o.netns }},
	{name: "bridge", usage: "give the new network namespace a veth whose peer joins bridge BR (needs --net)", ref: func(o *runOptions) any { return &o.bridge }, fast: true},
	{name: "dhcp", usage: "configure the sandbox's interface by DHCP (needs --bridge)", ref: func(o *runOptions) any { return &o.dhcp }},
	{name: "addr", usage: "address CIDR for the sandbox's interface (needs --bridge)", ref: func(o *runOptions) any { return &o.addr }, fast: true},
	{name: "gateway", usage: "default gateway IP (needs --addr)", ref: func(o *runOptions) any { return &o.gateway }, fast: true},
	{name: "dns", usage: "DNS servers the sandbox's /etc/resolv.conf names (needs --bridge; default with --dhcp: the lease's)", ref: func(o *runOptions) any { return &o.dns }},
	{name: "ifname", usage: "name of the sandbox's interface (default eth0; needs --bridge)", ref: func(o *runOptions) any { return &o.ifname }, fast: true},
	{name: "pool", usage: "join a ready network namespace of the pool NAME (see nsbox pool start)", ref: func(o *runOptions) any { return &o.pool }, fast: true},
	{name: "pool-timeout", usage: "how long --pool waits for a ready namespace", ref: func(o *runOptions) any { return &o.poolTimeout }, def: defaultPoolTimeout},
	{name: "nat", usage: "masquerade the bridge's subnets while the sandbox runs (needs --bridge)", ref: func(o *runOptions) any { return &o.nat }},
	{name: "publish", usage: "publish [IP:]HOSTPORT:PORT[/tcp|/udp] of the sandbox (repeatable; needs --bridge or --pool)", ref: func(o *runOptions) any { return &o.publish }, fast: true},
	{name: "verbose", short: "v", usage: "say where the network came from", ref: func(o *runOptions) any { return &o.verbose }},
	{name: "dhcp-timeout", usage: "give up (exit 125, nothing left) when no lease comes within DUR (needs --dhcp)", ref: func(o *runOptions) any { return &o.dhcpTimeout }, def: 10 * time.Second},
	{name: "map-root-user", short: "r", usage: "same as --user --map-root (unshare -r)", ref: func(o *runOptions) any { return &o.mapRootUser }},
	{name: "fork", short: "f", usage: "accepted for unshare's sake: the command always runs in a new process", ref: func(o *runOptions) any { return &o.fork }},
}

// runFlagSet defines every flag of nsbox run from runFlags: the one source
// of truth for parsing, help and validation.
func runFlagSet(o *runOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	for _, f := range runFlags {
		switch p := f.ref(o).(type) {
		case *bool:
			fs.BoolVarP(p, f.name, f.short, false, f.usage)
		case *string:
			fs.StringVarP(p, f.name, f.short, "", f.usage)
		case *time.Duration:
			fs.DurationVarP(p, f.name, f.short, f.def, f.usage)
		case *[]string:
			fs.StringArrayVarP(p, f.name, f.short, nil, f.usage)
		default:
			panic(fmt.Sprintf("run: flag --%s: unsupported field type %T", f.name, p))
		}
	}
	// The view's group (run_view.go) and --name, --status-fd, --pidfile
	// (run_state.go) are in the C fast path's generated table too; the
	// limits' group (run_limits.go) is Go-only: the C walker does not know
	// it and leaves any command line that has one to Go.
	viewFlags(fs, o)
	addLimitFlags(fs, &o.lim)
	addWatchFlags(fs, o)
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	return fs
}

// applyImplies turns on the flags that given flags imply (runFlag.implies).
func (o *runOptions) applyImplies() {
	for _, f := range runFlags {
		given := false
		switch p := f.ref(o).(type) {
		case *bool:
			given = *p
		case *string:
			given = *p != ""
		}
		if !given {
			continue
		}
		for _, name := range f.implies {
			for _, g := range runFlags {
				if g.name == name {
					*g.ref(o).(*bool) = true
				}
			}
		}
	}
}

// parseRunArgs parses and checks the arguments of nsbox run without looking
// at the system. Every error is a usage error.
func parseRunArgs(args []string) (*runOptions, error) {
	o := &runOptions{}
	fs := runFlagSet(o)
	if err := fs.Parse(args); err != nil {
		return nil, usagef("run: %v", err)
	}
	o.cmd = fs.Args()
	if o.help {
		return o, nil
	}
	// An empty value is an error, never "not given" (--uid "" must not
	// run as root, --netns "" must not stay in the host's namespace).
	var empty string
	fs.Visit(func(f *pflag.Flag) {
		if empty == "" && f.Value.Type() == "string" && f.Value.String() == "" {
			empty = f.Name
		}
	})
	if empty != "" {
		return nil, usagef("run: --%s: empty value", empty)
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// check validates the combination of flags and applies the defaults.
func (o *runOptions) check() error {
	if o.mapRootUser {
		o.user, o.mapRoot = true, true // as unshare -r: a user namespace only, unless more is asked
	}
	o.applySandbox()
	if !(o.ipc || o.pid || o.mount || o.net || o.uts || o.user || o.cgroup) {
		// The walkthrough's set.
		o.ipc, o.pid, o.mount = true, true, true
	}
	if err := o.checkView(); err != nil {
		return err
	}
	if o.name != "" {
		if err := sbstate.ValidateName(o.name); err != nil {
			return &exitError{code: exitSetupFailed, err: fmt.Errorf("run: --name: %v", err)}
		}
	}
	if o.statusFD < -1 {
		return usagef("run: --status-fd %d: not a file descriptor", o.statusFD)
	}
	if o.hasView() {
		o.mount = true
	}
	if o.mountProc && o.noMountProc {
		return usagef("run: --mount-proc and --no-mount-proc exclude each other")
	}
	if o.init && o.noInit {
		return usagef("run: --init and --no-init exclude each other")
	}
	if o.mountProc && !o.pid {
		return usagef("run: --mount-proc needs --pid (a new /proc shows the new PID namespace)")
	}
	o.applyImplies()
	if !o.mountProc && !o.noMountProc && o.pid && o.mount {
		o.mountProc = true
	}
	if !o.init && !o.noInit && o.pid {
		o.init = true
	}
	switch o.propagation {
	case "", "private", "slave", "shared", "unchanged":
	default:
		return usagef("run: --propagation %q: want private, slave, shared or unchanged", o.propagation)
	}
	if o.propagation != "" && !o.mount {
		return usagef("run: --propagation needs --mount")
	}
	if o.hostname != "" {
		if len(o.hostname) > 64 {
			return usagef("run: --hostname: %d bytes, more than 64", len(o.hostname))
		}
		if strings.IndexByte(o.hostname, 0) >= 0 {
			return usagef("run: --hostname: contains a NUL byte")
		}
	}
	if o.mapRoot && !o.user {
		return usagef("run: --map-root needs --user")
	}
	for _, id := range []struct{ flag, v string }{{"--uid", o.uid}, {"--gid", o.gid}} {
		if id.v != "" {
			if _, err := parseID(id.v); err != nil && !isName(id.v) {
				return usagef("run: %s %q: %v", id.flag, id.v, err)
			}
		}
	}
	if o.netns != "" {
		if o.net {
			return usagef("run: --netns and --net exclude each other")
		}
		if strings.IndexByte(o.netns, 0) >= 0 || o.netns == "." || o.netns == ".." {
			return usagef("run: --netns %q: not a namespace name, path or pid", o.netns)
		}
		if !strings.Contains(o.netns, "/") {
			if why := names.Netns.Check(o.netns); why != "" {
				return usagef("run: --netns %q: not a namespace name, path or pid (%s)", o.netns, why)
			}
		}
	}
	if err := o.checkNetwork(); err != nil {
		return err
	}
	if err := o.checkPoolFlags(); err != nil {
		return err
	}
	for _, a := range o.cmd {
		if strings.IndexByte(a, 0) >= 0 {
			return usagef("run: argument %q contains a NUL byte", a)
		}
	}
	return nil
}

// checkNetwork validates --bridge, --dhcp, --addr, --gateway and --ifname.
func (o *runOptions) checkNetwork() error {
	if o.bridge == "" {
		for _, f := range []struct {
			name string
			set  bool
		}{{"--dhcp", o.dhcp}, {"--addr", o.addr != ""}, {"--gateway", o.gateway != ""}, {"--ifname", o.ifname != ""}, {"--dns", o.dns != ""},
			{"--dhcp-timeout", o.dhcpTimeout != 10*time.Second}} {
			if f.set {
				return usagef("run: %s needs --bridge", f.name)
			}
		}
		return nil
	}
	if !o.net {
		return usagef("run: --bridge needs --net")
	}
	if err := checkIfname("--bridge", o.bridge); err != nil {
		return err
	}
	if o.ifname != "" {
		if err := checkIfname("--ifname", o.ifname); err != nil {
			return err
		}
	}
	if o.dhcp == (o.addr != "") {
		return usagef("run: --bridge needs exactly one of --dhcp and --addr")
	}
	if o.dhcpTimeout != 10*time.Second && !o.dhcp {
		return usagef("run: --dhcp-timeout needs --dhcp")
	}
	if o.dhcpTimeout <= 0 {
		return usagef("run: --dhcp-timeout %s: want a positive duration such as 5s", o.dhcpTimeout)
	}
	cfg := nsnet.Config{Bridge: o.bridge, IfName: o.ifname, DHCP: o.dhcp}
	if o.addr != "" {
		if !strings.Contains(o.addr, "/") {
			return usagef("run: --addr %q: want an address with a prefix length, such as 10.0.0.2/24", o.addr)
		}
		p, err := netip.ParsePrefix(o.addr)
		if err != nil {
			return usagef("run: --addr %q: not a CIDR address", o.addr)
		}
		cfg.Addr = p
	}
	if o.gateway != "" {
		if o.addr == "" {
			return usagef("run: --gateway needs --addr")
		}
		gw, err := netip.ParseAddr(o.gateway)
		if err != nil {
			return usagef("run: --gateway %q: not an IP address", o.gateway)
		}
		cfg.Gateway = gw
	}
	// The rules of nsnet (no /0, broadcast, loopback, multicast, 0/8...)
	// are usage errors, found before anything is looked up.
	if err := cfg.Validate(); err != nil {
		return usagef("run: %v", err)
	}
	return nil
}

func checkIfname(flag, name string) error {
	if why := names.Link.Check(name); why != "" {
		return usagef("run: %s %q: not an interface name (%s)", flag, name, why)
	}
	return nil
}

// runCommand is nsbox run: spawn a command in new namespaces.
func runCommand() *command {
	return &command{name: "run", usage: runUsage, noBatch: true, run: runMain}
}

func runMain(ctx context.Context, e *env, args []string) error {
	o, err := parseRunArgs(args)
	if err != nil {
		return err
	}
	if o.help {
		fmt.Fprintln(e.stdout, "usage: nsbox "+runUsage)
		fmt.Fprintln(e.stdout, "\nWith no namespace flag: --ipc --pid --mount, /proc mounted, an init as PID 1.")
		fmt.Fprintln(e.stdout, "With no command: $SHELL, else /bin/sh. Exit status: the command's, 128+N if")
		fmt.Fprintln(e.stdout, "it died of signal N, 125 if nsbox failed, 126 not executable, 127 not found.")
		fmt.Fprintln(e.stdout, "\n-n NS before run names the namespace of --bridge's bridge (the sandbox's veth")
		fmt.Fprintln(e.stdout, "peer goes there); to run the command inside NS, use run --netns NS (a name, a")
		fmt.Fprintln(e.stdout, "path such as /proc/PID/ns/net, or a pid) or nsbox netns exec NS.")
		fmt.Fprintln(e.stdout, "\nflags:")
		fmt.Fprint(e.stdout, runFlagSet(&runOptions{}).FlagUsages())
		return nil
	}
	if e.netns != "" && o.bridge == "" {
		return usagef("run: use run --netns %s instead of -n %s (-n NAME with run names the namespace of --bridge)", e.netns, e.netns)
	}
	spec, err := o.spec()
	if err != nil {
		return err
	}
	// With --bridge, the bridge (in -n NAME's namespace, or nsbox's own)
	// is checked before anything is spawned; the payload is held until its
	// network is configured, dies with nsbox (so even a SIGKILL leaves no
	// sandbox, and the kernel removes its veth), and its veth and lease go
	// when it ends.
	sn, err := o.networkConfig(ctx, e.netns)
	if err != nil {
		return err
	}
	if sn != nil {
		sn.cfg.DHCPTimeout = o.dhcpTimeout
		if err := sn.hook(ctx, spec); err != nil {
			sn.close(ctx)
			return err
		}
		spec.ParentDeathSignal = unix.SIGKILL
	}
	rn, err := o.setupRunNet(ctx, e, spec, &sn) // --pool, --nat, --publish
	if err != nil {
		sn.close(ctx)
		return err
	}
	w, err := o.watch(spec, sn)
	if err != nil {
		rn.close(ctx)
		sn.close(ctx)
		return err
	}
	err = runSpawn(ctx, spec, w)
	if cerr := errors.Join(rn.close(ctx), sn.close(ctx)); cerr != nil && err == nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("run: %w", cerr)}
	}
	return err
}

// spec turns the options into an nsclone.Spec, looking up users, groups and
// the network namespace to join.
func (o *runOptions) spec() (*nsclone.Spec, error) {
	s := &nsclone.Spec{
		Env:         os.Environ(),
		MountProc:   o.mountProc,
		Propagation: o.propagation,
		Hostname:    o.hostname,
		MapRoot:     o.mapRoot,
		Init:        o.init,
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
	}
	for _, f := range runFlags {
		if on, ok := f.ref(o).(*bool); ok && f.clone != 0 && *on {
			s.Namespaces |= nsclone.Namespace(f.clone)
		}
	}
	s.Args = o.cmd
	if len(s.Args) == 0 {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		s.Args = []string{sh}
	}
	s.Path = s.Args[0]
	if err := o.viewSpec(s); err != nil {
		return nil, err
	}
	if err := o.ids(s); err != nil {
		return nil, err
	}
	s.Env = applyEnv(s.Env, o.envArgs)
	if o.netns != "" {
		// A name, a path or a pid, as -n takes them (netns_target.go).
		ns, err := resolveNS("run: --netns", o.netns)
		if err != nil {
			var ue *usageError
			if errors.As(err, &ue) {
				return nil, err
			}
			return nil, &exitError{code: exitSetupFailed, err: fmt.Errorf("run: --netns %s: %w", o.netns, err)}
		}
		p := nsFilePath(ns)
		if err := unix.Access(p, unix.F_OK); err != nil {
			return nil, &exitError{code: exitSetupFailed, err: fmt.Errorf("run: --netns %s: no such network namespace (%s: %w)", o.netns, p, err)}
		}
		s.Join = map[nsclone.Namespace]string{nsclone.Net: p}
	}
	if err := o.limitSpec(s); err != nil {
		return nil, err
	}
	if o.lim.sandbox && o.net && o.bridge == "" {
		s.LoopbackUp = true
	}
	if err := s.Validate(); err != nil {
		return nil, usagef("run: %v", err)
	}
	return s, nil
}

// runSpawn is spawnWait for run (and enter, which shares run's messages).
func runSpawn(ctx context.Context, spec *nsclone.Spec, w *runWatch) error {
	return spawnWait(ctx, "run", runCloneDenied, spec, w)
}

// runCloneDenied is run's advice when clone is refused with EPERM.
const runCloneDenied = "creating namespaces needs root; as a user try --user --map-root, unless user namespaces are disabled: see /proc/sys/user/max_user_namespaces and kernel.unprivileged_userns_clone"

// spawnWait starts spec, forwards signals to it and returns its exit status
// as an exitError: the one spawn, exit-code and signal path of run, enter
// and netns exec; what prefixes its messages ("run", "netns exec NS") and
// cloneDenied is the caller's advice when clone is refused (EPERM). It
// does not kill the payload when ctx is cancelled by a signal: the signal
// is forwarded instead. The forwarding is the C fast path's (run_fast.c),
// which reads si_code: a signal the terminal sent to the whole foreground
// process group reached the payload already and is not sent twice; one sent
// with kill is passed on even while nsbox is in the terminal's foreground.
// Signals that come before the child exists are sent once it does.
func spawnWait(ctx context.Context, what, cloneDenied string, spec *nsclone.Spec, w *runWatch) error {
	forwardInstall()
	defer forwardRestore()
	p, err := nsclone.Start(context.WithoutCancel(ctx), spec)
	if err != nil {
		w.abort()
		return spawnError(what, cloneDenied, err)
	}
	if err := w.started(p); err != nil {
		_ = p.Signal(unix.SIGKILL)
		p.Wait()
		w.ended(exitSetupFailed)
		return &exitError{code: exitSetupFailed, err: err}
	}
	forwardTo(p.Pid())
	st, err := p.Wait()
	if err != nil {
		w.ended(exitSetupFailed)
		return &exitError{code: exitSetupFailed, err: fmt.Errorf("%s: %w", what, err)}
	}
	w.ended(st.Code())
	if st.OOMKilled() && spec.Cgroup != nil {
		return oomError(spec.Cgroup.Memory)
	}
	if c := st.Code(); c != 0 {
		return &exitError{code: c}
	}
	return nil
}

// spawnError maps an nsclone error to the exit codes of DESIGN.md, adding
// advice for the common errnos.
func spawnError(what, cloneDenied string, err error) error {
	var se *nsclone.SetupError
	if !errors.As(err, &se) {
		return &exitError{code: exitSetupFailed, err: fmt.Errorf("%s: %w", what, err)}
	}
	if se.Stage == nsclone.StageExec {
		msg := &runMsgError{msg: fmt.Sprintf("%s: %s: %v", what, se.Object, se.Err), err: err}
		switch {
		case errors.Is(se.Err, unix.ENOENT):
			msg.msg = fmt.Sprintf("%s: %s: command not found (%v)", what, se.Object, se.Err)
			return &exitError{code: exitNotFound, err: msg}
		case errors.Is(se.Err, unix.EACCES), errors.Is(se.Err, unix.ENOEXEC), errors.Is(se.Err, unix.EISDIR),
			errors.Is(se.Err, unix.EPERM), errors.Is(se.Err, unix.ETXTBSY), errors.Is(se.Err, unix.ENOTDIR),
			errors.Is(se.Err, unix.ELOOP), errors.Is(se.Err, unix.ENAMETOOLONG):
			return &exitError{code: exitNoExec, err: msg}
		}
		return &exitError{code: exitSetupFailed, err: msg}
	}
	if flag := limitFlagOf(se); flag != "" {
		return &exitError{code: exitSetupFailed, err: fmt.Errorf("%s: %s: %w", what, flag, err)}
	}
	advice := ""
	switch {
	case se.Stage == nsclone.StageClone && errors.Is(se.Err, unix.EPERM):
		advice = " (" + cloneDenied + ")"
	case errors.Is(se.Err, unix.ENOSPC), errors.Is(se.Err, unix.EUSERS):
		advice = " (namespace limit reached, see /proc/sys/user/max_*_namespaces)"
	case se.Stage == nsclone.StageMountProc && errors.Is(se.Err, unix.EPERM):
		advice = " (a fresh /proc needs the PID namespace's owner to hold CAP_SYS_ADMIN)"
	}
	return &exitError{code: exitSetupFailed, err: fmt.Errorf("%s: %w%s", what, err, advice)}
}

// runMsgError is an error with a message of its own that still wraps its
// cause (for errors.Is and errors.As).
type runMsgError struct {
	msg string
	err error
}

func (e *runMsgError) Error() string { return e.msg }
func (e *runMsgError) Unwrap() error { return e.err }
