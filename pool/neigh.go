package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/rtnl"
)

// pinBridgeMAC sets the bridge's MAC address to the one it has, which
// makes the kernel keep it (addr_assign_type "set") instead of following
// its lowest port, as Docker does for docker0. Why: a namespace waits in
// the pool with a neighbour entry for its gateway; a bridge whose MAC
// followed the ports that sandboxes add and remove would leave that entry
// naming a MAC that no longer exists, and the payload's first SYN would
// wait for the neighbour probe and TCP's retransmissions (1 to 68 s starts
// were seen in bench/pool before). mac is the bridge's MAC as checkBridge
// read it; it becomes p.bridgeMAC.
func (p *Pool) pinBridgeMAC(ctx context.Context, mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("bridge %s has no Ethernet address", p.cfg.Bridge)
	}
	c, err := rtnl.Dial(p.bridgeNS)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetHardwareAddr(ctx, p.cfg.Bridge, mac); err != nil {
		return fmt.Errorf("pin the MAC address of %s: %w", p.cfg.Bridge, err)
	}
	p.bridgeMAC = mac
	return nil
}

// bridgeOwns reports whether a is one of the bridge's own addresses.
func (p *Pool) bridgeOwns(a netip.Addr) bool {
	for _, b := range p.bridgeAddrs {
		if b.Addr() == a {
			return true
		}
	}
	return false
}

// prime gives a wired namespace and the bridge's namespace each other's
// neighbour entry (NUD_REACHABLE: the kernel ages and checks them as it
// does the ones it learns), so that the payload's first connection to its
// gateway and the gateway's answer need no ARP round trip. A gateway that
// is not the bridge's own address gets a gratuitous ARP instead (see
// announce). Done while wiring, off the claim's clock; the namespace's MAC
// is the one AttachNS read (e.att.MAC).
func (p *Pool) prime(e *entry) error {
	ctx := p.ctx
	dev := ifNameOr(p.cfg.IfName)
	if err := p.primeGateway(ctx, e); err != nil {
		return fmt.Errorf("prime %s: %w", e.addr, err)
	}
	e.mac = e.att.MAC
	if !e.addr.Addr().Is4() || len(e.mac) != 6 {
		return nil
	}
	if e.gw.IsValid() && !p.bridgeOwns(e.gw) {
		if err := announce(ctx, e.ns, dev, e.addr.Addr()); err != nil {
			return fmt.Errorf("prime %s: %w", e.addr, err)
		}
	}
	bc, err := rtnl.Dial(p.bridgeNS)
	if err != nil {
		return fmt.Errorf("prime %s: %w", e.addr, err)
	}
	defer bc.Close()
	if err := bc.ReplaceNeigh(ctx, rtnl.NeighSpec{Dst: e.addr.Addr(), LLAddr: e.mac, Dev: p.cfg.Bridge,
		State: unix.NUD_REACHABLE}); err != nil {
		return fmt.Errorf("prime %s: %w", e.addr, err)
	}
	e.primed = true
	return nil
}

// primeGateway gives e's namespace the neighbour entry of its gateway when
// that is the bridge's own address, with the bridge's MAC (gatewayNeigh).
func (p *Pool) primeGateway(ctx context.Context, e *entry) error {
	if !e.gw.IsValid() || !e.gw.Is4() || !p.bridgeOwns(e.gw) {
		return nil
	}
	p.mu.Lock()
	mac := p.bridgeMAC
	p.mu.Unlock()
	return p.gatewayNeigh(ctx, e, mac)
}

// gatewayNeigh sets the neighbour entry of e's gateway in e's namespace to
// mac and records it in e.gwMAC: the one place that writes it (prime, a
// refill that raced a MAC change, reprime).
func (p *Pool) gatewayNeigh(ctx context.Context, e *entry, mac net.HardwareAddr) error {
	c, err := rtnl.Dial(e.ns)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.ReplaceNeigh(ctx, rtnl.NeighSpec{Dst: e.gw, LLAddr: mac, Dev: ifNameOr(p.cfg.IfName), State: unix.NUD_REACHABLE}); err != nil {
		return err
	}
	e.gwMAC = mac
	return nil
}

// unprime removes the bridge namespace's entry for a namespace that is
// being destroyed, before its address can go to another one.
func (p *Pool) unprime(e *entry) {
	if !e.primed {
		return
	}
	bc, err := rtnl.Dial(p.bridgeNS)
	if err != nil {
		p.logf("pool %s: neighbour %s: %v", p.name(), e.addr, err)
		return
	}
	defer bc.Close()
	err = bc.DelNeigh(context.Background(), rtnl.NeighSpec{Dst: e.addr.Addr(), Dev: p.cfg.Bridge})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		p.logf("pool %s: neighbour %s: %v", p.name(), e.addr, err)
	}
}

// reprime gives every waiting namespace the bridge's new MAC (someone set
// it by hand: the pool pinned it) for its gateway. p.mu is held meanwhile,
// so that no entry is destroyed under it; a claim waits for it.
func (p *Pool) reprime(ctx context.Context, mac net.HardwareAddr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logf("pool %s: bridge %s changed its MAC to %s", p.name(), p.cfg.Bridge, mac)
	p.bridgeMAC = mac
	for e := range p.waiting {
		if e.gwMAC == nil {
			continue
		}
		if err := p.gatewayNeigh(ctx, e, mac); err != nil {
			p.logf("pool %s: neighbour of %s: %v", p.name(), e.addr, err)
		}
	}
}
