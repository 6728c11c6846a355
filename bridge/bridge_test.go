package bridge_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/bridge"
	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

func TestMain(m *testing.M) { os.Exit(testutil.MainWithLeakCheck(m)) }

// dial opens an rtnl connection inside the test namespace ns.
func dial(t *testing.T, ns string) *rtnl.Conn {
	t.Helper()
	h, err := netns.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := rtnl.Dial(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ip(t *testing.T, ns string, args ...string) {
	t.Helper()
	testutil.Cmd(t, "ip", append([]string{"-n", ns}, args...)...)
}

func num(t *testing.T, m map[string]any, key string) int {
	t.Helper()
	v, ok := m[key].(float64)
	if !ok {
		t.Fatalf("ip -d -j: no number %q in %v", key, m)
	}
	return int(v)
}

func TestAddConfigGetDelete(t *testing.T) {
	ns := testutil.NewNetns(t)
	c := dial(t, ns)
	ctx := ctxT(t)

	prio := uint16(0x1000)
	fd, age := 5*time.Second, 100*time.Second
	if err := bridge.Add(ctx, c, "br0", &bridge.Config{Priority: &prio, ForwardDelay: &fd, AgeingTime: &age}); err != nil {
		t.Fatal(err)
	}
	d := testutil.LinkDetail(t, ns, "br0")
	if d == nil || d.Linkinfo.InfoKind != "bridge" {
		t.Fatalf("ip -d link: br0 is not a bridge: %+v", d)
	}
	info := d.Linkinfo.InfoData
	if num(t, info, "priority") != 0x1000 || num(t, info, "forward_delay") != 500 || num(t, info, "ageing_time") != 10000 || num(t, info, "stp_state") != 0 {
		t.Errorf("ip -d link info_data: %v", info)
	}
	if slices.Contains(d.Flags, "UP") {
		t.Errorf("new bridge is up: %v", d.Flags)
	}

	// Adding it again fails and says so.
	err := bridge.Add(ctx, c, "br0", nil)
	if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "br0 already exists") {
		t.Errorf("second Add: %v", err)
	}

	b, err := bridge.Get(ctx, c, "br0")
	if err != nil {
		t.Fatal(err)
	}
	if b.Priority != 0x1000 || b.ForwardDelay != fd || b.AgeingTime != age || b.STP || b.Up || len(b.Ports) != 0 {
		t.Errorf("Get: %+v", b)
	}
	// brctl reads the id from /sys; we read it from netlink.
	out := testutil.Brctl(t, ns, "show", "br0")
	if !strings.Contains(out, "br0\t\t"+b.ID.String()+"\tno") {
		t.Errorf("brctl show:\n%s\nwant id %s", out, b.ID)
	}

	if err := bridge.Delete(ctx, c, "br0", nil); err != nil {
		t.Fatal(err)
	}
	if d := testutil.LinkDetail(t, ns, "br0"); d != nil {
		t.Errorf("br0 still exists after Delete: %+v", d)
	}
	if err := bridge.Delete(ctx, c, "br0", nil); !errors.Is(err, bridge.ErrNoDevice) {
		t.Errorf("Delete of a missing bridge: %v", err)
	}
}

func TestAddRejectsBadInput(t *testing.T) {
	ns := testutil.NewNetns(t)
	c := dial(t, ns)
	ctx := ctxT(t)
	for _, name := range []string{"", "a/b", "waytoolongname1234", "a b"} {
		if err := bridge.Add(ctx, c, name, nil); !errors.Is(err, rtnl.ErrInvalidName) {
			t.Errorf("Add(%q): %v", name, err)
		}
	}
	neg := -time.Second
	if err := bridge.Add(ctx, c, "br0", &bridge.Config{AgeingTime: &neg}); err == nil {
		t.Errorf("Add with negative ageing time succeeded")
	}
	// With STP on, the kernel refuses a forward delay over 30 s: the
	// refused Set changes nothing.
	on, fd := true, 60*time.Second
	if err := bridge.Add(ctx, c, "br1", &bridge.Config{STP: &on}); err != nil {
		t.Fatal(err)
	}
	prio := uint16(5)
	if err := bridge.Set(ctx, c, "br1", &bridge.Config{ForwardDelay: &fd, Priority: &prio}); !errors.Is(err, unix.ERANGE) {
		t.Errorf("Set forward delay 60 s with STP on: %v, want ERANGE", err)
	}
	info := testutil.LinkDetail(t, ns, "br1").Linkinfo.InfoData
	if num(t, info, "forward_delay") != 1500 || num(t, info, "priority") != 32768 {
		t.Errorf("refused Set changed br1: %v", info)
	}
	if d := testutil.LinkDetail(t, ns, "br0"); d != nil {
		t.Errorf("refused Add left br0 behind")
	}
}

func TestPorts(t *testing.T) {
	ns := testutil.NewNetns(t)
	c := dial(t, ns)
	ctx := ctxT(t)
	for _, br := range []string{"br0", "br1"} {
		if err := bridge.Add(ctx, c, br, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"v1", "v2", "v10"} {
		ip(t, ns, "link", "add", v, "type", "veth", "peer", "name", "p"+v)
		if err := bridge.AddPort(ctx, c, "br0", v); err != nil {
			t.Fatal(err)
		}
	}
	ip(t, ns, "link", "set", "v1", "up")
	ip(t, ns, "link", "set", "pv1", "up")
	ip(t, ns, "link", "set", "br0", "up")

	masters := map[string]string{}
	states := map[string]string{}
	for _, p := range testutil.BridgeLinks(t, ns) {
		masters[p.Ifname], states[p.Ifname] = p.Master, p.State
	}
	for _, v := range []string{"v1", "v2", "v10"} {
		if masters[v] != "br0" {
			t.Errorf("bridge link: %s master %q, want br0", v, masters[v])
		}
	}

	b, err := bridge.Get(ctx, c, "br0")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range b.Ports {
		names = append(names, p.Name)
		if p.State.String() != states[p.Name] {
			t.Errorf("port %s: state %s, bridge link says %s", p.Name, p.State, states[p.Name])
		}
		if p.No == 0 {
			t.Errorf("port %s: no port number", p.Name)
		}
	}
	if strings.Join(names, " ") != "v1 v10 v2" {
		t.Errorf("ports %v, want byte order v1 v10 v2", names)
	}
	if !b.Up {
		t.Errorf("br0 should be up")
	}

	all, err := bridge.List(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "br0" || len(all[0].Ports) != 3 || all[1].Name != "br1" || len(all[1].Ports) != 0 {
		t.Errorf("List: %+v", all)
	}

	// Refusals change nothing.
	ip(t, ns, "link", "add", "w1", "type", "veth", "peer", "name", "pw1")
	for _, tc := range []struct {
		br, dev string
		want    error
		msg     string
	}{
		{"br1", "v1", bridge.ErrInUse, "v1 is already a port of bridge br0"},
		{"br0", "v1", bridge.ErrInUse, "v1 is already a port of br0"},
		{"br0", "br0", bridge.ErrLoop, "cannot add bridge br0 to itself"},
		{"br0", "br1", bridge.ErrLoop, "br1 is a bridge itself"},
		{"br0", "nosuch0", bridge.ErrNoDevice, "device nosuch0 does not exist"},
		{"nobr0", "w1", bridge.ErrNoDevice, "bridge nobr0 does not exist"},
		{"w1", "pw1", bridge.ErrNotBridge, "w1 is not a bridge (it is a veth)"},
		{"br0", "lo", bridge.ErrNotEthernet, "lo is a loopback device"},
	} {
		err := bridge.AddPort(ctx, c, tc.br, tc.dev)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("AddPort(%s, %s) = %v, want %v with %q", tc.br, tc.dev, err, tc.want, tc.msg)
		}
	}
	masters = map[string]string{}
	for _, p := range testutil.BridgeLinks(t, ns) {
		masters[p.Ifname] = p.Master
	}
	if masters["v1"] != "br0" || masters["w1"] != "" || masters["pw1"] != "" || len(masters) != 3 {
		t.Errorf("after refusals: masters %v", masters)
	}

	// Remove a port; removing it again is refused.
	if err := bridge.RemovePort(ctx, c, "br0", "v2"); err != nil {
		t.Fatal(err)
	}
	if d := testutil.LinkDetail(t, ns, "v2"); d == nil || d.Master != "" {
		t.Errorf("v2 after RemovePort: %+v", d)
	}
	if err := bridge.RemovePort(ctx, c, "br0", "v2"); !errors.Is(err, bridge.ErrNotPort) {
		t.Errorf("second RemovePort: %v", err)
	}
	if err := bridge.RemovePort(ctx, c, "br1", "v1"); !errors.Is(err, bridge.ErrNotPort) {
		t.Errorf("RemovePort from the wrong bridge: %v", err)
	}
	if d := testutil.LinkDetail(t, ns, "v1"); d == nil || d.Master != "br0" {
		t.Errorf("v1 moved by a refused RemovePort: %+v", d)
	}
}

func TestDelete(t *testing.T) {
	ns := testutil.NewNetns(t)
	c := dial(t, ns)
	ctx := ctxT(t)
	if err := bridge.Add(ctx, c, "br0", nil); err != nil {
		t.Fatal(err)
	}
	ip(t, ns, "link", "add", "v1", "type", "veth", "peer", "name", "p1")
	if err := bridge.AddPort(ctx, c, "br0", "v1"); err != nil {
		t.Fatal(err)
	}
	ip(t, ns, "link", "set", "br0", "up")

	err := bridge.Delete(ctx, c, "br0", nil)
	if !errors.Is(err, bridge.ErrBusy) || !strings.Contains(err.Error(), "br0 is up") || !strings.Contains(err.Error(), "still has ports v1") {
		t.Errorf("Delete of an up bridge with ports: %v", err)
	}
	ip(t, ns, "link", "set", "br0", "down")
	err = bridge.Delete(ctx, c, "br0", nil)
	if !errors.Is(err, bridge.ErrBusy) || strings.Contains(err.Error(), "is up") {
		t.Errorf("Delete of a down bridge with ports: %v", err)
	}
	if d := testutil.LinkDetail(t, ns, "v1"); d == nil || d.Master != "br0" {
		t.Fatalf("refused Delete changed v1: %+v", d)
	}
	// A device that is not a bridge is never deleted.
	if err := bridge.Delete(ctx, c, "v1", &bridge.DeleteOptions{Force: true}); !errors.Is(err, bridge.ErrNotBridge) {
		t.Errorf("Delete(v1): %v", err)
	}
	ip(t, ns, "link", "set", "br0", "up")
	if err := bridge.Delete(ctx, c, "br0", &bridge.DeleteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if d := testutil.LinkDetail(t, ns, "br0"); d != nil {
		t.Errorf("br0 survived a forced Delete")
	}
	if d := testutil.LinkDetail(t, ns, "v1"); d == nil || d.Master != "" {
		t.Errorf("v1 after forced Delete of its bridge: %+v", d)
	}
}

func TestSTPAndSettings(t *testing.T) {
	ns := testutil.NewNetns(t)
	c := dial(t, ns)
	ctx := ctxT(t)
	if err := bridge.Add(ctx, c, "br0", nil); err != nil {
		t.Fatal(err)
	}
	if err := bridge.SetSTP(ctx, c, "br0", true); err != nil {
		t.Fatal(err)
	}
	if v := num(t, testutil.LinkDetail(t, ns, "br0").Linkinfo.InfoData, "stp_state"); v == 0 {
		t.Errorf("stp_state %d after SetSTP on", v)
	}
	if out := testutil.Brctl(t, ns, "show", "br0"); !strings.Contains(out, "\tyes\t") {
		t.Errorf("brctl show after STP on:\n%s", out)
	}
	b, err := bridge.Get(ctx, c, "br0")
	if err != nil || !b.STP {
		t.Errorf("Get after STP on: %+v %v", b, err)
	}
	prio := uint16(7)
	age := 42 * time.Second
	if err := bridge.Set(ctx, c, "br0", &bridge.Config{Priority: &prio, AgeingTime: &age}); err != nil {
		t.Fatal(err)
	}
	info := testutil.LinkDetail(t, ns, "br0").Linkinfo.InfoData
	if num(t, info, "priority") != 7 || num(t, info, "ageing_time") != 4200 || num(t, info, "stp_state") == 0 {
		t.Errorf("after Set: %v", info)
	}
	if err := bridge.SetSTP(ctx, c, "br0", false); err != nil {
		t.Fatal(err)
	}
	if v := num(t, testutil.LinkDetail(t, ns, "br0").Linkinfo.InfoData, "stp_state"); v != 0 {
		t.Errorf("stp_state %d after SetSTP off", v)
	}
	ip(t, ns, "link", "add", "v1", "type", "veth", "peer", "name", "p1")
	if err := bridge.SetSTP(ctx, c, "v1", true); !errors.Is(err, bridge.ErrNotBridge) {
		t.Errorf("SetSTP on a veth: %v", err)
	}
}

// TestTraffic joins two client namespaces to a bridge that lives in a third
// one and checks that they reach each other through it, that their MACs then
// show in the bridge's forwarding database, and that after RemovePort they
// no longer reach each other.
func TestTraffic(t *testing.T) {
	testutil.RequireTool(t, "ping")
	brNS, c1, c2 := testutil.NewNetns(t), testutil.NewNetns(t), testutil.NewNetns(t)
	c := dial(t, brNS)
	ctx := ctxT(t)
	if err := bridge.Add(ctx, c, "br0", nil); err != nil {
		t.Fatal(err)
	}
	testutil.VethInto(t, brNS, "h1", c1, "eth0")
	testutil.VethInto(t, brNS, "h2", c2, "eth0")
	for i, cns := range []string{c1, c2} {
		ip(t, cns, "addr", "add", []string{"10.231.7.1/24", "10.231.7.2/24"}[i], "dev", "eth0")
		ip(t, cns, "link", "set", "eth0", "up")
	}
	for _, h := range []string{"h1", "h2"} {
		if err := bridge.AddPort(ctx, c, "br0", h); err != nil {
			t.Fatal(err)
		}
		ip(t, brNS, "link", "set", h, "up")
	}
	ip(t, brNS, "link", "set", "br0", "up")

	ping := func() error {
		_, err := testutil.CmdErr("ip", "netns", "exec", c1, "ping", "-c1", "-W1", "10.231.7.2")
		return err
	}
	var err error
	for try := 0; try < 10; try++ { // ports need a moment to reach forwarding; bounded
		if err = ping(); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("ping through the bridge: %v", err)
	}

	macs := map[string]string{}
	for i, cns := range []string{c1, c2} {
		var l []struct {
			Address string `json:"address"`
		}
		testutil.IPJSON(t, &l, "-n", cns, "link", "show", "eth0")
		macs[[]string{"h1", "h2"}[i]] = l[0].Address
	}
	fdb, err := bridge.FDB(ctx, c, "br0")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, e := range fdb {
		if !e.Local && macs[e.Port] == e.MAC.String() {
			found[e.Port] = true
			if e.PortNo == 0 || e.Static || e.Ageing > 30*time.Second {
				t.Errorf("learned entry %+v", e)
			}
		}
	}
	if !found["h1"] || !found["h2"] {
		t.Errorf("FDB %+v lacks the clients' MACs %v", fdb, macs)
	}
	// Every entry we report, iproute2 reports on the same port.
	seen := map[string]bool{}
	for _, e := range testutil.BridgeFDB(t, brNS, "br0") {
		seen[e.MAC+" "+e.Ifname] = true
	}
	for _, e := range fdb {
		if !seen[e.MAC.String()+" "+e.Port] {
			t.Errorf("FDB entry %s on %s not in bridge fdb", e.MAC, e.Port)
		}
	}

	if err := bridge.RemovePort(ctx, c, "br0", "h2"); err != nil {
		t.Fatal(err)
	}
	if err := ping(); err == nil {
		t.Errorf("ping still works after RemovePort")
	}
}

// TestSession checks that a Session resolves the bridge once and still
// notices a bridge deleted and re-created behind its back.
func TestSession(t *testing.T) {
	ns := testutil.NewNetns(t)
	c := dial(t, ns)
	ctx := ctxT(t)
	s := bridge.NewSession(c)
	defer s.Close()
	ip(t, ns, "link", "add", "br0", "type", "bridge")
	for _, v := range []string{"v1", "v2", "v3"} {
		ip(t, ns, "link", "add", v, "type", "veth", "peer", "name", "p"+v)
	}
	if err := s.AddPort(ctx, "br0", "v1"); err != nil {
		t.Fatal(err)
	}
	// Replace br0 with another bridge of the same name (a new ifindex).
	ip(t, ns, "link", "del", "br0")
	ip(t, ns, "link", "add", "br0", "type", "bridge")
	if err := s.AddPort(ctx, "br0", "v2"); err != nil {
		t.Fatalf("AddPort after br0 was re-created: %v", err)
	}
	if d := testutil.LinkDetail(t, ns, "v2"); d == nil || d.Master != "br0" {
		t.Errorf("v2: %+v", d)
	}
	// The refusals still hold with a remembered bridge.
	if err := s.AddPort(ctx, "br0", "v2"); !errors.Is(err, bridge.ErrInUse) {
		t.Errorf("second AddPort of v2: %v", err)
	}
	// Replace br0 with a veth: the session must not attach to it.
	ip(t, ns, "link", "set", "v2", "nomaster")
	ip(t, ns, "link", "del", "br0")
	ip(t, ns, "link", "add", "br0", "type", "veth", "peer", "name", "pbr0")
	if err := s.AddPort(ctx, "br0", "v3"); !errors.Is(err, bridge.ErrNotBridge) {
		t.Errorf("AddPort to a br0 that became a veth: %v", err)
	}
	if d := testutil.LinkDetail(t, ns, "v3"); d == nil || d.Master != "" {
		t.Errorf("v3: %+v", d)
	}
}

// TestCanceledContext checks that a done context stops an operation before
// it changes anything.
func TestCanceledContext(t *testing.T) {
	ns := testutil.NewNetns(t)
	c := dial(t, ns)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := bridge.Add(ctx, c, "br0", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Add with a canceled context: %v", err)
	}
	if d := testutil.LinkDetail(t, ns, "br0"); d != nil {
		t.Errorf("Add with a canceled context created br0")
	}
	if _, err := bridge.List(ctx, c); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled context: %v", err)
	}
}
