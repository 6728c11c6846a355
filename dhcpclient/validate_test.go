package dhcpclient

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// TestBadRepliesIgnored feeds each bad OFFER before a good one: every bad
// one must be ignored with a logged reason, and the client must request the
// address of the good one.
func TestBadRepliesIgnored(t *testing.T) {
	mutate := func(f func(m *dhcpv4.DHCPv4)) func(*dhcpv4.DHCPv4) []byte {
		return func(m *dhcpv4.DHCPv4) []byte { f(m); return m.ToBytes() }
	}
	cases := []struct {
		name   string
		build  func(m *dhcpv4.DHCPv4) []byte
		reason string
	}{
		{"wrong xid", mutate(func(m *dhcpv4.DHCPv4) { m.TransactionID[0] ^= 0xff }), ""},
		{"wrong chaddr", mutate(func(m *dhcpv4.DHCPv4) { m.ClientHWAddr = net.HardwareAddr{2, 0, 0, 0, 0, 0x43} }), "chaddr"},
		{"lease time 0", mutate(func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptIPAddressLeaseTime(0)) }), "lease time 0"},
		{"no lease time", mutate(func(m *dhcpv4.DHCPv4) { m.Options.Del(dhcpv4.OptionIPAddressLeaseTime) }), "no lease time"},
		{"zero mask", mutate(func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptSubnetMask(net.IPv4Mask(0, 0, 0, 0))) }), "no usable host"},
		{"non-contiguous mask", mutate(func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptSubnetMask(net.IPv4Mask(255, 0, 255, 0))) }), "not contiguous"},
		{"short mask", mutate(func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionSubnetMask, []byte{255, 255})) }), "subnet mask: length 2"},
		{"router outside subnet", mutate(func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptRouter(net.IPv4(192, 168, 1, 1))) }), "router 192.168.1.1"},
		{"server id 0.0.0.0", mutate(func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptServerIdentifier(net.IPv4zero)) }), "server identifier 0.0.0.0"},
		{"no server id", mutate(func(m *dhcpv4.DHCPv4) { m.Options.Del(dhcpv4.OptionServerIdentifier) }), "no server identifier"},
		{"network address", mutate(func(m *dhcpv4.DHCPv4) { m.YourIPAddr = net.IPv4(10, 9, 0, 0) }), "network address"},
		{"broadcast address", mutate(func(m *dhcpv4.DHCPv4) { m.YourIPAddr = net.IPv4(10, 9, 0, 255) }), "broadcast address"},
		{"yiaddr zero", mutate(func(m *dhcpv4.DHCPv4) { m.YourIPAddr = net.IPv4zero }), "yiaddr"},
		{"bad dns length", mutate(func(m *dhcpv4.DHCPv4) {
			m.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionDomainNameServer, []byte{1, 2, 3}))
		}), "option 6"},
		{"bad classless route", mutate(func(m *dhcpv4.DHCPv4) {
			m.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{24, 10, 1}))
		}), "classless route: truncated"},
		{"truncated packet", func(m *dhcpv4.DHCPv4) []byte { return m.ToBytes()[:200] }, "malformed"},
		{"truncated option", func(m *dhcpv4.DHCPv4) []byte {
			// The fixed header, then options whose last one is cut short.
			b := append([]byte(nil), m.ToBytes()[:240]...)
			return append(b, 53, 1, 2, 54, 4, 10, 9, 0, 2, 51, 4, 0, 0)
		}, "malformed"},
		{"oversized", func(m *dhcpv4.DHCPv4) []byte { return append(m.ToBytes(), make([]byte, 2000)...) }, "oversized"},
		{"wrong type", mutate(func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeAck)) }), "unexpected ACK"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, WithFirstRetry(time.Hour), WithMaxRetry(time.Hour))
			h.run(false)
			d := h.conn.expect(t, dhcpv4.MessageTypeDiscover)
			bad := serverReply(d.m, dhcpv4.MessageTypeOffer, serverB, offeredIP2, 100)
			h.conn.in <- tc.build(bad)
			h.conn.quiet(t, 30*time.Millisecond)
			if tc.reason != "" && !h.log.has(tc.reason) {
				t.Errorf("no log line with %q; log: %q", tc.reason, h.log.lines)
			}
			if h.c.State() != StateSelecting {
				t.Fatalf("state %s after a bad offer, want SELECTING", h.c.State())
			}
			h.conn.reply(serverReply(d.m, dhcpv4.MessageTypeOffer, serverA, offeredIP, 100))
			r := h.conn.expect(t, dhcpv4.MessageTypeRequest)
			if got := addrOf4(r.m.RequestedIPAddress()); got != offeredIP {
				t.Fatalf("requested %v, want the good offer's %v", got, offeredIP)
			}
			// The same defect in the ACK is refused too: nothing applied.
			ack := serverReply(r.m, dhcpv4.MessageTypeAck, serverA, offeredIP, 100)
			if tc.name != "wrong type" && tc.name != "no server id" && tc.name != "server id 0.0.0.0" {
				h.conn.in <- tc.build(serverReply(r.m, dhcpv4.MessageTypeAck, serverA, offeredIP, 100))
				h.conn.quiet(t, 30*time.Millisecond)
				h.applier.none(t)
			}
			h.conn.reply(ack)
			h.applier.expect(t, "apply", "10.9.0.50/24")
		})
	}
}

