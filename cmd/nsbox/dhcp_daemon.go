package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/dhcpclient"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// dhcpDaemonEnv, in the environment of the background copy that --daemon
// starts, names the fd on which it says "ok" once bound.
const dhcpDaemonEnv = "NSBOX_DHCP_DAEMON_FD"

// daemonize runs `nsbox dhcp ... --daemon` again as a background process
// (its own session, stdin on /dev/null) and returns once that process is
// bound (exit 0, having printed the lease) or has failed (its exit code,
// having printed its error), as dhclient returns once it goes to the
// background.
func daemonize(e *env, args []string, dev, pidFile string) error {
	if pid := lockHolder(pidFile); pid > 0 {
		return fmt.Errorf("dhcp %s: a client already runs for %s as pid %d (stop it with nsbox dhcp -x %s)", dev, dev, pid, dev)
	}
	var argv []string
	if e.netns != "" {
		argv = append(argv, "-n", e.netns)
	}
	if e.json {
		argv = append(argv, "-j")
	}
	argv = append(append(argv, "dhcp"), args...)
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("dhcp %s: daemon: %w", dev, err)
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe", argv...)
	cmd.Env = append(os.Environ(), dhcpDaemonEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	var copies []chan struct{}
	var ends []*os.File // the write ends of the copy pipes, closed after Start
	for _, out := range []struct {
		dst io.Writer
		set func(*os.File)
	}{{e.stdout, func(f *os.File) { cmd.Stdout = f }}, {e.stderr, func(f *os.File) { cmd.Stderr = f }}} {
		if f, ok := out.dst.(*os.File); ok {
			out.set(f)
			continue
		}
		// Not a file (tests): copy until the daemon lets go of it.
		pr, pw, err := os.Pipe()
		if err != nil {
			w.Close()
			return fmt.Errorf("dhcp %s: daemon: %w", dev, err)
		}
		ends = append(ends, pw)
		out.set(pw)
		done := make(chan struct{})
		copies = append(copies, done)
		go func(dst io.Writer) {
			defer close(done)
			defer pr.Close()
			_, _ = io.Copy(dst, pr)
		}(out.dst)
	}
	err = cmd.Start()
	w.Close()
	for _, f := range ends {
		f.Close()
	}
	if err != nil {
		for _, c := range copies {
			<-c
		}
		return fmt.Errorf("dhcp %s: daemon: %w", dev, err)
	}
	b, _ := io.ReadAll(r) // EOF: the daemon said ok and closed it, or died
	for _, c := range copies {
		<-c
	}
	if string(b) == "ok\n" {
		_ = cmd.Process.Release()
		return nil
	}
	err = cmd.Wait()
	var xe *exec.ExitError
	if errors.As(err, &xe) && xe.ExitCode() > 0 {
		return &exitError{code: xe.ExitCode()}
	}
	return fmt.Errorf("dhcp %s: daemon ended before a lease: %v", dev, err)
}

// detached tells the waiting parent of a --daemon client that it is bound,
// and puts stdin, stdout and stderr on /dev/null.
func detached() {
	fd, err := strconv.Atoi(os.Getenv(dhcpDaemonEnv))
	if err != nil || fd < 3 {
		return
	}
	_, _ = unix.Write(fd, []byte("ok\n"))
	_ = unix.Close(fd)
	if null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
		for i := 0; i < 3; i++ {
			_ = unix.Dup3(null, i, 0)
		}
		_ = unix.Close(null)
	}
}

// stopWait bounds how long -r and -x wait for the running client to end.
const stopWait = 10 * time.Second

// stopDHCP is nsbox dhcp -r (release) and -x: it signals the client that
// holds pidFile (SIGUSR1: release and exit; SIGTERM: exit, keeping the
// lease) and waits until it has ended. With no client running, -r releases
// the lease of leaseFile itself and -x has nothing to do.
func stopDHCP(ctx context.Context, e *env, ns *netns.Handle, conn *rtnl.Conn, dev string, release bool, pidFile, leaseFile, resolvConf string) error {
	if pid := lockHolder(pidFile); pid > 0 {
		sig := unix.SIGTERM
		if release {
			sig = unix.SIGUSR1
		}
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("dhcp %s: signal pid %d: %w", dev, pid, err)
		}
		deadline := time.Now().Add(stopWait)
		for lockHolder(pidFile) > 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("dhcp %s: pid %d still runs %s after %s", dev, pid, stopWait, unix.SignalName(sig))
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("dhcp %s: interrupted while pid %d stops", dev, pid)
			case <-time.After(10 * time.Millisecond):
			}
		}
		return nil
	}
	if !release {
		return nil
	}
	l, err := dhcpclient.LoadLease(leaseFile)
	if err != nil {
		return fmt.Errorf("dhcp %s: %w", dev, err)
	}
	if l == nil {
		return nil // nothing held: nothing to release (as dhclient -r)
	}
	link, err := conn.LinkByName(ctx, dev)
	if err != nil {
		if errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("dhcp %s: no such device%s", dev, inNS(e.netns))
		}
		return fmt.Errorf("dhcp %s: %w", dev, err)
	}
	pc, err := dhcpclient.Listen(ns, dev)
	if err != nil {
		return fmt.Errorf("dhcp %s: %w", dev, err)
	}
	cl, err := dhcpclient.New(dev, link.HardwareAddr, pc, dhcpclient.WithLeaseFile(leaseFile),
		dhcpclient.WithApplier(&dhcpclient.RtnlApplier{Conn: conn, Dev: dev, ResolvConf: resolvConf}))
	if err != nil {
		pc.Close()
		return fmt.Errorf("dhcp %s: %w", dev, err)
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := cl.Release(rctx); err != nil && !errors.Is(err, dhcpclient.ErrNoLeaseHeld) {
		return fmt.Errorf("dhcp %s: %w", dev, err)
	}
	return nil
}
