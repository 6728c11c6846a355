package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/poolwire"
	"github.com/nsbox/nsbox/nat"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/nsnet"
	"github.com/nsbox/nsbox/pool"
)

// This file holds run's --pool, --pool-timeout, --nat and --publish: the
// network a sandbox takes from a warm pool, and the nftables entries
// (package nat) it holds while it runs.

// publishSpec is one --publish [IP:]HOSTPORT:PORT[/tcp|/udp].
type publishSpec struct {
	hostIP         netip.Addr
	hostPort, port uint16
	proto          string
}

// parsePublish parses a --publish value; the error names what is wrong.
func parsePublish(s string) (publishSpec, error) {
	var p publishSpec
	bad := func(why string) (publishSpec, error) {
		return p, fmt.Errorf("--publish %q: %s (want [IP:]HOSTPORT:PORT[/tcp|/udp])", s, why)
	}
	spec, proto, hasProto := strings.Cut(s, "/")
	p.proto = "tcp"
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return bad("protocol is neither tcp nor udp")
		}
		p.proto = proto
	}
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 2:
	case 3:
		a, err := netip.ParseAddr(parts[0])
		if err != nil || !a.Is4() {
			return bad("IP is not an IPv4 address")
		}
		p.hostIP = a
		parts = parts[1:]
	default:
		return bad("malformed")
	}
	for i, dst := range []*uint16{&p.hostPort, &p.port} {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return bad(fmt.Sprintf("%q is not a port number", parts[i]))
		}
		if n < 1 || n > 65535 {
			return bad(fmt.Sprintf("port %d is outside 1-65535", n))
		}
		*dst = uint16(n)
	}
	return p, nil
}

// checkPoolFlags validates --pool, --pool-timeout, --nat and --publish
// against the other network flags.
func (o *runOptions) checkPoolFlags() error {
	if o.pool != "" {
		if err := pool.ValidateName(o.pool); err != nil {
			return usagef("run: --pool: %v", err)
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"--bridge", o.bridge != ""}, {"--netns", o.netns != ""}, {"--nat", o.nat}} {
			if f.set {
				if f.name == "--nat" {
					return usagef("run: --nat goes with --bridge (start the pool with --nat instead)")
				}
				return usagef("run: --pool and %s exclude each other", f.name)
			}
		}
		if o.poolTimeout < 0 {
			return usagef("run: --pool-timeout %s: want a duration of 0 or more", o.poolTimeout)
		}
	} else if o.poolTimeout != defaultPoolTimeout {
		return usagef("run: --pool-timeout needs --pool")
	}
	if o.nat && o.bridge == "" {
		return usagef("run: --nat needs --bridge")
	}
	if len(o.publish) > 0 && o.bridge == "" && o.pool == "" {
		return usagef("run: --publish needs --bridge or --pool")
	}
	return nil
}

const defaultPoolTimeout = 5 * time.Second

// runOwnerName is what the nat entries of run (--nat, --publish) call their
// owner; the C fast path's --publish (csrc/nft_fast.c) writes it through
// csrc/nsbox_gen.h.
const runOwnerName = "nsbox run"

// poolReplyMargin is how much longer than the pool's wait a claim waits for
// the pool's reply (the Go path here and run's C fast path, through
// csrc/nsbox_gen.h).
const poolReplyMargin = 10 * time.Second

// runNet is what run holds for --pool, --nat and --publish while the
// sandbox runs; close undoes it.
type runNet struct {
	o      *runOptions
	stderr io.Writer
	slot   *pool.Slot
	resolv string // the resolv.conf file bound into the sandbox, removed at close

	table     *nat.Table
	owner     nat.Owner
	masq      *nat.Masquerade
	published []nat.Publish
	// publishing, when not nil, is closed once the ports of a static
	// --addr, published while the sandbox is being cloned and wired, are
	// (publishErr tells whether they were); close waits for it.
	publishing chan struct{}
	publishErr error
}

func (rn *runNet) verbosef(format string, args ...any) {
	if rn.o.verbose {
		fmt.Fprintf(rn.stderr, "nsbox: run: "+format+"\n", args...)
	}
}