func TestParseLeaseOptions(t *testing.T) {
	req, _ := dhcpv4.NewDiscovery(testMAC)
	m := serverReply(req, dhcpv4.MessageTypeAck, serverA, offeredIP, 1000,
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x05, 0xdc})),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{
			0, 10, 9, 0, 254, // default via 10.9.0.254
			16, 172, 16, 0, 0, 0, 0, // 172.16.0.0/16 on link
		})),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(900*time.Second)), // >= T2: ignored
		dhcpv4.WithOption(dhcpv4.OptDomainName("lab.example")),
	)
	l, err := parseLease(m, time.Unix(1000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if l.MTU != 1500 || l.Domain != "lab.example" || len(l.Routes) != 2 {
		t.Fatalf("lease %+v", l)
	}
	if l.Routes[0].Dst.String() != "0.0.0.0/0" || l.Routes[0].Gateway.String() != "10.9.0.254" ||
		l.Routes[1].Dst.String() != "172.16.0.0/16" || l.Routes[1].Gateway.IsValid() {
		t.Errorf("routes %+v", l.Routes)
	}
	if l.T1 != 500*time.Second || l.T2 != 875*time.Second {
		t.Errorf("T1 %s T2 %s, want 500s 875s (inconsistent option 58 ignored)", l.T1, l.T2)
	}
	// The JSON form round-trips and has the documented keys.
	b, err := l.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"address":"10.9.0.50"`, `"prefix":24`, `"router":"10.9.0.1"`, `"dns":["10.9.0.53"]`, `"server":"10.9.0.1"`, `"lease":1000`, `"t1":500`, `"t2":875`, `"expiry":"1970-01-01T00:`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON %s lacks %s", b, k)
		}
	}
	var back Lease
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if back.Addr != l.Addr || back.Router != l.Router || back.LeaseTime != l.LeaseTime || !back.Expiry().Equal(l.Expiry()) {
		t.Errorf("round trip: %+v, want %+v", back, l)
	}
}

// FuzzReply feeds arbitrary bytes to the client's reply handling (decode,
// the per-reply checks and lease parsing) in every waiting state: it must
// never panic, and anything accepted as a lease must be sane.
func FuzzReply(f *testing.F) {
	req, _ := dhcpv4.NewDiscovery(testMAC)
	f.Add(serverReply(req, dhcpv4.MessageTypeOffer, serverA, offeredIP, 100).ToBytes())
	f.Add(serverReply(req, dhcpv4.MessageTypeAck, serverA, offeredIP, 0xffffffff).ToBytes())
	f.Add(serverReply(req, dhcpv4.MessageTypeNak, serverA, offeredIP, 0).ToBytes())
	f.Add([]byte{2, 1, 6, 0})
	c, err := New("eth0", testMAC, newFakeConn())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := c.decode(b)
		if err != nil {
			var rej *RejectError
			if !errors.As(err, &rej) && !errors.Is(err, errNotOurs) {
				t.Fatalf("decode error of unexpected type: %v", err)
			}
			return
		}
		_ = c.checkReply(m, m.TransactionID, dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
		l, err := parseLease(m, time.Unix(0, 0))
		if err != nil {
			return
		}
		subnet := l.Addr.Masked()
		if l.Addr.Bits() < 1 || l.Addr.Bits() > 30 || l.Addr.Addr() == subnet.Addr() || l.Addr.Addr() == lastAddr(subnet) {
			t.Fatalf("accepted a bad address %s", l.Addr)
		}
		if l.LeaseTime == 0 || !l.Server.IsValid() || l.Server.IsUnspecified() {
			t.Fatalf("accepted lease time %s server %s", l.LeaseTime, l.Server)
		}
		if l.Router.IsValid() && !subnet.Contains(l.Router) {
			t.Fatalf("accepted router %s outside %s", l.Router, subnet)
		}
		if !l.Infinite() && !(0 < l.T1 && l.T1 < l.T2 && l.T2 < l.LeaseTime) {
			t.Fatalf("timers T1 %s T2 %s lease %s", l.T1, l.T2, l.LeaseTime)
		}
	})
}

// FuzzClientLoop feeds arbitrary datagrams to a running client: it must
// neither crash nor apply anything unless a valid ACK for its REQUEST came.
func FuzzClientLoop(f *testing.F) {
	f.Add([]byte("\x02\x01\x06\x00"), []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		conn := newFakeConn()
		ap := newFakeApplier()
		c, err := New("eth0", testMAC, conn, WithClock(newFakeClock()), WithApplier(ap))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		conn.in <- a
		conn.in <- b
		if _, err := c.Acquire(ctx); err == nil {
			t.Fatal("acquired a lease from fuzz input without a REQUEST/ACK exchange")
		}
		ap.none(t)
	})
}

func TestSaveLeaseAtomic(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/sub/eth0.lease"
	l := &Lease{Interface: "eth0", Addr: netipPrefix("10.9.0.50/24"), Server: serverA, LeaseTime: Infinite, T1: Infinite, T2: Infinite}
	for i := 0; i < 3; i++ {
		if err := SaveLease(path, l); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(dir + "/sub")
	if err != nil || len(ents) != 1 || ents[0].Name() != "eth0.lease" {
		t.Fatalf("directory holds %v (%v), want only the lease file", ents, err)
	}
	back, err := LoadLease(path)
	if err != nil || !back.Infinite() || back.Addr != l.Addr || !back.Expiry().IsZero() {
		t.Fatalf("reloaded %+v, %v", back, err)
	}
	if l, err := LoadLease(dir + "/missing"); l != nil || err != nil {
		t.Errorf("missing file: %v %v, want nil nil", l, err)
	}
	if err := os.WriteFile(dir+"/bad", []byte(`{"address":"::1","prefix":200}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLease(dir + "/bad"); err == nil {
		t.Error("a lease with an IPv6 address and prefix 200 was loaded")
	}
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
