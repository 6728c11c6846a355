package pool

import (
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/nsbox/nsbox/netns"
)

// Slot is one claimed namespace: wired, addressed and routed. Release it
// when the sandbox that joined it has ended; it is then destroyed.
type Slot struct {
	ns       *netns.Handle
	bridgeNS *netns.Handle // the bridge's namespace (this Slot's own handle)
	bridge   string
	addr     netip.Prefix
	gw       netip.Addr
	dns      []netip.Addr
	ifName   string
	release  func() error
	once     sync.Once
	err      error
}

// Netns returns the namespace; it stays valid until Release. Join it with
// setns, or give nsclone the path /proc/self/fd/N of its Fd.
func (s *Slot) Netns() *netns.Handle { return s.ns }

// BridgeNS returns the namespace that holds the pool's bridge (for
// published ports); valid until Release.
func (s *Slot) BridgeNS() *netns.Handle { return s.bridgeNS }

// Bridge returns the name of the pool's bridge.
func (s *Slot) Bridge() string { return s.bridge }

// Path is /proc/self/fd/N of the namespace, for nsclone.Spec.Join.
func (s *Slot) Path() string { return "/proc/self/fd/" + strconv.Itoa(s.ns.Fd()) }

// Addr returns the namespace's address with its prefix length.
func (s *Slot) Addr() netip.Prefix { return s.addr }

// Gateway returns the default route's gateway (invalid if none).
func (s *Slot) Gateway() netip.Addr { return s.gw }

// DNS returns the name servers for the namespace's resolv.conf.
func (s *Slot) DNS() []netip.Addr { return s.dns }

// IfName returns the name of the interface inside the namespace.
func (s *Slot) IfName() string { return s.ifName }

// ResolvConf returns a resolv.conf naming DNS (nil when there is none).
func (s *Slot) ResolvConf() []byte { return resolvConf(s.dns) }

// resolvConf is a resolv.conf naming dns (nil when there is none).
func resolvConf(dns []netip.Addr) []byte {
	if len(dns) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("# written by nsbox pool\n")
	for _, d := range dns {
		b.WriteString("nameserver " + d.String() + "\n")
	}
	return []byte(b.String())
}

// Release gives the slot back: the namespace is destroyed (never reused)
// and its lease released. It is safe to call more than once.
func (s *Slot) Release() error {
	s.once.Do(func() {
		s.err = s.release()
		s.ns.Close()
		if s.bridgeNS != nil {
			s.bridgeNS.Close()
		}
	})
	return s.err
}
