package bridge

import (
	"bufio"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// These tests need no kernel: they check the bridge-specific encoders and
// decoders against bytes written by hand from linux/if_link.h and against
// messages captured from a 6.x kernel (testdata/*.hex, one message body per
// line, captured with RTM_GETLINK/RTM_GETNEIGH in a throwaway namespace that
// held br0 with port v1, MAC 02:00:00:00:00:01, and its veth peer p1).

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.Join(strings.Fields(s), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func hexLines(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, unhex(t, l))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIDString(t *testing.T) {
	for _, tc := range []struct {
		id   ID
		want string
	}{
		{ID{}, "0000.000000000000"},
		{ID{Priority: 0x8000, Addr: [6]byte{0x4a, 0xa0, 0x79, 0x86, 0x33, 0x11}}, "8000.4aa079863311"},
		{ID{Priority: 0x0fff, Addr: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, "0fff.ffffffffffff"},
	} {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("ID%v.String() = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestDecodeID(t *testing.T) {
	// struct ifla_bridge_id: prio[2] in network order, then addr[6].
	id, err := decodeID([]byte{0x10, 0x00, 0x02, 0, 0, 0, 0, 0x01})
	if err != nil {
		t.Fatal(err)
	}
	if id.Priority != 0x1000 || id.String() != "1000.020000000001" {
		t.Errorf("decodeID = %+v (%s)", id, id)
	}
	if _, err := decodeID([]byte{0x80, 0}); !errors.Is(err, errShort) {
		t.Errorf("decodeID(2 bytes) err = %v, want errShort", err)
	}
}

func TestDecodeLinkCapturedBridge(t *testing.T) {
	b := hexLines(t, "testdata/link-bridge.hex")[0]
	m, err := decodeLink(b)
	if err != nil {
		t.Fatal(err)
	}
	// Values as `ip -d -j link show br0` printed them in the same namespace.
	if m.name != "br0" || m.index != 2 || m.kind != "bridge" || m.master != 0 {
		t.Fatalf("got name %q index %d kind %q master %d", m.name, m.index, m.kind, m.master)
	}
	if m.flags&unix.IFF_UP == 0 {
		t.Errorf("flags %#x: IFF_UP missing", m.flags)
	}
	if m.addr.String() != "02:00:00:00:00:01" {
		t.Errorf("addr %v", m.addr)
	}
	if m.br == nil {
		t.Fatal("no bridge attributes")
	}
	want := bridgeAttrs{
		forwardDelay: 1500, helloTime: 200, maxAge: 2000, ageingTime: 30000,
		stpState: 0, priority: 32768,
		bridgeID: ID{0x8000, [6]byte{2, 0, 0, 0, 0, 1}},
		rootID:   ID{0x8000, [6]byte{2, 0, 0, 0, 0, 1}},
		gcTimer:  28465, // the capture's IFLA_BR_GC_TIMER (clock_t)
	}
	if *m.br != want {
		t.Errorf("bridge attrs\n got %+v\nwant %+v", *m.br, want)
	}
	if m.port != nil {
		t.Errorf("a bridge decoded with port attributes %+v", *m.port)
	}
}

func TestDecodeLinkCapturedPort(t *testing.T) {
	b := hexLines(t, "testdata/link-port.hex")[0]
	m, err := decodeLink(b)
	if err != nil {
		t.Fatal(err)
	}
	// `bridge -j link`: ifindex 4, master br0, state forwarding, priority 32, cost 2.
	if m.name != "v1" || m.index != 4 || m.kind != "veth" || m.slaveKind != "bridge" || m.master != 2 {
		t.Fatalf("got name %q index %d kind %q slave kind %q master %d", m.name, m.index, m.kind, m.slaveKind, m.master)
	}
	if m.br != nil {
		t.Errorf("a port decoded with bridge attributes")
	}
	if m.hwType != unix.ARPHRD_ETHER {
		t.Errorf("ifi_type %d, want ARPHRD_ETHER", m.hwType)
	}
	if m.port == nil {
		t.Fatal("no port attributes")
	}
	want := portAttrs{state: 3, priority: 32, cost: 2, no: 1, id: 0x8001, hasState: true,
		desRoot: ID{0x8000, [6]byte{2, 0, 0, 0, 0, 1}}, desBridge: ID{0x8000, [6]byte{2, 0, 0, 0, 0, 1}}, desPort: 0x8001}
	if *m.port != want {
		t.Errorf("port attrs\n got %+v\nwant %+v", *m.port, want)
	}
}

func TestDecodeLinkCapturedAFBridge(t *testing.T) {
	msgs := hexLines(t, "testdata/port-dump-afbridge.hex")
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m, err := decodeLink(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	// `bridge -j link` printed: ifindex 4, v1, master br0 (2), forwarding,
	// priority 32, cost 2. The AF_BRIDGE form has no IFLA_LINKINFO.
	if m.name != "v1" || m.index != 4 || m.master != 2 || m.kind != "" || m.flags&unix.IFF_UP == 0 {
		t.Fatalf("got name %q index %d master %d kind %q flags %#x", m.name, m.index, m.master, m.kind, m.flags)
	}
	want := portAttrs{state: 3, priority: 32, cost: 2, no: 1, id: 0x8001, hasState: true,
		desRoot: ID{0x8000, [6]byte{2, 0, 0, 0, 0, 1}}, desBridge: ID{0x8000, [6]byte{2, 0, 0, 0, 0, 1}}, desPort: 0x8001,
		fwdDelayTimer: 1441}
	if m.port == nil || *m.port != want {
		t.Fatalf("port attrs %+v, want %+v", m.port, want)
	}
	if len(msgs[0]) > 600 {
		t.Errorf("AF_BRIDGE message is %d bytes; the point of using it is that it is small", len(msgs[0]))
	}
	bs := join([]linkMsg{{index: 2, name: "br0", kind: "bridge"}, m})
	if len(bs) != 1 || len(bs[0].Ports) != 1 || bs[0].Ports[0].No != 1 || bs[0].Ports[0].State != PortForwarding {
		t.Errorf("join with an AF_BRIDGE port: %+v", bs)
	}
}

func TestPortDumpRequestGolden(t *testing.T) {
	b, err := portDumpRequest().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// struct ifinfomsg with ifi_family AF_BRIDGE (7), nothing else.
	if want := "07000000000000000000000000000000"; hex.EncodeToString(b) != want {
		t.Errorf("port dump request %x, want %s", b, want)
	}
}

// TestDecodeLinkProtinfo checks the AF_BRIDGE form, where the port
// attributes come in IFLA_PROTINFO, with a message written by hand.
func TestDecodeLinkProtinfo(t *testing.T) {
	b := unhex(t, `
		07 00 0000  05000000  03100100  00000000
		0700 0300 7633 00 00
		0800 0a00 09000000
		1c00 0c80
		  0500 0100 04 000000
		  0600 1200 0700 0000
		  0800 0300 64000000
	`)
	// ifinfomsg: family AF_BRIDGE(7), index 5, flags UP|BROADCAST|MULTICAST|LOWER_UP.
	// IFLA_IFNAME "v3", IFLA_MASTER 9, IFLA_PROTINFO|NLA_F_NESTED {
	//   IFLA_BRPORT_STATE 4 (blocking), IFLA_BRPORT_NO 7, IFLA_BRPORT_COST 100 }.
	m, err := decodeLink(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.name != "v3" || m.index != 5 || m.master != 9 || m.flags&unix.IFF_UP == 0 {
		t.Fatalf("got %+v", m)
	}
	if m.port == nil || m.port.state != 4 || m.port.no != 7 || m.port.cost != 100 {
		t.Fatalf("port attrs %+v", m.port)
	}
	if PortState(m.port.state).String() != "blocking" {
		t.Errorf("state string %q", PortState(m.port.state).String())
	}
}

func TestDecodeLinkBad(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":           nil,
		"short header":    make([]byte, 15),
		"attr past end":   append(make([]byte, 16), 0x20, 0x00, 0x03, 0x00, 'x'),
		"short bridge id": unhex(t, "00000000 02000000 00000000 00000000  1c00 1200 0b00 0100 6272696467650000 0c00 0200 0800 0b00 80000200"),
	} {
		if _, err := decodeLink(b); err == nil {
			t.Errorf("%s: decodeLink accepted %x", name, b)
		}
	}
}

func TestDecodeFDBCaptured(t *testing.T) {
	msgs := hexLines(t, "testdata/fdb-dump.hex")
	var local, learned, self int
	for _, b := range msgs {
		f, err := decodeFDB(b)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case f.master == 0:
			self++ // a device's own (multicast) addresses: not bridge entries
		case f.state&unix.NUD_PERMANENT != 0:
			local++
			if f.mac.String() != "02:00:00:00:00:01" || f.ifindex != 4 || f.master != 2 {
				t.Errorf("local entry %+v", f)
			}
		default:
			learned++
			// `brctl showmacs br0` showed be:68:cc:72:4f:be behind port 1.
			if f.mac.String() != "be:68:cc:72:4f:be" || f.ifindex != 4 || f.state != unix.NUD_REACHABLE {
				t.Errorf("learned entry %+v", f)
			}
			if !f.hasInfo || f.updated != 0xd3 || f.used != 0x602 { // nda_cacheinfo: 00000000 02060000 d3000000
				t.Errorf("learned entry cache info: updated %d used %d", f.updated, f.used)
			}
		}
	}
	if local != 1 || learned != 1 || self != len(msgs)-2 {
		t.Errorf("local %d learned %d self %d of %d", local, learned, self, len(msgs))
	}
}

func TestDecodeFDBBad(t *testing.T) {
	for name, b := range map[string][]byte{
		"short":           {7, 0, 0},
		"not AF_BRIDGE":   append([]byte{unix.AF_INET}, make([]byte, 11)...),
		"short cacheinfo": unhex(t, "07000000 04000000 02000000  0c00 0300 00000000 00000000"),
	} {
		if _, err := decodeFDB(b); err == nil {
			t.Errorf("%s: decodeFDB accepted %x", name, b)
		}
	}
}

func durp(d time.Duration) *time.Duration { return &d }

func TestEncodeConfigGolden(t *testing.T) {
	on := true
	prio := uint16(0x1000)
	cfg := &Config{STP: &on, ForwardDelay: durp(4 * time.Second), AgeingTime: durp(10 * time.Second), Priority: &prio}
	ae := netlink.NewAttributeEncoder()
	if err := encodeConfig(ae, cfg); err != nil {
		t.Fatal(err)
	}
	got, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		0800 0100 90010000
		0800 0400 e8030000
		0800 0500 01000000
		0600 0600 0010 0000
	`) // FORWARD_DELAY 400 cs, AGEING_TIME 1000 cs, STP_STATE 1, PRIORITY 0x1000
	if hex.EncodeToString(got) != hex.EncodeToString(want) {
		t.Errorf("encodeConfig\n got %x\nwant %x", got, want)
	}

	// nil fields are left out; STP off is sent as 0.
	off := false
	ae = netlink.NewAttributeEncoder()
	if err := encodeConfig(ae, &Config{STP: &off}); err != nil {
		t.Fatal(err)
	}
	got, _ = ae.Encode()
	if want := "0800050000000000"; hex.EncodeToString(got) != want {
		t.Errorf("STP off: got %x want %s", got, want)
	}
}

func TestEncodeConfigRejects(t *testing.T) {
	for name, cfg := range map[string]*Config{
		"negative forward delay": {ForwardDelay: durp(-time.Second)},
		"negative ageing":        {AgeingTime: durp(-1)},
		"huge ageing":            {AgeingTime: durp(time.Duration(1) << 62)},
	} {
		if err := cfg.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (*Config)(nil).validate(); err != nil {
		t.Errorf("nil config: %v", err)
	}
}

func TestNewLinkRequestGolden(t *testing.T) {
	on := true
	b, err := newLinkRequest("br0", &Config{STP: &on}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		00 00 0000 00000000 00000000 00000000
		0800 0300 62723000
		1c00 1200
		  0b00 0100 627269646765 00 00
		  0c00 0280
		    0800 0500 01000000
	`) // ifinfomsg, IFLA_IFNAME "br0", IFLA_LINKINFO { KIND "bridge", DATA|NESTED { STP_STATE 1 } }
	if hex.EncodeToString(b) != hex.EncodeToString(want) {
		t.Errorf("newLinkRequest\n got %x\nwant %x", b, want)
	}

	// Without settings no IFLA_INFO_DATA is sent at all.
	b, err = newLinkRequest("br0", nil).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want = unhex(t, `00 00 0000 00000000 00000000 00000000  0800 0300 62723000  1000 1200 0b00 0100 627269646765 0000`)
	if hex.EncodeToString(b) != hex.EncodeToString(want) {
		t.Errorf("newLinkRequest(nil)\n got %x\nwant %x", b, want)
	}
}

func TestSetMasterRequestGolden(t *testing.T) {
	b, err := setMasterRequest(7, 3).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `00 00 0000 07000000 00000000 00000000  0800 0a00 03000000`)
	if hex.EncodeToString(b) != hex.EncodeToString(want) {
		t.Errorf("setMasterRequest(7, 3)\n got %x\nwant %x", b, want)
	}
	// nomaster is IFLA_MASTER 0, which the kernel reads as "detach".
	b, _ = setMasterRequest(7, 0).MarshalBinary()
	want = unhex(t, `00 00 0000 07000000 00000000 00000000  0800 0a00 00000000`)
	if hex.EncodeToString(b) != hex.EncodeToString(want) {
		t.Errorf("setMasterRequest(7, 0)\n got %x\nwant %x", b, want)
	}
}

func TestJoinAndFDBEntries(t *testing.T) {
	links := []linkMsg{
		{index: 1, name: "lo"},
		{index: 3, name: "br1", kind: "bridge", br: &bridgeAttrs{bridgeID: ID{Priority: 0x8000}}},
		{index: 2, name: "br0", kind: "bridge", flags: unix.IFF_UP, br: &bridgeAttrs{stpState: 1, ageingTime: 30000}},
		{index: 10, name: "v10", master: 2, slaveKind: "bridge", port: &portAttrs{no: 3, state: 3}},
		{index: 11, name: "v2", master: 2, slaveKind: "bridge", port: &portAttrs{no: 1, state: 1}},
		{index: 12, name: "bond0slave", master: 99, slaveKind: "bond"},
	}
	bs := join(links)
	if len(bs) != 2 || bs[0].Name != "br0" || bs[1].Name != "br1" {
		t.Fatalf("join: %+v", bs)
	}
	br0 := bs[0]
	if !br0.STP || !br0.Up || br0.AgeingTime != 300*time.Second {
		t.Errorf("br0: %+v", br0)
	}
	if len(br0.Ports) != 2 || br0.Ports[0].Name != "v10" || br0.Ports[1].Name != "v2" || br0.Ports[1].State != PortListening {
		t.Errorf("br0 ports (byte order, like brctl): %+v", br0.Ports)
	}
	if len(bs[1].Ports) != 0 {
		t.Errorf("br1 ports: %+v", bs[1].Ports)
	}

	mac := func(s string) []byte { m, _ := hexMAC(s); return m }
	entries := fdbEntries(br0, []fdbMsg{
		{ifindex: 11, master: 2, state: unix.NUD_REACHABLE, mac: mac("0a0000000002"), updated: 150},
		{ifindex: 10, master: 2, state: unix.NUD_PERMANENT, mac: mac("0a0000000001"), updated: 999},
		{ifindex: 2, master: 2, state: unix.NUD_PERMANENT, mac: mac("0a00000000ff")},  // the bridge's own: left out
		{ifindex: 10, master: 0, state: unix.NUD_PERMANENT, mac: mac("333300000001")}, // self entry: left out
		{ifindex: 20, master: 5, state: unix.NUD_REACHABLE, mac: mac("0a0000000003")}, // another bridge
	})
	if len(entries) != 2 {
		t.Fatalf("fdbEntries: %+v", entries)
	}
	if e := entries[0]; e.MAC.String() != "0a:00:00:00:00:01" || !e.Local || !e.Static || e.Ageing != 0 || e.PortNo != 3 || e.Port != "v10" {
		t.Errorf("entry 0: %+v", e)
	}
	if e := entries[1]; e.MAC.String() != "0a:00:00:00:00:02" || e.Local || e.Static || e.Ageing != 1500*time.Millisecond || e.PortNo != 1 {
		t.Errorf("entry 1: %+v", e)
	}
}

func hexMAC(s string) ([]byte, error) { return hex.DecodeString(s) }

func TestErrorShape(t *testing.T) {
	err := error(&Error{Op: "add port", Object: "v1 to br0", Err: detailf(ErrInUse, "v1 is already a port of bridge br1")})
	if got := err.Error(); got != "bridge: add port v1 to br0: v1 is already a port of bridge br1" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(err, ErrInUse) || !errors.Is(err, unix.EBUSY) || errors.Is(err, ErrNoDevice) {
		t.Errorf("errors.Is does not follow the cause")
	}
	k := kerr(&netlink.OpError{Op: "receive", Err: unix.EEXIST, Message: "x"})
	if !errors.Is(k, unix.EEXIST) || k.Error() != "file exists (x)" {
		t.Errorf("kerr: %v", k)
	}
}

func FuzzDecodeLink(f *testing.F) {
	for _, p := range []string{"testdata/link-bridge.hex", "testdata/link-port.hex", "testdata/port-dump-afbridge.hex"} {
		for _, b := range hexLines(f, p) {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeLink(b)
		if err == nil && len(b) < sizeofIfInfomsg {
			t.Fatalf("accepted %d bytes", len(b))
		}
		_ = join([]linkMsg{m})
	})
}

func FuzzDecodeFDB(f *testing.F) {
	for _, b := range hexLines(f, "testdata/fdb-dump.hex") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeFDB(b)
		if err == nil && (len(b) < sizeofNdmsg || b[0] != unix.AF_BRIDGE) {
			t.Fatalf("accepted %x", b)
		}
		_ = fdbEntries(Bridge{Index: int(m.master), Ports: []Port{{Index: int(m.ifindex)}}}, []fdbMsg{m})
	})
}
