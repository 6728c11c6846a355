package dhcpserver

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Defaults of the options.
const (
	DefaultLeaseTime   = time.Hour        // WithLeaseTime not given
	DefaultOfferHold   = 30 * time.Second // how long an offered address stays reserved
	DefaultDeclineHold = 10 * time.Minute // how long a declined address is not offered
	DefaultMaxPerHW    = 4                // WithMaxPerHW not given
	// MinLeaseTime is the shortest lease granted when a client asks for a
	// shorter one (option 51 in its request), as dnsmasq's floor of 2 min.
	MinLeaseTime = 2 * time.Minute
)

// Lease is one client's binding, as kept in memory and in the lease file.
type Lease struct {
	ClientID string     `json:"client_id"` // "id:HEX" (option 61) or "hw:MAC"
	HWAddr   string     `json:"hwaddr"`
	Addr     netip.Addr `json:"address"`
	Hostname string     `json:"hostname,omitempty"`
	Expiry   time.Time  `json:"expiry"`
	// Offered is true while the address is only reserved by an OFFER (not
	// yet acknowledged); such leases are not written to the lease file.
	Offered bool `json:"-"`
	// Declined marks an address a client reported in use (DHCPDECLINE); it
	// is not offered again before Expiry. ClientID is empty then.
	Declined bool `json:"declined,omitempty"`
}

// Server holds the pool and the leases. Its methods are safe for concurrent
// use. Build it with New.
type Server struct {
	prefix    netip.Prefix // the server's own address and subnet
	from, to  netip.Addr   // pool range, inclusive
	router    netip.Addr
	dns       []netip.Addr
	leaseTime time.Duration
	offerHold time.Duration
	leaseFile string
	maxPerHW  int
	now       func() time.Time
	logf      func(format string, args ...any)

	mu      sync.Mutex
	byID    map[string]*Lease
	byAddr  map[netip.Addr]*Lease
	version uint64 // bumped by every change that the lease file must record

	disk persister // writes of the lease file
}

// Option configures a Server.
type Option func(*Server) error

// WithRouter sets the router (option 3) given to clients; it must lie in
// the server's subnet. Without it no router is sent.
func WithRouter(ip netip.Addr) Option {
	return func(s *Server) error {
		if !ip.Is4() || !s.prefix.Contains(ip) {
			return fmt.Errorf("dhcpserver: router %s: not in subnet %s", ip, s.prefix.Masked())
		}
		s.router = ip
		return nil
	}
}

// WithDNS sets the DNS servers (option 6) given to clients.
func WithDNS(ips ...netip.Addr) Option {
	return func(s *Server) error {
		for _, ip := range ips {
			if !ip.Is4() {
				return fmt.Errorf("dhcpserver: dns server %s: not an IPv4 address", ip)
			}
		}
		s.dns = append([]netip.Addr(nil), ips...)
		return nil
	}
}

// WithLeaseTime sets the lease time (option 51); zero means DefaultLeaseTime.
// It must be at least one second and below 2^32-1 seconds.
func WithLeaseTime(d time.Duration) Option {
	return func(s *Server) error {
		if d == 0 {
			d = DefaultLeaseTime
		}
		if d < time.Second || d/time.Second >= 0xffffffff {
			return fmt.Errorf("dhcpserver: lease time %s: must be between 1s and 136 years", d)
		}
		s.leaseTime = d.Truncate(time.Second)
		return nil
	}
}

// WithLeaseFile persists the leases to path (JSON, replaced atomically on
// every change) and loads them from it in New when it exists. Without it the
// leases live in memory only.
func WithLeaseFile(path string) Option {
	return func(s *Server) error { s.leaseFile = path; return nil }
}

