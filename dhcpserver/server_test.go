package dhcpserver

import (
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/nsbox/nsbox/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.MainWithLeakCheck(m)) }

var (
	srvPrefix = netip.MustParsePrefix("10.7.0.1/24")
	poolFrom  = netip.MustParseAddr("10.7.0.10")
	poolTo    = netip.MustParseAddr("10.7.0.12")
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newServer(t *testing.T, opts ...Option) (*Server, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := New(srvPrefix, poolFrom, poolTo, append([]Option{WithClock(clk.Now), WithLogf(t.Logf),
		WithRouter(netip.MustParseAddr("10.7.0.1")), WithDNS(netip.MustParseAddr("10.7.0.53")),
		WithLeaseTime(10 * time.Minute)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func mac(i byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 1, i} }

func discover(t *testing.T, hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.NewDiscovery(hw, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func request(t *testing.T, hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func handle(t *testing.T, s *Server, m *dhcpv4.DHCPv4, want dhcpv4.MessageType) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	t.Helper()
	r, dst, err := s.Handle(m)
	if want == dhcpv4.MessageTypeNone {
		if r != nil {
			t.Fatalf("%s: got %s, want no reply", m.MessageType(), r.MessageType())
		}
		return nil, nil
	}
	if r == nil {
		t.Fatalf("%s: no reply (%v), want %s", m.MessageType(), err, want)
	}
	if r.MessageType() != want {
		t.Fatalf("%s: got %s (%v), want %s", m.MessageType(), r.MessageType(), err, want)
	}
	if r.TransactionID != m.TransactionID || r.OpCode != dhcpv4.OpcodeBootReply {
		t.Fatalf("reply xid %s op %s, want %s BootReply", r.TransactionID, r.OpCode, m.TransactionID)
	}
	return r, dst
}

// lease runs DISCOVER, REQUEST for the client and returns the ACK.
func lease(t *testing.T, s *Server, hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	o, _ := handle(t, s, discover(t, hw, mods...), dhcpv4.MessageTypeOffer)
	r := request(t, hw, append(mods, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(o.ServerIdentifier())),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(o.YourIPAddr)))...)
	ack, _ := handle(t, s, r, dhcpv4.MessageTypeAck)
	return ack
}

func TestOfferAckOptions(t *testing.T) {
	s, _ := newServer(t)
	o, dst := handle(t, s, discover(t, mac(1)), dhcpv4.MessageTypeOffer)
	if !o.YourIPAddr.Equal(net.ParseIP("10.7.0.10")) {
		t.Errorf("offered %s, want the first pool address", o.YourIPAddr)
	}
	if !dst.IP.Equal(net.IPv4bcast) || dst.Port != 68 {
		t.Errorf("offer sent to %s, want 255.255.255.255:68", dst)
	}
	if o.ServerIdentifier().String() != "10.7.0.1" || o.SubnetMask().String() != "ffffff00" ||
		len(o.Router()) != 1 || len(o.DNS()) != 1 || o.IPAddressLeaseTime(0) != 10*time.Minute {
		t.Errorf("offer options: %s", o.Summary())
	}
	ack := lease(t, s, mac(1))
	if !ack.YourIPAddr.Equal(o.YourIPAddr) {
		t.Errorf("ack %s, offer %s", ack.YourIPAddr, o.YourIPAddr)
	}
	if got := s.Leases(); len(got) != 1 || got[0].Addr != netip.MustParseAddr("10.7.0.10") {
		t.Errorf("leases %+v", got)
	}
}

func TestSameClientSameAddress(t *testing.T) {
	s, clk := newServer(t)
	id := dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte("client-a")))
	a1 := lease(t, s, mac(1), id)
	lease(t, s, mac(2))
	// Same client id, new MAC, after its lease expired: same address.
	clk.add(time.Hour)
	a2 := lease(t, s, mac(9), id)
	if !a1.YourIPAddr.Equal(a2.YourIPAddr) {
		t.Errorf("client-a got %s then %s", a1.YourIPAddr, a2.YourIPAddr)
	}
}

func TestNakForForeignAddress(t *testing.T) {
	s, _ := newServer(t)
	a := lease(t, s, mac(1))
	b := lease(t, s, mac(2))
	// INIT-REBOOT asking for the other client's address.
	r := request(t, mac(2), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(a.YourIPAddr)))
	n, dst := handle(t, s, r, dhcpv4.MessageTypeNak)
	if !dst.IP.Equal(net.IPv4bcast) || !n.YourIPAddr.Equal(net.IPv4zero) {
		t.Errorf("NAK to %s yiaddr %s", dst, n.YourIPAddr)
	}
	// Outside the subnet.
	handle(t, s, request(t, mac(3), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 168, 9, 9)))), dhcpv4.MessageTypeNak)
	// Renewing (ciaddr) someone else's address.
	handle(t, s, request(t, mac(2), dhcpv4.WithClientIP(a.YourIPAddr)), dhcpv4.MessageTypeNak)
	// Renewing its own: ACK unicast to ciaddr.
	ack, dst := handle(t, s, request(t, mac(2), dhcpv4.WithClientIP(b.YourIPAddr)), dhcpv4.MessageTypeAck)
	if !dst.IP.Equal(b.YourIPAddr) || !ack.YourIPAddr.Equal(b.YourIPAddr) {
		t.Errorf("renew ACK to %s for %s", dst, ack.YourIPAddr)
	}
	// SELECTING with another server's id: silence, reservation dropped.
	o, _ := handle(t, s, discover(t, mac(4)), dhcpv4.MessageTypeOffer)
	handle(t, s, request(t, mac(4), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 7, 0, 2))),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(o.YourIPAddr))), dhcpv4.MessageTypeNone)
	o2, _ := handle(t, s, discover(t, mac(5)), dhcpv4.MessageTypeOffer)
	if !o2.YourIPAddr.Equal(o.YourIPAddr) {
		t.Errorf("address %s not freed after the client chose another server (offered %s)", o.YourIPAddr, o2.YourIPAddr)
	}
}

