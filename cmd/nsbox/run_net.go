package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/nsnet"
)

// sandboxNet is the network of `run --net --bridge`: its configuration and,
// once the child exists, its attachment.
type sandboxNet struct {
	cfg nsnet.Config
	ns  *netns.Handle // the bridge's namespace (-n NAME), or nil

	mu  sync.Mutex
	att *nsnet.Attachment
}

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
	if err := nsnet.CheckBridge(ctx, &sn.cfg); err != nil {
		sn.close(ctx)
		return nil, &exitError{code: exitSetupFailed, err: fmt.Errorf("run: %w", err)}
	}
	return sn, nil
}

// hook wires the network into spec: the payload starts only once its
// interface is configured.
func (sn *sandboxNet) hook(ctx context.Context, spec *nsclone.Spec) {
	spec.BeforeExec = func(pid int) error {
		att, err := nsnet.Attach(ctx, &sn.cfg, pid)
		if err != nil {
			return err
		}
		sn.mu.Lock()
		sn.att = att
		sn.mu.Unlock()
		return nil
	}
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
	if sn.ns != nil {
		sn.ns.Close()
		sn.ns = nil
	}
	return err
}
