package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/dhcpserver"
	"github.com/nsbox/nsbox/rtnl"
)

const dhcpdUsage = `dhcpd DEV --range FROM-TO [--router IP] [--dns IP[,IP]] [--lease-time DUR] [--lease-file FILE] [-v]
     serve DHCP on DEV (which needs an IPv4 address in the range's subnet)
     until SIGINT/SIGTERM`

// dhcpdLeaseDir holds the server lease files when --lease-file is not given.
const dhcpdLeaseDir = "/var/lib/nsbox/dhcpd"

// dhcpdRunDir holds the pid files that lock a device of a namespace.
const dhcpdRunDir = "/run/nsbox/dhcpd"

func dhcpdCommand() *command {
	return &command{name: "dhcpd", usage: dhcpdUsage, run: runDHCPD, noBatch: true}
}

// dhcpdArgs are the checked arguments of nsbox dhcpd.
type dhcpdArgs struct {
	dev       string
	from, to  netip.Addr
	opts      []dhcpserver.Option
	leaseFile string // "" for the default
	verbose   bool
	help      bool
	usage     string // the flags' help text
}

// parseDHCPDArgs checks the arguments of nsbox dhcpd; every error is a usage
// error. It touches nothing, so it is fuzzed.
func parseDHCPDArgs(args []string) (a dhcpdArgs, err error) {
	fs := pflag.NewFlagSet("dhcpd", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rng := fs.String("range", "", "pool FROM-TO (inclusive), in DEV's subnet")
	router := fs.String("router", "", "router (option 3) given to clients")
	dns := fs.String("dns", "", "DNS servers (option 6), comma-separated")
	leaseTime := fs.Duration("lease-time", time.Hour, "lease time (option 51)")
	fs.StringVar(&a.leaseFile, "lease-file", "", "lease file (default "+dhcpdLeaseDir+"/netns-NAME-DEV.leases)")
	fs.BoolVarP(&a.verbose, "verbose", "v", false, "log every decision to stderr")
	fs.BoolVarP(&a.help, "help", "h", false, "show this help")
	a.usage = fs.FlagUsages()
	if err := fs.Parse(args); err != nil {
		return a, usagef("dhcpd: %s", printable(err.Error()))
	}
	if a.help {
		return a, nil
	}
	if err := refuseEmptyFlags("dhcpd", fs); err != nil {
		return a, err
	}
	if fs.NArg() != 1 {
		return a, usagef("dhcpd: need exactly one device (usage: nsbox %s)", strings.SplitN(dhcpdUsage, "\n", 2)[0])
	}
	a.dev = fs.Arg(0)
	dev := a.dev
	if err := rtnl.ValidateLinkName(dev); err != nil {
		return a, usagef("dhcpd: %s", linkNameProblem(dev, err))
	}
	from, to, ok := strings.Cut(*rng, "-")
	fromA, err1 := netip.ParseAddr(from)
	toA, err2 := netip.ParseAddr(to)
	if !ok || err1 != nil || err2 != nil || !fromA.Is4() || !toA.Is4() {
		return a, usagef("dhcpd %s: --range %q: want FROM-TO with two IPv4 addresses", dev, *rng)
	}
	a.from, a.to = fromA, toA
	if *router != "" {
		r, err := netip.ParseAddr(*router)
		if err != nil || !r.Is4() {
			return a, usagef("dhcpd %s: --router %q: not an IPv4 address", dev, *router)
		}
		a.opts = append(a.opts, dhcpserver.WithRouter(r))
	}
	if *dns != "" {
		ds, err := parseAddrList(*dns)
		if err != nil {
			return a, usagef("dhcpd %s: --dns: %s", dev, printable(err.Error()))
		}
		a.opts = append(a.opts, dhcpserver.WithDNS(ds...))
	}
	if *leaseTime < time.Second || *leaseTime/time.Second >= 0xffffffff {
		return a, usagef("dhcpd %s: --lease-time %s: must be between 1s and 136 years", dev, *leaseTime)
	}
	a.opts = append(a.opts, dhcpserver.WithLeaseTime(*leaseTime))
	return a, nil
}

func runDHCPD(ctx context.Context, e *env, args []string) error {
	a, err := parseDHCPDArgs(args)
	if err != nil {
		return err
	}
	if a.help {
		fmt.Fprintf(e.stdout, "usage: nsbox [-n NAME] %s\n\n%s", dhcpdUsage, a.usage)
		return nil
	}
	dev, fromA, toA, opts := a.dev, a.from, a.to, a.opts
	file := a.leaseFile
	if file == "" {
		ns := "host"
		if e.netns != "" {
			ns = "netns-" + strings.ReplaceAll(e.netns, "/", "_")
		}
		file = filepath.Join(dhcpdLeaseDir, ns+"-"+dev+".leases")
	}
	opts = append(opts, dhcpserver.WithLeaseFile(file))
	if a.verbose {
		opts = append(opts, dhcpserver.WithLogf(func(format string, a ...any) {
			fmt.Fprintf(e.stderr, "nsbox: dhcpd "+dev+": "+format+"\n", a...)
		}))
	}

	ns, conn, closeConn, err := e.ownConn("dhcpd", dev)
	if err != nil {
		return err
	}
	defer closeConn()
	addrs, err := conn.Addrs(ctx, dev)
	if err != nil {
		if errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("dhcpd %s: no such device%s", dev, inNS(e.netns))
		}
		return fmt.Errorf("dhcpd %s: %w", dev, err)
	}
	// One server per device and namespace (as dnsmasq's "Address in
	// use"), and one per lease file.
	key, err := nsKey(ns)
	if err != nil {
		return fmt.Errorf("dhcpd %s: %w", dev, err)
	}
	devLock, err := lockPid(filepath.Join(dhcpdRunDir, key+"-"+dev+".pid"))
	if err != nil {
		var el *errLocked
		if errors.As(err, &el) {
			return fmt.Errorf("dhcpd %s: already served by pid %d", dev, el.pid)
		}
		return fmt.Errorf("dhcpd %s: %w", dev, err)
	}
	defer devLock.release()
	pruneStale(dhcpdRunDir, devLock.path)
	fileLock, err := lockPid(file + ".lock")
	if err != nil {
		var el *errLocked
		if errors.As(err, &el) {
			return fmt.Errorf("dhcpd %s: lease file %s: in use by pid %d", dev, file, el.pid)
		}
		return fmt.Errorf("dhcpd %s: lease file: %w", dev, err)
	}
	defer fileLock.release()
	var self netip.Prefix
	for _, a := range addrs {
		if a.Prefix.Addr().Is4() && a.Prefix.Masked().Contains(fromA) {
			self = a.Prefix
			break
		}
	}
	if !self.IsValid() {
		return fmt.Errorf("dhcpd %s: no IPv4 address on %s in the subnet of %s (add one with nsbox addr add)", dev, dev, fromA)
	}
	srv, err := dhcpserver.New(self, fromA, toA, opts...)
	if err != nil {
		return fmt.Errorf("dhcpd %s: %w", dev, err)
	}
	pc, err := dhcpserver.ListenUDP(ns, dev)
	if err != nil {
		return fmt.Errorf("dhcpd %s: %w", dev, err)
	}
	fmt.Fprintf(e.stdout, "dhcpd %s: serving %s-%s as %s, leases in %s\n", dev, fromA, toA, self, file)
	if err := srv.Serve(ctx, pc); err != nil {
		return fmt.Errorf("dhcpd %s: %w", dev, err)
	}
	return nil
}