func TestPoolExhaustedReleaseDecline(t *testing.T) {
	s, _ := newServer(t)
	var acks []*dhcpv4.DHCPv4
	for i := byte(1); i <= 3; i++ {
		acks = append(acks, lease(t, s, mac(i)))
	}
	if _, _, err := s.Handle(discover(t, mac(4))); err == nil {
		t.Fatal("a fourth client got an offer from a pool of three")
	}
	rel, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac(2)), dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease),
		dhcpv4.WithClientIP(acks[1].YourIPAddr), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 7, 0, 1))))
	handle(t, s, rel, dhcpv4.MessageTypeNone)
	if n := len(s.Leases()); n != 2 {
		t.Fatalf("%d leases after a release, want 2", n)
	}
	o, _ := handle(t, s, discover(t, mac(4)), dhcpv4.MessageTypeOffer)
	if !o.YourIPAddr.Equal(acks[1].YourIPAddr) {
		t.Errorf("released %s, offered %s", acks[1].YourIPAddr, o.YourIPAddr)
	}
	// mac(4) declines it: the address is held back, nothing else is free.
	lease(t, s, mac(4))
	dec, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac(4)), dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(acks[1].YourIPAddr)))
	handle(t, s, dec, dhcpv4.MessageTypeNone)
	if _, _, err := s.Handle(discover(t, mac(5))); err == nil {
		t.Error("a declined address was offered again at once")
	}
}

func TestInform(t *testing.T) {
	s, _ := newServer(t)
	m, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac(7)), dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(net.IPv4(10, 7, 0, 200)))
	r, dst := handle(t, s, m, dhcpv4.MessageTypeAck)
	if !r.YourIPAddr.Equal(net.IPv4zero) || r.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || len(r.DNS()) != 1 || !dst.IP.Equal(net.IPv4(10, 7, 0, 200)) {
		t.Errorf("INFORM reply %s to %s", r.Summary(), dst)
	}
	if len(s.Leases()) != 0 {
		t.Error("INFORM created a lease")
	}
}

func TestLeaseFilePersistsAndReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "leases.json")
	s, clk := newServer(t, WithLeaseFile(path))
	a := lease(t, s, mac(1))
	lease(t, s, mac(2))
	var f struct {
		Version int `json:"version"`
		Leases  []struct {
			ClientID string `json:"client_id"`
			Address  string `json:"address"`
		} `json:"leases"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 || len(f.Leases) != 2 || f.Leases[0].Address != a.YourIPAddr.String() {
		t.Fatalf("lease file %s: %v", b, err)
	}
	// A new server on the same file knows both clients.
	s2, err := New(srvPrefix, poolFrom, poolTo, WithClock(clk.Now), WithLeaseFile(path))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s2.Leases()); n != 2 {
		t.Fatalf("reloaded %d leases, want 2", n)
	}
	o, _ := handle(t, s2, discover(t, mac(1)), dhcpv4.MessageTypeOffer)
	if !o.YourIPAddr.Equal(a.YourIPAddr) {
		t.Errorf("after reload mac 1 offered %s, had %s", o.YourIPAddr, a.YourIPAddr)
	}
	o3, _ := handle(t, s2, discover(t, mac(3)), dhcpv4.MessageTypeOffer)
	if o3.YourIPAddr.Equal(a.YourIPAddr) {
		t.Errorf("after reload a new client was offered a leased address %s", o3.YourIPAddr)
	}
	if err := os.WriteFile(path, []byte("{broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(srvPrefix, poolFrom, poolTo, WithLeaseFile(path)); err == nil {
		t.Error("a corrupt lease file was accepted")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		p        string
		from, to string
		opts     []Option
	}{
		{"range outside subnet", "10.7.0.1/24", "10.7.1.10", "10.7.1.20", nil},
		{"reversed range", "10.7.0.1/24", "10.7.0.20", "10.7.0.10", nil},
		{"range holds server", "10.7.0.1/24", "10.7.0.1", "10.7.0.20", nil},
		{"range holds broadcast", "10.7.0.1/24", "10.7.0.10", "10.7.0.255", nil},
		{"ipv6", "fd00::1/64", "fd00::10", "fd00::20", nil},
		{"router outside", "10.7.0.1/24", "10.7.0.10", "10.7.0.20", []Option{WithRouter(netip.MustParseAddr("10.8.0.1"))}},
		{"lease time", "10.7.0.1/24", "10.7.0.10", "10.7.0.20", []Option{WithLeaseTime(time.Millisecond)}},
	} {
		_, err := New(netip.MustParsePrefix(tc.p), netip.MustParseAddr(tc.from), netip.MustParseAddr(tc.to), tc.opts...)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// FuzzHandlePacket feeds arbitrary requests to the server: no panic, and
// every address it hands out is in the pool.
func FuzzHandlePacket(f *testing.F) {
	d, _ := dhcpv4.NewDiscovery(mac(1))
	f.Add(d.ToBytes())
	r, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac(1)), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 7, 0, 11))))
	f.Add(r.ToBytes())
	f.Add([]byte{1, 1, 6, 0})
	s, err := New(srvPrefix, poolFrom, poolTo)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, dst, _ := s.HandlePacket(b)
		if out == nil {
			return
		}
		m, err := dhcpv4.FromBytes(out)
		if err != nil {
			t.Fatalf("server produced an undecodable reply: %v", err)
		}
		if dst == nil {
			t.Fatal("reply without destination")
		}
		yi, _ := netip.AddrFromSlice(m.YourIPAddr.To4())
		if !yi.IsUnspecified() && !s.inPool(yi) {
			t.Fatalf("handed out %s outside the pool", yi)
		}
	})
}

// Under a burst of concurrent clients, every ACK leaves only once the lease
// file holds its lease (the writes are grouped, never skipped).
func TestLeaseFileHoldsEveryAckedLease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases.json")
	s, err := New(srvPrefix, poolFrom, netip.MustParseAddr("10.7.0.200"), WithLeaseFile(path), WithLogf(t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	const n = 48
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			hw := net.HardwareAddr{2, 0, 0, 0, 2, byte(i)}
			d, err := dhcpv4.NewDiscovery(hw)
			if err != nil {
				t.Error(err)
				return
			}
			o, _, err := s.Handle(d)
			if o == nil {
				t.Errorf("client %d: no offer: %v", i, err)
				return
			}
			r, err := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(o.ServerIdentifier())),
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(o.YourIPAddr)))
			if err != nil {
				t.Error(err)
				return
			}
			ack, _, err := s.Handle(r)
			if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
				t.Errorf("client %d: no ACK: %v", i, err)
				return
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Error(err)
				return
			}
			if !strings.Contains(string(b), `"`+ack.YourIPAddr.String()+`"`) {
				t.Errorf("client %d: ACK of %s sent before the lease file holds it", i, ack.YourIPAddr)
			}
		}(i)
	}
	wg.Wait()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Leases []struct {
			Address string `json:"address"`
		} `json:"leases"`
	}
	if err := json.Unmarshal(b, &f); err != nil || len(f.Leases) != n {
		t.Fatalf("lease file has %d leases (%v), want %d", len(f.Leases), err, n)
	}
}

// TestSpoofedRequestGetsNoLease is defect 5 of issue 9: a REQUEST in the
// INIT-REBOOT or RENEWING form from a client the server never offered
// anything to is not answered, creates no lease, writes nothing to the lease
// file and so leaves nothing for a restarted server.
func TestSpoofedRequestGetsNoLease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases.json")
	s, clk := newServer(t, WithLeaseFile(path))
	for i := byte(1); i <= 3; i++ {
		a := netip.MustParseAddr("10.7.0.10")
		for j := byte(1); j < i; j++ {
			a = a.Next()
		}
		// INIT-REBOOT: requested address, no server id, no ciaddr.
		handle(t, s, request(t, mac(100+i), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(a.AsSlice()))), dhcpv4.MessageTypeNone)
		// RENEWING: ciaddr, unicast.
		handle(t, s, request(t, mac(110+i), dhcpv4.WithClientIP(a.AsSlice())), dhcpv4.MessageTypeNone)
		// With a client identifier too.
		handle(t, s, request(t, mac(120+i), dhcpv4.WithClientIP(a.AsSlice()),
			dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{0, 'x', i}))), dhcpv4.MessageTypeNone)
	}
	if got := s.Leases(); len(got) != 0 {
		t.Fatalf("spoofed requests made leases: %+v", got)
	}
	if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), "10.7.0.") {
		t.Fatalf("lease file holds spoofed leases:\n%s", b)
	}
	s2, err := New(srvPrefix, poolFrom, poolTo, WithClock(clk.Now), WithLeaseFile(path))
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Leases(); len(got) != 0 {
		t.Fatalf("restarted server has leases %+v", got)
	}
	// The whole pool is still there for real clients.
	for i := byte(1); i <= 3; i++ {
		lease(t, s2, mac(i))
	}
	// A client with a record whose INIT-REBOOT names its own address is
	// acknowledged; one naming another address is NAKed.
	a := s2.Leases()[0]
	hw, _ := net.ParseMAC(a.HWAddr)
	handle(t, s2, request(t, hw, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(a.Addr.AsSlice()))), dhcpv4.MessageTypeAck)
	handle(t, s2, request(t, hw, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 7, 0, 99)))), dhcpv4.MessageTypeNak)
}

func TestLeasesPerHardwareAddressBounded(t *testing.T) {
	s, _ := newServer(t, WithMaxPerHW(2))
	hw := mac(1)
	withID := func(i byte) dhcpv4.Modifier {
		return dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{0, 'i', 'd', i}))
	}
	lease(t, s, hw, withID(1))
	lease(t, s, hw, withID(2))
	handle(t, s, discover(t, hw, withID(3)), dhcpv4.MessageTypeNone)
	if n := len(s.Leases()); n != 2 {
		t.Fatalf("%d leases for one chaddr, want the bound 2", n)
	}
	// The clients already holding one keep being served.
	lease(t, s, hw, withID(1))
	// Another host is not affected.
	lease(t, s, mac(2))
}

// TestSameAddressWithOrWithoutClientID is the rule of issue 12: a host gets
// one address whether its client sends option 61 (as hardware type + MAC,
// or any other identifier once its former lease is over) or only chaddr.
func TestSameAddressWithOrWithoutClientID(t *testing.T) {
	s, clk := newServer(t)
	lease(t, s, mac(7)) // another host takes the first address
	a := lease(t, s, mac(1))
	htypeMAC := dhcpv4.WithOption(dhcpv4.OptClientIdentifier(append([]byte{1}, mac(1)...)))
	b := lease(t, s, mac(1), htypeMAC)
	if !a.YourIPAddr.Equal(b.YourIPAddr) {
		t.Errorf("without client id %s, with 01:MAC %s", a.YourIPAddr, b.YourIPAddr)
	}
	if n := len(s.Leases()); n != 2 {
		t.Errorf("%d leases, want 2 (one per host)", n)
	}
	// A DUID-style identifier is another client while the lease is live,
	// and takes the host's address once nothing holds it.
	duid := dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{0xff, 1, 2, 3, 4, 0, 1, 0, 1}))
	clk.add(time.Hour)
	c := lease(t, s, mac(1), duid)
	if !c.YourIPAddr.Equal(a.YourIPAddr) {
		t.Errorf("after expiry a new client id of the same MAC got %s, want %s", c.YourIPAddr, a.YourIPAddr)
	}
}

func TestGiaddrFromClientNotTrusted(t *testing.T) {
	s, _ := newServer(t)
	elsewhere := net.IPv4(192, 168, 200, 1)
	m := discover(t, mac(1), dhcpv4.WithGatewayIP(elsewhere))
	// From a client (0.0.0.0:68): the offer stays on the segment.
	r, dst, err := s.HandleFrom(m, &net.UDPAddr{IP: net.IPv4zero, Port: 68})
	if r == nil {
		t.Fatal(err)
	}
	if !dst.IP.Equal(net.IPv4bcast) || dst.Port != 68 {
		t.Errorf("offer with a client's giaddr sent to %s, want 255.255.255.255:68", dst)
	}
	// Unknown sender (Handle): same.
	if _, dst, _ := s.Handle(m); !dst.IP.Equal(net.IPv4bcast) {
		t.Errorf("Handle sent to %s", dst)
	}
	// From the relay itself: to the relay's server port.
	_, dst, _ = s.HandleFrom(m, &net.UDPAddr{IP: elsewhere, Port: 67})
	if !dst.IP.Equal(elsewhere) || dst.Port != 67 {
		t.Errorf("relayed offer sent to %s, want %s:67", dst, elsewhere)
	}
	// An INFORM with a ciaddr off the subnet is not unicast off it.
	inf, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac(2)), dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(elsewhere))
	if _, dst, _ := s.Handle(inf); !dst.IP.Equal(net.IPv4bcast) {
		t.Errorf("INFORM reply for off-subnet ciaddr sent to %s", dst)
	}
}

func TestRequestedLeaseTimeHonouredWithFloor(t *testing.T) {
	s, _ := newServer(t) // 10 min
	for _, c := range []struct{ ask, want time.Duration }{
		{30 * time.Second, MinLeaseTime}, {3 * time.Minute, 3 * time.Minute}, {time.Hour, 10 * time.Minute},
	} {
		ack := lease(t, s, mac(1), dhcpv4.WithLeaseTime(uint32(c.ask/time.Second)))
		if got := ack.IPAddressLeaseTime(0); got != c.want {
			t.Errorf("asked %s: lease %s, want %s", c.ask, got, c.want)
		}
		if got := ack.IPAddressRenewalTime(0); got != c.want/2 {
			t.Errorf("asked %s: T1 %s, want %s", c.ask, got, c.want/2)
		}
	}
}
