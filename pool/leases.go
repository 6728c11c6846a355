package pool

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nsbox/nsbox/dhcpclient"
	"github.com/nsbox/nsbox/internal/poolwire"
	"github.com/nsbox/nsbox/nsnet"
)

// A DHCP pool with a socket keeps each namespace's lease in
// leaseDir(NAME)/HOSTIF.lease (dhcpclient's file, which its release
// removes) and, beside it, HOSTIF.owner: the namespace's MAC and bridge.
// A pool that was killed cannot release its leases; the next pool of the
// same name does it for it (releaseLeftovers) instead of leaving the
// addresses to expire at the server.

// leaseOwner is the record beside a lease file.
type leaseOwner struct {
	MAC    string `json:"mac"`
	Bridge string `json:"bridge"`
}

func leaseDir(name string) string { return filepath.Join(poolwire.ResolvDir(name), "leases") }

// leaseFile is where the lease of the namespace with host end hostIf is
// kept ("" for a pool without socket or without DHCP).
func (p *Pool) leaseFile(hostIf string) string {
	if p.listener == nil || !p.cfg.DHCP {
		return ""
	}
	return filepath.Join(leaseDir(p.cfg.Name), hostIf+".lease")
}

// recordOwner writes the owner record of a wired namespace's lease.
func (p *Pool) recordOwner(e *entry, hostIf string, mac net.HardwareAddr) error {
	if e.leaseFile == "" || mac == nil {
		return nil
	}
	b, err := json.Marshal(leaseOwner{MAC: mac.String(), Bridge: p.cfg.Bridge})
	if err != nil {
		return err
	}
	return os.WriteFile(strings.TrimSuffix(e.leaseFile, ".lease")+".owner", b, 0o600)
}

// forgetLease removes what recordOwner and the lease client wrote.
func forgetLease(file string) {
	if file == "" {
		return
	}
	os.Remove(file)
	os.Remove(strings.TrimSuffix(file, ".lease") + ".owner")
}

// releaseLeftovers releases the unexpired leases a dead pool of this name
// left, each from a namespace wired for it on the bridge with the lease's
// address and sending as the dead namespace's MAC (the server knows the
// lease by it). A lease of another bridge, or without its record, is left
// to expire. It logs what it does and returns how many it released.
func (p *Pool) releaseLeftovers(ctx context.Context) int {
	files, _ := filepath.Glob(filepath.Join(leaseDir(p.cfg.Name), "*.lease"))
	n := 0
	for i, f := range files {
		if err := p.releaseLeftover(ctx, f, i); err != nil {
			p.logf("pool %s: lease left by a dead pool (%s): %v", p.name(), filepath.Base(f), err)
			continue
		}
		n++
	}
	return n
}

func (p *Pool) releaseLeftover(ctx context.Context, file string, i int) error {
	ob, err := os.ReadFile(strings.TrimSuffix(file, ".lease") + ".owner")
	if err != nil {
		return err
	}
	var o leaseOwner
	if err := json.Unmarshal(ob, &o); err != nil {
		return err
	}
	mac, err := net.ParseMAC(o.MAC)
	if err != nil {
		return err
	}
	if o.Bridge != p.cfg.Bridge {
		return fmt.Errorf("it was leased on bridge %s, not %s: left to expire", o.Bridge, p.cfg.Bridge)
	}
	l, err := dhcpclient.LoadLease(file)
	if err != nil {
		return err
	}
	if !l.Infinite() && !l.Expiry().After(time.Now()) {
		return nil // expired already
	}
	ns, err := newNetns()
	if err != nil {
		return err
	}
	defer ns.Close()
	ifName := ifNameOr(p.cfg.IfName)
	c := nsnet.Config{Bridge: p.cfg.Bridge, BridgeNS: p.bridgeNS, IfName: p.cfg.IfName, Addr: l.Addr}
	att, err := nsnet.AttachNS(ctx, &c, ns, "nr"+p.ifTag+strconv.Itoa(i))
	if err != nil {
		return err
	}
	defer att.Detach(context.WithoutCancel(ctx))
	pc, err := dhcpclient.Listen(ns, ifName)
	if err != nil {
		return err
	}
	cl, err := dhcpclient.New(ifName, mac, pc, dhcpclient.WithLeaseFile(file))
	if err != nil {
		pc.Close()
		return err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := cl.Release(rctx); err != nil {
		return err
	}
	p.logf("pool %s: released %s, left by a dead pool", p.name(), l.Addr)
	return nil
}
