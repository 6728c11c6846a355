package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/nsnet"
)

// sandboxNet is the network of `run --net --bridge`: its configuration and,
// once the child exists, its attachment.
type sandboxNet struct {
	cfg nsnet.Config
	ns  *netns.Handle // the bridge's namespace (-n NAME), or nil

	// resolv is the file bound over the sandbox's /etc/resolv.conf (""
	// for none); it is removed when the sandbox ends.
	resolv string

	mu  sync.Mutex
	att *nsnet.Attachment
}

// resolvDir holds the resolv.conf files of running sandboxes.
const resolvDir = "/run/nsbox/resolv"

// networkConfig builds the sandbox network of o, checking the bridge before
// anything is spawned. bridgeNS is the global -n NAME: the namespace that
// holds the bridge ("" for nsbox's own). It returns nil without --bridge.
func (o *runOptions) networkConfig(ctx context.Context, bridgeNS string) (*sandboxNet, error) {
	if o.bridge == "" {
		return nil, nil
	}
	sn := &sandboxNet{cfg: nsnet.Config{Bridge: o.bridge, IfName: o.ifname, DHCP: o.dhcp, Hostname: o.hostname}}
	if o.addr != "" {
		p, err := netip.ParsePrefix(o.addr)
		if err != nil {
			return nil, usagef("run: --addr %q: not a CIDR address", o.addr)
		}
		sn.cfg.Addr = p
	}
	if o.gateway != "" {
		gw, err := netip.ParseAddr(o.gateway)
		if err != nil {
			return nil, usagef("run: --gateway %q: not an IP address", o.gateway)
		}
		sn.cfg.Gateway = gw
	}
	if o.dns != "" {
		ds, err := parseDNSList(o.dns)
		if err != nil {
			return nil, usagef("run: --dns: %s", printable(err.Error()))
		}
		sn.cfg.DNS = ds
	}
	if err := sn.cfg.Validate(); err != nil {
		return nil, usagef("run: %v", err)
	}
	if bridgeNS != "" {
		h, err := netns.Open(bridgeNS)
		if err != nil {
			return nil, &exitError{code: exitSetupFailed, err: fmt.Errorf("run: -n %s: %w", bridgeNS, err)}
		}
		sn.ns = h
		sn.cfg.BridgeNS = h
	}
	br, err := nsnet.CheckBridge(ctx, &sn.cfg)
	if err != nil {
		sn.close(ctx)
		return nil, &exitError{code: exitSetupFailed, err: fmt.Errorf("run: %w", err)}
	}
	sn.cfg.Checked = br // Attach reuses its connection and index
	return sn, nil
}

// hook wires the network into spec: the payload starts only once its
// interface is configured. With DHCP or --dns, the sandbox gets a mount
// namespace of its own in which a file naming its DNS servers is bound
// over /etc/resolv.conf (the host's stays as it is).
func (sn *sandboxNet) hook(ctx context.Context, spec *nsclone.Spec) error {
	if sn.cfg.DHCP || len(sn.cfg.DNS) > 0 {
		if _, err := os.Stat("/etc/resolv.conf"); err == nil {
			f, err := newResolvFile()
			if err != nil {
				return &exitError{code: exitSetupFailed, err: fmt.Errorf("run: %w", err)}
			}
			sn.resolv = f
			spec.Namespaces |= nsclone.Mnt
			spec.Mounts = append(spec.Mounts, nsclone.Mount{Source: f, Target: "/etc/resolv.conf", Flags: unix.MS_BIND})
		}
	}
	spec.BeforeExec = func(pid int) error {
		att, err := nsnet.Attach(ctx, &sn.cfg, pid)
		if err != nil {
			return err
		}
		if sn.resolv != "" {
			// Written in place: the child binds this very file after
			// the hook returns.
			if err := os.WriteFile(sn.resolv, att.ResolvConf(), 0o644); err != nil {
				_ = att.Close(context.WithoutCancel(ctx))
				return fmt.Errorf("nsnet: resolv.conf: %w", err)
			}
		}
		sn.mu.Lock()
		sn.att = att
		sn.mu.Unlock()
		return nil
	}
	return nil
}

// close releases the lease, lets the kernel remove the veth with the
// sandbox's namespace, and closes the bridge's namespace handle. It is safe
// on a nil sandboxNet.
func (sn *sandboxNet) close(ctx context.Context) error {
	if sn == nil {
		return nil
	}
	sn.mu.Lock()
	att := sn.att
	sn.att = nil
	sn.mu.Unlock()
	// The payload has ended: the kernel removes the veth with its
	// namespace once the lease's sockets are closed.
	err := att.Detach(context.WithoutCancel(ctx))
	if sn.resolv != "" {
		_ = os.Remove(sn.resolv)
		sn.resolv = ""
	}
	if sn.cfg.Checked != nil {
		sn.cfg.Checked.Close()
		sn.cfg.Checked = nil
	}
	if sn.ns != nil {
		sn.ns.Close()
		sn.ns = nil
	}
	return err
}

// newResolvFile creates an empty file in resolvDir for one sandbox, named
// after nsbox's pid; files of nsbox processes that no longer exist (killed
// with SIGKILL) are removed on the way.
func newResolvFile() (string, error) {
	if err := os.MkdirAll(resolvDir, 0o755); err != nil {
		return "", fmt.Errorf("resolv.conf: %w", err)
	}
	if ents, err := os.ReadDir(resolvDir); err == nil {
		for _, e := range ents {
			pid, _, ok := strings.Cut(e.Name(), "-")
			if n, err := strconv.Atoi(pid); ok && err == nil && n > 0 && unix.Kill(n, 0) == unix.ESRCH {
				_ = os.Remove(filepath.Join(resolvDir, e.Name()))
			}
		}
	}
	f, err := os.CreateTemp(resolvDir, strconv.Itoa(os.Getpid())+"-*.conf")
	if err != nil {
		return "", fmt.Errorf("resolv.conf: %w", err)
	}
	name := f.Name()
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(name)
		return "", fmt.Errorf("resolv.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("resolv.conf: %w", err)
	}
	return name, nil
}

// parseDNSList parses IP[,IP...] (IPv4 or IPv6).
func parseDNSList(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, p := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(p))
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address", p)
		}
		out = append(out, a)
	}
	return out, nil
}