// setupRunNet prepares --pool, --nat and --publish around spec; sn is the
// --bridge network (nil without it), whose hook it extends. Errors are exit
// 125 and leave nothing behind.
func (o *runOptions) setupRunNet(ctx context.Context, e *env, spec *nsclone.Spec, sn **sandboxNet) (rn *runNet, err error) {
	if o.pool == "" && !o.nat && len(o.publish) == 0 {
		return nil, nil
	}
	fail := func(err error) error { return &exitError{code: exitSetupFailed, err: fmt.Errorf("run: %w", err)} }
	var pubs []publishSpec
	for _, s := range o.publish {
		p, err := parsePublish(s)
		if err != nil {
			return nil, fail(err)
		}
		pubs = append(pubs, p)
	}
	rn = &runNet{o: o, stderr: e.stderr}
	defer func() {
		if err != nil {
			rn.close(ctx)
			rn = nil
		}
	}()
	if rn.owner, err = nat.Self(runOwnerName); err != nil {
		return rn, fail(err)
	}
	if o.pool != "" {
		if err := rn.claim(ctx, spec, sn); err != nil {
			return rn, fail(err)
		}
	}
	var bridgeNS *netns.Handle
	bridge := o.bridge
	if rn.slot != nil {
		bridgeNS, bridge = rn.slot.BridgeNS(), rn.slot.Bridge()
	} else if *sn != nil {
		bridgeNS, bridge = (*sn).ns, (*sn).cfg.Bridge
	}
	if o.nat || len(pubs) > 0 {
		if rn.table, err = nat.Open(bridgeNS); err != nil {
			return rn, fail(err)
		}
	}
	if o.nat {
		m := nat.Masquerade{Bridge: bridge, Owner: rn.owner}
		if err := rn.table.AddMasquerade(ctx, m); err != nil {
			return rn, fail(err)
		}
		rn.masq = &m
	}
	if len(pubs) == 0 {
		return rn, nil
	}
	publish := func(addr netip.Addr) error {
		for _, p := range pubs {
			np := nat.Publish{Bridge: bridge, Proto: p.proto, HostIP: p.hostIP, HostPort: p.hostPort, Addr: addr, Port: p.port, Owner: rn.owner}
			if err := rn.table.Publish(ctx, np); err != nil {
				return err
			}
			rn.published = append(rn.published, np)
		}
		return nil
	}
	if rn.slot != nil {
		if err := publish(rn.slot.Addr().Addr()); err != nil {
			return rn, fail(err)
		}
		return rn, nil
	}
	before, s := spec.BeforeExec, *sn
	if !s.cfg.DHCP && s.cfg.Addr.IsValid() {
		// --bridge --addr: the address is known now, so the ports are
		// published while the sandbox is cloned and its veth wired (the
		// nft batch and the clone overlap on another core), and the
		// payload starts once both are done.
		rn.publishing = make(chan struct{})
		go func() {
			defer close(rn.publishing)
			rn.publishErr = publish(s.cfg.Addr.Addr())
		}()
		spec.BeforeExec = func(pid int) error {
			if before != nil {
				if err := before(pid); err != nil {
					return err
				}
			}
			<-rn.publishing
			return rn.publishErr
		}
		return rn, nil
	}
	// --bridge --dhcp: the address is known once the network is wired,
	// before the payload's first instruction.
	spec.BeforeExec = func(pid int) error {
		if before != nil {
			if err := before(pid); err != nil {
				return err
			}
		}
		s.mu.Lock()
		att := s.att
		s.mu.Unlock()
		if att == nil || !att.Addr.IsValid() {
			return errors.New("--publish: the sandbox has no address")
		}
		return publish(att.Addr.Addr())
	}
	return rn, nil
}

// claim takes a namespace from the pool (or, when it stays empty and leases
// by DHCP, wires one itself like --bridge BR --dhcp) and makes spec join it.
func (rn *runNet) claim(ctx context.Context, spec *nsclone.Spec, sn **sandboxNet) error {
	o := rn.o
	c, err := pool.NewClient(o.pool)
	if err != nil {
		return err
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, o.poolTimeout+poolReplyMargin)
	slot, err := c.Claim(cctx, o.poolTimeout)
	cancel()
	var empty *pool.EmptyError
	if errors.As(err, &empty) {
		if !empty.DHCP {
			empty.BridgeNS.Close()
			return err
		}
		rn.verbosef("pool %s: nothing ready within %s: wiring the namespace itself (--bridge %s --dhcp)", o.pool, o.poolTimeout, empty.Bridge)
		s := &sandboxNet{cfg: nsnet.Config{Bridge: empty.Bridge, BridgeNS: empty.BridgeNS, IfName: empty.IfName,
			DHCP: true, DHCPTimeout: o.dhcpTimeout}, ns: empty.BridgeNS}
		*sn = s
		if err := s.hook(ctx, spec); err != nil {
			return err
		}
		spec.Namespaces |= nsclone.Net
		spec.ParentDeathSignal = unix.SIGKILL
		return nil
	}
	if err != nil {
		return err
	}
	rn.slot = slot
	rn.verbosef("pool %s: took %s on %s in %s", o.pool, slot.Addr(), slot.Bridge(), time.Since(start).Round(time.Microsecond))
	spec.Namespaces &^= nsclone.Net
	if spec.Join == nil {
		spec.Join = map[nsclone.Namespace]string{}
	}
	spec.Join[nsclone.Net] = slot.Path()
	spec.ParentDeathSignal = unix.SIGKILL
	if conf := slot.ResolvConf(); conf != nil && spec.Namespaces&nsclone.Mnt != 0 {
		path, err := newResolvFile() // run_net.go's, swept when its run is gone
		if err != nil {
			return err
		}
		rn.resolv = path
		if err := os.WriteFile(path, conf, 0o644); err != nil {
			return fmt.Errorf("resolv.conf: %w", err)
		}
		spec.Mounts = append(spec.Mounts, nsclone.Mount{Source: path, Target: poolwire.ResolvTarget, Flags: unix.MS_BIND})
	}
	return nil
}

// close removes the published ports and the masquerade, releases the slot
// (the pool destroys the namespace) and removes the resolv.conf file. It is
// safe on a nil runNet.
func (rn *runNet) close(ctx context.Context) error {
	if rn == nil {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	if rn.publishing != nil {
		<-rn.publishing // rn.published is final
	}
	var errs []error
	if rn.table != nil {
		for _, p := range rn.published {
			if err := rn.table.Unpublish(ctx, p); err != nil && !errors.Is(err, nat.ErrNotFound) {
				errs = append(errs, err)
			}
		}
		if rn.masq != nil {
			if err := rn.table.RemoveMasquerade(ctx, *rn.masq); err != nil && !errors.Is(err, nat.ErrNotFound) {
				errs = append(errs, err)
			}
		}
		rn.table.Close()
		rn.table = nil
	}
	if rn.slot != nil {
		if err := rn.slot.Release(); err != nil {
			errs = append(errs, err)
		}
		rn.slot = nil
	}
	if rn.resolv != "" {
		os.Remove(rn.resolv)
		rn.resolv = ""
	}
	return errors.Join(errs...)
}
