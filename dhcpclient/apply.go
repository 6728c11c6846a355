package dhcpclient

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/atomicfile"
	"github.com/nsbox/nsbox/rtnl"
)

// ResolvConfPath is where the DNS servers of a lease in the named namespace
// ns go: /etc/netns/NS/resolv.conf, which `ip netns exec` and `nsbox netns
// exec` bind over /etc/resolv.conf.
func ResolvConfPath(ns string) string {
	return filepath.Join("/etc/netns", ns, "resolv.conf")
}

// RtnlApplier applies leases over an rtnl connection to the interface's
// namespace. Its zero-valued fields mean: routes are installed, no DNS file.
type RtnlApplier struct {
	Conn *rtnl.Conn
	Dev  string
	// NoRoute skips the default route (option 3) and the classless
	// routes (121).
	NoRoute bool
	// ResolvConf is the file the DNS servers are written to; "" writes
	// none. Callers set ResolvConfPath(ns) for a named namespace and never
	// the host's /etc/resolv.conf unless the user asked for it.
	ResolvConf string
	// Now is the time source for the address lifetime (nil: time.Now).
	Now func() time.Time
}

func (a *RtnlApplier) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// routes returns the routes l asks for: the classless routes when present
// (RFC 3442: they override option 3), else a default route via the router.
func routes(l *Lease, dev string) []rtnl.Route {
	var out []rtnl.Route
	if len(l.Routes) > 0 {
		for _, r := range l.Routes {
			rr := rtnl.Route{Dst: r.Dst, Gateway: r.Gateway, Dev: dev, Src: l.Addr.Addr()}
			if r.Dst.Bits() == 0 {
				rr.Dst = netip.Prefix{} // rtnl's default route
			}
			out = append(out, rr)
		}
		return out
	}
	if l.Router.IsValid() {
		out = append(out, rtnl.Route{Gateway: l.Router, Dev: dev, Src: l.Addr.Addr()})
	}
	return out
}

// Apply sets the MTU, replaces the address with the lease's remaining time
// as its valid lifetime (so the kernel drops it if nsbox dies), installs the
// routes and writes the DNS file.
func (a *RtnlApplier) Apply(ctx context.Context, prev, l *Lease) error {
	if l.MTU > 0 {
		if err := a.Conn.SetMTU(ctx, a.Dev, uint32(l.MTU)); err != nil {
			return err
		}
	}
	if prev != nil && prev.Addr != l.Addr {
		if err := a.Remove(ctx, prev); err != nil {
			return err
		}
	}
	var opts *rtnl.AddrOptions
	if !l.Infinite() {
		left := l.Remaining(a.now()).Round(time.Second)
		if left < time.Second {
			return fmt.Errorf("lease of %s already expired", l.Addr)
		}
		opts = &rtnl.AddrOptions{ValidLifetime: left, PreferredLifetime: left}
	}
	if err := a.Conn.ReplaceAddr(ctx, a.Dev, l.Addr, opts); err != nil {
		return err
	}
	if !a.NoRoute {
		for _, r := range routes(l, a.Dev) {
			if err := a.Conn.ReplaceRoute(ctx, r); err != nil {
				return err
			}
		}
	}
	if a.ResolvConf != "" && (len(l.DNS) > 0 || l.Domain != "") {
		var b strings.Builder
		fmt.Fprintf(&b, "# written by nsbox dhcp for %s (lease from %s)\n", a.Dev, l.Server)
		if l.Domain != "" {
			fmt.Fprintf(&b, "search %s\n", l.Domain)
		}
		for _, d := range l.DNS {
			fmt.Fprintf(&b, "nameserver %s\n", d)
		}
		// A renewal with the same servers leaves the file alone.
		if old, err := os.ReadFile(a.ResolvConf); err != nil || string(old) != b.String() {
			if err := atomicfile.WriteFile(a.ResolvConf, []byte(b.String()), 0o644); err != nil {
				return fmt.Errorf("dns: %w", err)
			}
		}
	}
	return nil
}

// Remove deletes the lease's routes, its address and the DNS file. Objects
// already gone are not errors.
func (a *RtnlApplier) Remove(ctx context.Context, l *Lease) error {
	var errs []error
	if !a.NoRoute {
		for _, r := range routes(l, a.Dev) {
			if err := a.Conn.DelRoute(ctx, r); err != nil && !gone(err) {
				errs = append(errs, err)
			}
		}
	}
	if err := a.Conn.DelAddr(ctx, a.Dev, l.Addr); err != nil && !gone(err) {
		errs = append(errs, err)
	}
	if a.ResolvConf != "" {
		if err := os.Remove(a.ResolvConf); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV)
}
