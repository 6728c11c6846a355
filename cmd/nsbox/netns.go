package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/nsclone"
)

const netnsUsage = `netns add NAME                 create a named network namespace (as ip netns add)
netns del NAME                 delete it (its links go with it once unused)
netns list|show                named namespaces in /run/netns (-j: [{"name":...}])
netns exec NAME [--] CMD [ARG...]
                               run CMD inside NAME with /sys and /etc/netns/NAME/*
                               bound as ip netns exec does; exits with CMD's status
netns identify [PID]           the name of PID's namespace (default: nsbox's)
netns pids NAME                processes inside NAME
netns attach NAME PID          name PID's network namespace NAME (as ip netns attach)
                               NAME of exec and pids may also be a path
                               (/proc/PID/ns/net, a bind mount) or a pid, as with -n`

func netnsCommand() *command {
	return &command{name: "netns", usage: netnsUsage, run: runNetns}
}

func runNetns(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return netnsList(e, nil)
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list", "show", "ls", "lst":
		return netnsList(e, rest)
	case "add":
		name, err := nsNameArg("netns add", rest)
		if err != nil {
			return err
		}
		cr, err := e.nsCreator()
		if err != nil {
			return err
		}
		if err := cr.Add(ctx, name); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("netns add %s: namespace already exists", name)
			}
			return err
		}
		return nil
	case "del", "delete":
		name, err := nsNameArg("netns del", rest)
		if err != nil {
			return err
		}
		return netnsDel(ctx, e, name)
	case "exec":
		return netnsExec(ctx, e, rest)
	case "identify":
		return netnsIdentify(e, rest)
	case "pids":
		if len(rest) != 1 {
			return usagef("netns pids: expected one namespace (a name, a path or a pid), got %d argument(s)", len(rest))
		}
		ns, err := resolveNS("netns pids", rest[0])
		if err != nil {
			return err
		}
		pids, err := netns.Pids(ns)
		if err != nil {
			return nsOpenError(rest[0], err)
		}
		for _, p := range pids {
			fmt.Fprintln(e.stdout, p)
		}
		return nil
	case "attach":
		return netnsAttach(ctx, e, rest)
	case "help":
		fmt.Fprintln(e.stdout, netnsUsage)
		return nil
	}
	return usagef("netns: unknown subcommand %q (add, del, list, exec, identify, pids, attach)", sub)
}

// nsCreator returns the namespace creator shared by the lines of a batch:
// one dedicated thread makes every namespace of the invocation.
func (e *env) nsCreator() (*netns.Creator, error) {
	r, err := e.cached("netns:creator", func() (io.Closer, error) { return netns.NewCreator(), nil })
	if err != nil {
		return nil, err
	}
	c, ok := r.(*netns.Creator)
	if !ok {
		return nil, fmt.Errorf("internal error: resource netns:creator is a %T", r)
	}
	return c, nil
}

// netnsAttach is netns attach NAME PID.
func netnsAttach(ctx context.Context, e *env, args []string) error {
	if len(args) != 2 {
		return usagef("netns attach: expected NAME PID, got %d argument(s)", len(args))
	}
	name, err := nsNameArg("netns attach", args[:1])
	if err != nil {
		return err
	}
	pid, ok := pidWord(args[1])
	if !ok {
		return usagef("netns attach %s: invalid pid %q", name, args[1])
	}
	if err := netns.Attach(ctx, name, pid); err != nil {
		switch {
		case errors.Is(err, unix.EEXIST):
			return fmt.Errorf("netns attach %s: namespace already exists", name)
		case errors.Is(err, unix.ENOENT):
			return fmt.Errorf("netns attach %s: no process with pid %d", name, pid)
		}
		var ne *netns.Error
		if errors.As(err, &ne) {
			err = ne.Err
		}
		return fmt.Errorf("netns attach %s %d: %w", name, pid, err)
	}
	return nil
}

// nsNameArg takes a single valid namespace name.
func nsNameArg(cmd string, args []string) (string, error) {
	switch len(args) {
	case 0:
		return "", usagef("%s: missing namespace name", cmd)
	case 1:
	default:
		return "", usagef("%s: unexpected argument %q", cmd, args[1])
	}
	if args[0] == "" {
		return "", usagef("%s: empty namespace name", cmd)
	}
	if err := netns.ValidateName(args[0]); err != nil {
		return "", usagef("%s %s: invalid namespace name: %s", cmd, quoteIfOdd(args[0]), nameRuleBroken(err))
	}
	return args[0], nil
}

