package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/dhcpclient"
	"github.com/nsbox/nsbox/rtnl"
)

const dhcpUsage = `dhcp DEV [--once|--daemon] [--timeout DUR] [--release] [--lease-file FILE] [--pid-file FILE]
     [--hostname H] [--arp-check] [--no-route] [--no-dns] [--host-dns] [--retry DUR] [-v]
nsbox dhcp -r|-x DEV [--lease-file FILE] [--pid-file FILE]
     obtain a DHCP lease for DEV (brought up if down) and keep it renewed until
     SIGINT/SIGTERM; --once acquires, applies and exits (default --timeout 30s);
     --daemon goes to the background once bound (like dhclient);
     -r releases the held lease and stops the client running for DEV; -x stops
     it and keeps the lease (as dhclient -r and -x)`

func dhcpCommand() *command {
	return &command{name: "dhcp", usage: dhcpUsage, run: runDHCP, noBatch: true}
}

// dhcpFlags are the options of nsbox dhcp.
type dhcpFlags struct {
	once, release, arpCheck, noRoute, noDNS, hostDNS, verbose, help bool
	daemon, releaseHeld, stop                                       bool
	timeout, retry                                                  time.Duration
	leaseFile, hostname, pidFile                                    string
}

func dhcpFlagSet(f *dhcpFlags) *pflag.FlagSet {
	fs := pflag.NewFlagSet("dhcp", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&f.once, "once", false, "acquire and apply one lease, then exit")
	fs.DurationVar(&f.timeout, "timeout", 0, "give up when no lease came within DUR (default 30s with --once, none otherwise)")
	fs.BoolVar(&f.release, "release", false, "send DHCPRELEASE and remove the address on SIGINT/SIGTERM")
	fs.StringVar(&f.leaseFile, "lease-file", "", "lease file (default "+dhcpclient.DefaultLeaseDir+"/netns-NAME-DEV.lease)")
	fs.StringVar(&f.pidFile, "pid-file", "", "pid file of the running client (default "+dhcpRunDir+"/net-INODE-DEV.pid)")
	fs.BoolVar(&f.daemon, "daemon", false, "go to the background once bound (the pid file names it)")
	fs.BoolVarP(&f.releaseHeld, "release-now", "r", false, "release the held lease and stop the client running for DEV")
	fs.BoolVarP(&f.stop, "stop", "x", false, "stop the client running for DEV without releasing its lease")
	fs.StringVar(&f.hostname, "hostname", "", "send this host name (option 12)")
	fs.BoolVar(&f.arpCheck, "arp-check", false, "ARP-probe the offered address first (RFC 5227); decline it on conflict")
	fs.BoolVar(&f.noRoute, "no-route", false, "install no routes (options 3 and 121)")
	fs.BoolVar(&f.noDNS, "no-dns", false, "write no resolv.conf")
	fs.BoolVar(&f.hostDNS, "host-dns", false, "without -n only: write the host's /etc/resolv.conf")
	fs.DurationVar(&f.retry, "retry", time.Second, "first retransmission delay, doubled up to 64s with jitter (RFC 2131 says 4s)")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log every state change and rejected reply to stderr")
	fs.BoolVarP(&f.help, "help", "h", false, "show this help")
	return fs
}

// parseDHCPArgs checks the arguments of nsbox dhcp (netnsName is -n's) and
// returns the flags and the device; every error is a usage error. It
// touches nothing, so it is fuzzed.
func parseDHCPArgs(netnsName string, args []string) (f dhcpFlags, dev string, fs *pflag.FlagSet, err error) {
	fs = dhcpFlagSet(&f)
	if err := fs.Parse(args); err != nil {
		return f, "", fs, usagef("dhcp: %s", printable(err.Error()))
	}
	if f.help {
		return f, "", fs, nil
	}
	if err := refuseEmptyFlags("dhcp", fs); err != nil {
		return f, "", fs, err
	}
	if fs.NArg() != 1 {
		return f, "", fs, usagef("dhcp: need exactly one device (usage: nsbox %s)", strings.SplitN(dhcpUsage, "\n", 2)[0])
	}
	dev = fs.Arg(0)
	if err := rtnl.ValidateLinkName(dev); err != nil {
		return f, "", fs, usagef("dhcp: %s", linkNameProblem(dev, err))
	}
	switch {
	case f.hostDNS && netnsName != "":
		return f, "", fs, usagef("dhcp %s: --host-dns is for the host namespace only (with -n the DNS goes to /etc/netns/%s/resolv.conf)", dev, netnsName)
	case f.hostDNS && f.noDNS:
		return f, "", fs, usagef("dhcp %s: --host-dns and --no-dns contradict each other", dev)
	case f.timeout < 0 || f.retry <= 0:
		return f, "", fs, usagef("dhcp %s: --timeout and --retry must be positive", dev)
	case f.release && f.once:
		return f, "", fs, usagef("dhcp %s: --release applies to the foreground client, not --once", dev)
	case f.releaseHeld && f.stop:
		return f, "", fs, usagef("dhcp %s: -r and -x contradict each other", dev)
	case (f.releaseHeld || f.stop) && (f.once || f.daemon):
		return f, "", fs, usagef("dhcp %s: -r and -x stop a client; they do not go with --once or --daemon", dev)
	case f.daemon && f.once:
		return f, "", fs, usagef("dhcp %s: --daemon and --once contradict each other", dev)
	case f.pidFile == "" && fs.Changed("pid-file"):
		return f, "", fs, usagef("dhcp %s: --pid-file: empty path", dev)
	case f.leaseFile == "" && fs.Changed("lease-file"):
		return f, "", fs, usagef("dhcp %s: --lease-file: empty path", dev)
	}
	if (f.once || f.daemon) && f.timeout == 0 {
		f.timeout = 30 * time.Second
	}
	return f, dev, fs, nil
}