// WithMaxPerHW bounds how many leases and offers one hardware address
// (chaddr) may hold at once under different client identifiers; zero means
// DefaultMaxPerHW. A client identifier always holds at most one. A request
// beyond the bound gets no answer, so one host on the segment cannot drain
// the pool by inventing client identifiers.
func WithMaxPerHW(n int) Option {
	return func(s *Server) error {
		if n < 0 {
			return fmt.Errorf("dhcpserver: max leases per hardware address %d: must not be negative", n)
		}
		if n > 0 {
			s.maxPerHW = n
		}
		return nil
	}
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option {
	return func(s *Server) error { s.now = now; return nil }
}

// WithLogf receives one line per decision; nil (the default) discards them.
func WithLogf(logf func(format string, args ...any)) Option {
	return func(s *Server) error { s.logf = logf; return nil }
}

// New returns a server whose own address and subnet are server (for
// example 10.0.0.1/24) and whose pool is from..to (inclusive, inside the
// subnet, not containing the server's address, the network or the broadcast
// address). With WithLeaseFile, the leases stored there are loaded.
func New(server netip.Prefix, from, to netip.Addr, opts ...Option) (*Server, error) {
	if !server.Addr().Is4() || server.Bits() < 1 || server.Bits() > 30 {
		return nil, fmt.Errorf("dhcpserver: server address %s: need an IPv4 address with a prefix of /1 to /30", server)
	}
	s := &Server{
		prefix:    server,
		from:      from,
		to:        to,
		leaseTime: DefaultLeaseTime,
		offerHold: DefaultOfferHold,
		maxPerHW:  DefaultMaxPerHW,
		now:       time.Now,
		logf:      func(string, ...any) {},
		byID:      map[string]*Lease{},
		byAddr:    map[netip.Addr]*Lease{},
	}
	s.disk.cond.L = &s.disk.mu
	subnet := server.Masked()
	switch {
	case !from.Is4() || !to.Is4():
		return nil, fmt.Errorf("dhcpserver: range %s-%s: not IPv4 addresses", from, to)
	case to.Less(from):
		return nil, fmt.Errorf("dhcpserver: range %s-%s: end before start", from, to)
	case !subnet.Contains(from) || !subnet.Contains(to):
		return nil, fmt.Errorf("dhcpserver: range %s-%s: not inside subnet %s", from, to, subnet)
	case from == subnet.Addr() || to == broadcast(subnet):
		return nil, fmt.Errorf("dhcpserver: range %s-%s: contains the network or broadcast address of %s", from, to, subnet)
	case !server.Addr().Less(from) && !to.Less(server.Addr()):
		return nil, fmt.Errorf("dhcpserver: range %s-%s: contains the server's own address %s", from, to, server.Addr())
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.leaseFile != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// broadcast returns the last address of p.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// Leases returns a copy of the current bindings (acknowledged and not
// expired), sorted by address.
func (s *Server) Leases() []Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Lease
	for _, l := range s.byAddr {
		if !l.Offered && !l.Declined && l.Expiry.After(now) {
			out = append(out, *l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

// clientID names the client of m: option 61 when present, else chaddr. A
// client identifier that is hardware type 1 (Ethernet) followed by a MAC
// address (what dhclient, udhcpc and nsbox send by default) names the same
// client as a bare chaddr of that MAC, so a host gets the same address
// whether or not its client sends option 61.
func clientID(m *dhcpv4.DHCPv4) string {
	id := m.Options.Get(dhcpv4.OptionClientIdentifier)
	if len(id) == 0 {
		return "hw:" + m.ClientHWAddr.String()
	}
	if len(id) == 7 && id[0] == byte(iana.HWTypeEthernet) {
		return "hw:" + net.HardwareAddr(id[1:]).String()
	}
	return "id:" + hex.EncodeToString(id)
}

// normalID rewrites a stored "id:01MAC" (lease files of older versions) to
// the "hw:MAC" that clientID now gives for it.
func normalID(id string) string {
	b, err := hex.DecodeString(strings.TrimPrefix(id, "id:"))
	if !strings.HasPrefix(id, "id:") || err != nil || len(b) != 7 || b[0] != byte(iana.HWTypeEthernet) {
		return id
	}
	return "hw:" + net.HardwareAddr(b[1:]).String()
}

func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok {
		return netip.Addr{}
	}
	return a
}

// inPool reports whether a is an address of the pool.
func (s *Server) inPool(a netip.Addr) bool {
	return a.Is4() && !a.Less(s.from) && !s.to.Less(a)
}

// free reports whether a may be given to client id (mu held).
func (s *Server) free(a netip.Addr, id string, now time.Time) bool {
	if !s.inPool(a) {
		return false
	}
	l, ok := s.byAddr[a]
	return !ok || l.ClientID == id || !l.Expiry.After(now)
}

// drop forgets l (mu held).
func (s *Server) drop(l *Lease) {
	if s.byAddr[l.Addr] == l {
		delete(s.byAddr, l.Addr)
	}
	if l.ClientID != "" && s.byID[l.ClientID] == l {
		delete(s.byID, l.ClientID)
	}
}

// bind records that id holds a until expiry (mu held).
func (s *Server) bind(id string, m *dhcpv4.DHCPv4, a netip.Addr, expiry time.Time, offered bool) {
	if old, ok := s.byID[id]; ok {
		s.drop(old)
	}
	if old, ok := s.byAddr[a]; ok {
		s.drop(old)
	}
	l := &Lease{ClientID: id, HWAddr: m.ClientHWAddr.String(), Addr: a, Hostname: m.HostName(), Expiry: expiry, Offered: offered}
	s.byID[id] = l
	s.byAddr[a] = l
}

// heldByHW counts the live leases and offers of hardware address hw under
// client identifiers other than id (mu held).
func (s *Server) heldByHW(hw, id string, now time.Time) int {
	n := 0
	for _, l := range s.byID {
		if l.ClientID != id && l.HWAddr == hw && l.Expiry.After(now) {
			n++
		}
	}
	return n
}

// sameHW returns the address last bound to m's chaddr under another client
// identifier, when nothing holds it now (mu held): a host whose client
// changed its identifier gets its address back, as with dnsmasq.
func (s *Server) sameHW(id string, m *dhcpv4.DHCPv4, now time.Time) (netip.Addr, bool) {
	hw := m.ClientHWAddr.String()
	var best *Lease
	for _, l := range s.byID {
		if l.ClientID != id && l.HWAddr == hw && !l.Expiry.After(now) && (best == nil || best.Expiry.Before(l.Expiry)) {
			best = l
		}
	}
	if best == nil || !s.free(best.Addr, id, now) {
		return netip.Addr{}, false
	}
	return best.Addr, true
}

// pick chooses the address to offer to id (mu held): its current or former
// address, else the one it asks for, else the former address of its
// hardware address, else the first free one.
func (s *Server) pick(id string, m *dhcpv4.DHCPv4, now time.Time) (netip.Addr, bool) {
	if l, ok := s.byID[id]; ok && s.free(l.Addr, id, now) {
		return l.Addr, true
	}
	if req := addrOf(m.RequestedIPAddress()); s.free(req, id, now) {
		return req, true
	}
	if a, ok := s.sameHW(id, m, now); ok {
		return a, true
	}
	for a := s.from; a.IsValid() && !s.to.Less(a); a = a.Next() {
		if a != s.prefix.Addr() && s.free(a, id, now) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// Handle decides the reply to one request whose sender is unknown: a giaddr
// in it is not trusted (see HandleFrom). It returns a nil reply when the
// request gets no answer (with the reason in err, which is informational),
// and the address the reply must be sent to.
func (s *Server) Handle(req *dhcpv4.DHCPv4) (reply *dhcpv4.DHCPv4, dst *net.UDPAddr, err error) {
	return s.HandleFrom(req, nil)
}

// HandleFrom is Handle for a request that came from src (nil: unknown).
// RFC 2131 4.1 sends the reply of a relayed request to the relay agent at
// giaddr; a relay sends from giaddr's own address and the server port, so
// a giaddr is trusted only when src is exactly giaddr:67. Any other giaddr
// was written by the client itself: the reply stays on the segment (it
// must not let a client aim the server's replies at a host elsewhere).
func (s *Server) HandleFrom(req *dhcpv4.DHCPv4, src *net.UDPAddr) (reply *dhcpv4.DHCPv4, dst *net.UDPAddr, err error) {
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, nil, errors.New("not a BOOTREQUEST")
	}
	if len(req.ClientHWAddr) == 0 || len(req.ClientHWAddr) > 16 {
		return nil, nil, errors.New("bad chaddr length")
	}
	reply, v, err := s.handle(req)
	// The change a reply announces is in the lease file before the reply
	// leaves (an ACK never outlives a crash of the server).
	if v != 0 {
		if werr := s.persist(v); werr != nil {
			s.logf("%v", werr)
		}
	}
	if reply == nil {
		return nil, nil, err
	}
	return reply, s.destination(req, reply, relayed(req, src)), err
}

// relayed reports whether req came from the relay agent its giaddr names.
func relayed(req *dhcpv4.DHCPv4, src *net.UDPAddr) bool {
	gi := addrOf(req.GatewayIPAddr)
	if !gi.IsValid() || gi.IsUnspecified() || src == nil {
		return false
	}
	return addrOf(src.IP) == gi && src.Port == dhcpv4.ServerPort
}

// handle updates the lease table for req and returns the reply, if any, and
// the table version that the lease file must reach before the reply is
// sent (0 when nothing changed).
func (s *Server) handle(req *dhcpv4.DHCPv4) (reply *dhcpv4.DHCPv4, version uint64, err error) {
	id := clientID(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var changed bool
	switch mt := req.MessageType(); mt {
	case dhcpv4.MessageTypeDiscover:
		if _, ok := s.byID[id]; !ok {
			if n := s.heldByHW(req.ClientHWAddr.String(), id, now); n >= s.maxPerHW {
				return nil, 0, fmt.Errorf("discover from %s: chaddr %s already holds %d leases (the bound)", id, req.ClientHWAddr, n)
			}
		}
		a, ok := s.pick(id, req, now)
		if !ok {
			return nil, 0, fmt.Errorf("discover from %s: pool %s-%s exhausted", id, s.from, s.to)
		}
		if l, ok := s.byID[id]; !ok || l.Addr != a || !l.Expiry.After(now) || l.Offered {
			s.bind(id, req, a, now.Add(s.offerHold), true)
		}
		reply, err = s.reply(req, dhcpv4.MessageTypeOffer, a)
		s.logf("offer %s to %s", a, id)
	case dhcpv4.MessageTypeRequest:
		reply, changed, err = s.request(req, id, now)
	case dhcpv4.MessageTypeRelease:
		if sid := addrOf(req.ServerIdentifier()); sid.IsValid() && sid != s.prefix.Addr() {
			return nil, 0, fmt.Errorf("release from %s: for server %s", id, sid)
		}
		l, ok := s.byID[id]
		if !ok || l.Addr != addrOf(req.ClientIPAddr) {
			return nil, 0, fmt.Errorf("release from %s: no lease for %s", id, req.ClientIPAddr)
		}
		s.drop(l)
		changed = true
		s.logf("release %s from %s", l.Addr, id)
	case dhcpv4.MessageTypeDecline:
		a := addrOf(req.RequestedIPAddress())
		l, ok := s.byID[id]
		if !ok || l.Addr != a {
			return nil, 0, fmt.Errorf("decline from %s: no lease for %s", id, a)
		}
		s.drop(l)
		d := &Lease{Addr: a, Expiry: now.Add(DefaultDeclineHold), Declined: true}
		s.byAddr[a] = d
		changed = true
		s.logf("decline %s from %s: not offered for %s", a, id, DefaultDeclineHold)
	case dhcpv4.MessageTypeInform:
		reply, err = s.reply(req, dhcpv4.MessageTypeAck, netip.Addr{})
		if reply != nil {
			reply.YourIPAddr = net.IPv4zero
			reply.Options.Del(dhcpv4.OptionIPAddressLeaseTime)
			reply.Options.Del(dhcpv4.OptionRenewTimeValue)
			reply.Options.Del(dhcpv4.OptionRebindingTimeValue)
		}
		s.logf("inform from %s", id)
	default:
		return nil, 0, fmt.Errorf("message type %s from %s: not handled", mt, id)
	}
	if changed {
		s.version++
		version = s.version
	}
	return reply, version, err
}

// request handles a DHCPREQUEST in its three forms (RFC 2131 4.3.2).
func (s *Server) request(req *dhcpv4.DHCPv4, id string, now time.Time) (*dhcpv4.DHCPv4, bool, error) {
	sid := addrOf(req.ServerIdentifier())
	asked := addrOf(req.RequestedIPAddress())
	ciaddr := addrOf(req.ClientIPAddr)
	l := s.byID[id]
	var want netip.Addr
	switch {
	case sid.IsValid(): // SELECTING
		if sid != s.prefix.Addr() {
			if l != nil && l.Offered {
				s.drop(l)
			}
			return nil, false, fmt.Errorf("request from %s: selected server %s, not us", id, sid)
		}
		if l == nil || l.Addr != asked || !l.Expiry.After(now) {
			return s.nak(req, id, fmt.Sprintf("requested %s was not offered to it", asked))
		}
		want = asked
	case asked.IsValid() && !asked.IsUnspecified(): // INIT-REBOOT
		// RFC 2131 4.3.2: NAK an address of the wrong network or not
		// the client's; with no record of the client, stay silent.
		if !s.prefix.Masked().Contains(asked) {
			return s.nak(req, id, fmt.Sprintf("requested %s is not on subnet %s", asked, s.prefix.Masked()))
		}
		if l == nil || l.Offered {
			return nil, false, fmt.Errorf("init-reboot request from %s for %s: no record of the client, silent", id, asked)
		}
		if l.Addr != asked || !s.free(asked, id, now) {
			return s.nak(req, id, fmt.Sprintf("requested %s is not its address", asked))
		}
		want = asked
	case ciaddr.IsValid() && !ciaddr.IsUnspecified(): // RENEWING or REBINDING
		// A lease is only extended, never created, by a renewal.
		if l == nil || l.Offered {
			return nil, false, fmt.Errorf("renewal from %s for %s: no record of the client, silent", id, ciaddr)
		}
		if l.Addr != ciaddr || !s.free(ciaddr, id, now) {
			return s.nak(req, id, fmt.Sprintf("renewed %s is not its address", ciaddr))
		}
		want = ciaddr
	default:
		return nil, false, fmt.Errorf("request from %s: no server id, requested address or ciaddr", id)
	}
	s.bind(id, req, want, now.Add(s.leaseFor(req)), false)
	reply, err := s.reply(req, dhcpv4.MessageTypeAck, want)
	s.logf("ack %s to %s", want, id)
	return reply, true, err
}

func (s *Server) nak(req *dhcpv4.DHCPv4, id, reason string) (*dhcpv4.DHCPv4, bool, error) {
	s.logf("nak to %s: %s", id, reason)
	r, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.prefix.Addr().AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptMessage(reason)),
	)
	if err != nil {
		return nil, false, fmt.Errorf("nak to %s: %w", id, err)
	}
	r.YourIPAddr = net.IPv4zero
	r.ClientIPAddr = net.IPv4zero
	r.SetBroadcast()
	return r, false, fmt.Errorf("nak to %s: %s", id, reason)
}

// leaseFor is the lease time granted to req: the configured one, or the
// shorter time the client asks for (option 51), but not below MinLeaseTime
// (RFC 2131 4.3.1 lets the server honour the request; dnsmasq does so with
// the same floor).
func (s *Server) leaseFor(req *dhcpv4.DHCPv4) time.Duration {
	v := req.Options.Get(dhcpv4.OptionIPAddressLeaseTime)
	if len(v) != 4 {
		return s.leaseTime
	}
	asked := time.Duration(binary.BigEndian.Uint32(v)) * time.Second
	if asked >= s.leaseTime {
		return s.leaseTime
	}
	return min(max(asked, MinLeaseTime), s.leaseTime)
}

// reply builds an OFFER or ACK for a with the configured options.
func (s *Server) reply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, a netip.Addr) (*dhcpv4.DHCPv4, error) {
	lt := s.leaseFor(req)
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithServerIP(s.prefix.Addr().AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.prefix.Addr().AsSlice())),
		dhcpv4.WithNetmask(net.CIDRMask(s.prefix.Bits(), 32)),
		dhcpv4.WithLeaseTime(uint32(lt / time.Second)),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(lt / 2)),
		dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(lt / 8 * 7)),
		dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(broadcast(s.prefix).AsSlice())),
	}
	if a.IsValid() {
		mods = append(mods, dhcpv4.WithYourIP(a.AsSlice()))
	}
	if s.router.IsValid() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRouter(s.router.AsSlice())))
	}
	if len(s.dns) > 0 {
		ips := make([]net.IP, len(s.dns))
		for i, d := range s.dns {
			ips[i] = d.AsSlice()
		}
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDNS(ips...)))
	}
	r, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		return nil, fmt.Errorf("%s to %s: %w", mt, clientID(req), err)
	}
	return r, nil
}