func netnsList(e *env, args []string) error {
	if len(args) > 0 {
		return usagef("netns list: unexpected argument %q", args[0])
	}
	names, err := netns.List()
	if err != nil {
		return err
	}
	if e.json {
		type entry struct {
			Name string `json:"name"`
		}
		out := make([]entry, len(names))
		for i, n := range names {
			out[i].Name = n
		}
		return e.printJSON(out)
	}
	for _, n := range names {
		fmt.Fprintln(e.stdout, n)
	}
	return nil
}

func netnsIdentify(e *env, args []string) error {
	pid := 0
	switch len(args) {
	case 0:
	case 1:
		p, err := strconv.Atoi(args[0])
		if err != nil || p <= 0 {
			return usagef("netns identify: invalid pid %q", args[0])
		}
		pid = p
	default:
		return usagef("netns identify: unexpected argument %q", args[1])
	}
	name, err := netns.Identify(pid)
	if err != nil {
		return err
	}
	if name != "" {
		fmt.Fprintln(e.stdout, name)
	}
	return nil
}

// netnsExec runs a command in a named namespace and returns its exit status
// as an exitError (125/126/127 when it could not be run, as run does).
func netnsExec(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("netns exec: missing namespace name")
	}
	if e.netns != "" {
		return usagef("netns exec %s: -n %s does not apply (netns exec names its namespace; drop -n)", args[0], e.netns)
	}
	name, args := args[0], args[1:]
	ns, err := resolveNS("netns exec", name)
	if err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return usagef("netns exec %s: missing command", name)
	}
	stdio, finish, err := e.stdioFiles()
	if err != nil {
		return &exitError{code: exitSetupFailed, err: fmt.Errorf("netns exec %s: %w", name, err)}
	}
	defer finish()
	spec, err := netns.ExecSpec(ns, args, stdio)
	if err != nil {
		return execError(name, args[0], err)
	}
	// Like ip netns exec, the command owns the terminal's signals: nsbox
	// passes them on instead of dying, through run's spawn path.
	return spawnWait(ctx, "netns exec "+name, netnsExecCloneDenied, spec, nil)
}

// netnsExecCloneDenied is netns exec's advice when clone is refused with
// EPERM: it has no --user way out, since it joins a namespace root made.
const netnsExecCloneDenied = "netns exec needs root, as ip netns exec does: it joins the namespace and mounts /sys in a new mount namespace"

// execError maps a failure to start the command to 127 (not found), 126
// (not executable) or 125 (anything else).
func execError(name, cmd string, err error) error {
	var se *nsclone.SetupError
	if errors.As(err, &se) && se.Stage == nsclone.StageExec {
		switch {
		case errors.Is(se.Err, unix.ENOENT):
			return &exitError{code: exitNotFound, err: fmt.Errorf("netns exec %s: %s: command not found (%w)", name, cmd, se.Err)}
		case errors.Is(se.Err, unix.EACCES), errors.Is(se.Err, unix.ENOEXEC), errors.Is(se.Err, unix.EISDIR),
			errors.Is(se.Err, unix.EPERM), errors.Is(se.Err, unix.ETXTBSY), errors.Is(se.Err, unix.ENOTDIR):
			return &exitError{code: exitNoExec, err: fmt.Errorf("netns exec %s: %s: %w", name, cmd, se.Err)}
		}
	}
	if errors.Is(err, unix.ENOENT) && !errors.As(err, &se) {
		return &exitError{code: exitSetupFailed, err: fmt.Errorf("netns exec %s: no such namespace (see nsbox netns list)", name)}
	}
	return &exitError{code: exitSetupFailed, err: err}
}

// stdioFiles returns the env's streams as files for a child: the streams
// themselves when they are files, else pipes copied to and from them until
// finish is called (after the child ended).
func (e *env) stdioFiles() ([3]*os.File, func(), error) {
	var files [3]*os.File
	var closers []*os.File
	var waits []chan struct{}
	fail := func(err error) ([3]*os.File, func(), error) {
		for _, f := range closers {
			f.Close()
		}
		return files, nil, err
	}
	if f, ok := e.stdin.(*os.File); ok {
		files[0] = f
	} else if e.stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		files[0] = r
		closers = append(closers, r)
		go func() { io.Copy(w, e.stdin); w.Close() }()
	}
	for i, out := range []io.Writer{e.stdout, e.stderr} {
		if f, ok := out.(*os.File); ok {
			files[i+1] = f
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		files[i+1] = w
		closers = append(closers, w)
		done := make(chan struct{})
		waits = append(waits, done)
		go func(out io.Writer) { io.Copy(out, r); r.Close(); close(done) }(out)
	}
	finish := func() {
		for _, f := range closers {
			f.Close()
		}
		for _, d := range waits {
			<-d
		}
	}
	return files, finish, nil
}