func runDHCP(ctx context.Context, e *env, args []string) (err error) {
	f, dev, fs, err := parseDHCPArgs(e.netns, args)
	if err != nil {
		return err
	}
	if f.help {
		fmt.Fprintf(e.stdout, "usage: nsbox [-n NAME] [-j] %s\n\n%s", dhcpUsage, fs.FlagUsages())
		return nil
	}

	tr := newPhaseTrace(e.stderr)
	defer tr.mark("done")
	ns, conn, closeConn, err := e.ownConn("dhcp", dev)
	if err != nil {
		return err
	}
	defer closeConn()
	tr.mark("netlink dialled")
	pidFile := f.pidFile
	if pidFile == "" {
		key, err := nsKey(ns)
		if err != nil {
			return fmt.Errorf("dhcp %s: %w", dev, err)
		}
		pidFile = filepath.Join(dhcpRunDir, key+"-"+dev+".pid")
	}
	leaseFile := f.leaseFile
	if leaseFile == "" {
		leaseFile = dhcpclient.DefaultLeaseFile(strings.ReplaceAll(e.netns, "/", "_"), dev)
	}
	if f.releaseHeld || f.stop {
		return stopDHCP(ctx, e, ns, conn, dev, f.releaseHeld, pidFile, leaseFile, f.resolvConf(e))
	}
	link, err := conn.LinkByName(ctx, dev)
	if err != nil {
		if errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("dhcp %s: no such device%s", dev, inNS(e.netns))
		}
		return fmt.Errorf("dhcp %s: %w", dev, err)
	}
	if len(link.HardwareAddr) != 6 {
		return fmt.Errorf("dhcp %s: not an Ethernet device (hardware address %q)", dev, link.HardwareAddr)
	}
	if link.RawFlags&unix.IFF_UP == 0 {
		if err := conn.SetUp(ctx, dev); err != nil {
			return fmt.Errorf("dhcp %s: bring up: %w", dev, err)
		}
		// Leave no partial state: a failed run puts the link down again.
		defer func() {
			if err != nil {
				_ = conn.SetDown(context.Background(), dev)
			}
		}()
		// A DISCOVER sent before the carrier is up is lost and costs a
		// whole retry delay: wait (up to 2 s) until the link runs.
		for i := 0; i < 200; i++ {
			l, lerr := conn.LinkByName(ctx, dev)
			if lerr != nil || l.RawFlags&unix.IFF_RUNNING != 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("dhcp %s: interrupted", dev)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if f.daemon && os.Getenv(dhcpDaemonEnv) == "" {
		return daemonize(e, args, dev, pidFile)
	}
	// One client per device: the pid file is locked for the client's life
	// (-r and -x find it there).
	lock, err := lockPid(pidFile)
	if err != nil {
		var el *errLocked
		if errors.As(err, &el) {
			return fmt.Errorf("dhcp %s: a client already runs for %s as pid %d (stop it with nsbox dhcp -x %s)", dev, dev, el.pid, dev)
		}
		return fmt.Errorf("dhcp %s: %w", dev, err)
	}
	defer lock.release()
	if f.pidFile == "" { // only nsbox's own folder: the user's may hold others' pid files
		pruneStale(dhcpRunDir, pidFile)
	}
	tr.mark("pid file locked")
	pc, err := dhcpclient.Listen(ns, dev)
	if err != nil {
		return fmt.Errorf("dhcp %s: %w", dev, err)
	}
	applier := &dhcpclient.RtnlApplier{Conn: conn, Dev: dev, NoRoute: f.noRoute}
	applier.ResolvConf = f.resolvConf(e)
	opts := []dhcpclient.Option{
		dhcpclient.WithApplier(applier), dhcpclient.WithLeaseFile(leaseFile),
		dhcpclient.WithNetns(e.netns), dhcpclient.WithFirstRetry(f.retry),
		dhcpclient.WithMaxRetry(max(64*time.Second, f.retry)),
	}
	if f.hostname != "" {
		opts = append(opts, dhcpclient.WithHostname(f.hostname))
	}
	if f.arpCheck {
		opts = append(opts, dhcpclient.WithProber(&dhcpclient.ARPProber{NS: ns, Dev: dev, HW: link.HardwareAddr}))
	}
	if f.verbose {
		opts = append(opts, dhcpclient.WithLogf(func(format string, a ...any) {
			fmt.Fprintf(e.stderr, "nsbox: "+format+"\n", a...)
		}))
	}
	cl, err := dhcpclient.New(dev, link.HardwareAddr, pc, opts...)
	if err != nil {
		pc.Close()
		return fmt.Errorf("dhcp %s: %w", dev, err)
	}
	defer func() { cl.Close(); tr.mark("client closed") }()
	tr.mark("packet socket open")

	actx, cancel := ctx, context.CancelFunc(func() {})
	if f.timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, f.timeout)
	}
	l, err := cl.Acquire(actx)
	cancel()
	tr.mark("lease acquired and applied")
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("dhcp %s: interrupted before a lease came", dev)
		case errors.Is(err, dhcpclient.ErrNoOffer) && errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("dhcp %s: no offer in %s", dev, f.timeout)
		case errors.Is(err, dhcpclient.ErrNoLease) && errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("dhcp %s: offers but no lease in %s", dev, f.timeout)
		}
		return fmt.Errorf("dhcp %s: %w", dev, err)
	}
	if err := printLease(e, l); err != nil {
		return err
	}
	if f.once {
		return nil
	}
	if f.daemon {
		detached()
	}
	// SIGINT/SIGTERM end Run, SIGUSR1 too after which the lease is
	// released (nsbox dhcp -r); a lease lost meanwhile (the client is
	// looking for a new one) is a normal stop too.
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, unix.SIGUSR1)
	defer signal.Stop(usr1)
	releaseAsked := make(chan bool, 1)
	go func() {
		select {
		case <-usr1:
			releaseAsked <- true
			rcancel()
		case <-rctx.Done():
			releaseAsked <- false
		}
	}()
	if err := cl.Run(rctx); err != nil && rctx.Err() == nil {
		return fmt.Errorf("dhcp %s: %w", dev, err)
	}
	rcancel()
	if <-releaseAsked || f.release {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := cl.Release(rctx); err != nil && !errors.Is(err, dhcpclient.ErrNoLeaseHeld) {
			return fmt.Errorf("dhcp %s: %w", dev, err)
		}
	}
	return nil
}