// destination applies RFC 2131 4.1: to the relay (only when relay says the
// request came from it), to ciaddr (only an address of the server's
// subnet: the reply never leaves the segment on a client's word), or
// broadcast.
func (s *Server) destination(req, reply *dhcpv4.DHCPv4, relay bool) *net.UDPAddr {
	if gi := addrOf(req.GatewayIPAddr); relay && gi.IsValid() && !gi.IsUnspecified() {
		return &net.UDPAddr{IP: gi.AsSlice(), Port: dhcpv4.ServerPort}
	}
	if ci := addrOf(req.ClientIPAddr); ci.IsValid() && !ci.IsUnspecified() && s.prefix.Masked().Contains(ci) && reply.MessageType() != dhcpv4.MessageTypeNak {
		return &net.UDPAddr{IP: ci.AsSlice(), Port: dhcpv4.ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
}

// unicastTo applies RFC 2131 4.1 for a client without an address that did
// not ask for broadcast: the OFFER or ACK goes to yiaddr at chaddr, after
// the neighbour entry is set, when conn can set it (ListenUDP's can).
func (s *Server) unicastTo(conn net.PacketConn, req, reply *dhcpv4.DHCPv4, dst *net.UDPAddr) *net.UDPAddr {
	as, ok := conn.(arpSetter)
	if !ok || !dst.IP.Equal(net.IPv4bcast) || req.IsBroadcast() || len(req.ClientHWAddr) != 6 {
		return dst
	}
	mt := reply.MessageType()
	yi := addrOf(reply.YourIPAddr)
	if (mt != dhcpv4.MessageTypeOffer && mt != dhcpv4.MessageTypeAck) || !yi.IsValid() || yi.IsUnspecified() {
		return dst
	}
	if err := as.setARP(yi, req.ClientHWAddr); err != nil {
		s.logf("%v (broadcasting instead)", err)
		return dst
	}
	return &net.UDPAddr{IP: yi.AsSlice(), Port: dhcpv4.ClientPort}
}

// HandlePacket decodes one request, handles it and encodes the reply. It
// never panics on bad input: undecodable bytes give an error and no reply.
func (s *Server) HandlePacket(b []byte) ([]byte, *net.UDPAddr, error) {
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		return nil, nil, fmt.Errorf("decode request: %w", err)
	}
	reply, dst, err := s.Handle(m)
	if reply == nil {
		return nil, nil, err
	}
	return reply.ToBytes(), dst, err
}

// maxInFlight bounds the requests Serve handles at once.
const maxInFlight = 256

// Serve answers requests arriving on conn until ctx is cancelled or conn
// fails; it closes conn when it returns, after the replies in flight are
// sent. Requests are handled concurrently, one goroutine per packet like
// server4.Server, at most maxInFlight at a time. A cancelled ctx returns
// nil.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer conn.Close()
	sem := make(chan struct{}, maxInFlight)
	for {
		buf := make([]byte, 1500)
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dhcpserver: serve: %w", err)
		}
		sem <- struct{}{} // at most maxInFlight requests handled at once
		wg.Add(1)
		src, _ := from.(*net.UDPAddr)
		go func(b []byte) {
			defer wg.Done()
			defer func() { <-sem }()
			m, err := dhcpv4.FromBytes(b)
			if err != nil {
				s.logf("ignored: decode request: %v", err)
				return
			}
			reply, dst, err := s.HandleFrom(m, src)
			if err != nil && reply == nil {
				s.logf("ignored: %v", err)
			}
			if reply == nil {
				return
			}
			dst = s.unicastTo(conn, m, reply, dst)
			if _, err := conn.WriteTo(reply.ToBytes(), dst); err != nil {
				s.logf("send reply to %s: %v", dst, err)
			}
		}(buf[:n])
	}
}