// resolvConf is the DNS file of the lease: /etc/netns/NAME/resolv.conf
// with -n NAME, the host's only with --host-dns, none with --no-dns or a
// namespace given by path (it has no /etc/netns/NAME).
func (f *dhcpFlags) resolvConf(e *env) string {
	switch {
	case f.noDNS, strings.Contains(e.netns, "/"):
		return ""
	case e.netns != "":
		return dhcpclient.ResolvConfPath(e.netns)
	case f.hostDNS:
		return "/etc/resolv.conf"
	}
	return ""
}

func inNS(ns string) string {
	if ns == "" {
		return ""
	}
	return " in netns " + ns
}

// printLease writes the lease as JSON (-j: an array holding one object, as
// every -j output of nsbox) or as one line of text.
func printLease(e *env, l *dhcpclient.Lease) error {
	if e.json {
		b, err := json.Marshal([]*dhcpclient.Lease{l})
		if err != nil {
			return fmt.Errorf("dhcp %s: %w", l.Interface, err)
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	var extra []string
	if l.Router.IsValid() {
		extra = append(extra, "router "+l.Router.String())
	}
	for _, r := range l.Routes {
		gw := "dev " + l.Interface
		if r.Gateway.IsValid() {
			gw = "via " + r.Gateway.String()
		}
		extra = append(extra, "route "+r.Dst.String()+" "+gw)
	}
	if len(l.DNS) > 0 {
		s := make([]string, len(l.DNS))
		for i, d := range l.DNS {
			s[i] = d.String()
		}
		extra = append(extra, "dns "+strings.Join(s, ","))
	}
	if l.MTU > 0 {
		extra = append(extra, fmt.Sprintf("mtu %d", l.MTU))
	}
	lease := "infinite"
	if !l.Infinite() {
		lease = l.LeaseTime.String()
	}
	_, err := fmt.Fprintf(e.stdout, "%s: %s from %s, lease %s %s\n", l.Interface, l.Addr, l.Server, lease, strings.Join(extra, " "))
	return err
}

// parseAddrList parses IP[,IP...].
func parseAddrList(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, p := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(p))
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%q is not an IPv4 address", p)
		}
		out = append(out, a)
	}
	return out, nil
}

// printable escapes control characters (a newline in an argument would
// otherwise break the one-line error rule).
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
