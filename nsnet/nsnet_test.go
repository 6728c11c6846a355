package nsnet

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/nsclone"
)

func TestMain(m *testing.M) { os.Exit(testutil.MainWithLeakCheck(m)) }

func TestValidate(t *testing.T) {
	gw := netip.MustParseAddr("10.9.0.1")
	cases := []struct {
		name string
		c    Config
		want string // "" = valid
	}{
		{"static", Config{Bridge: "br0", Addr: netip.MustParsePrefix("10.9.0.2/24"), Gateway: gw}, ""},
		{"dhcp", Config{Bridge: "br0", DHCP: true}, ""},
		{"no bridge", Config{DHCP: true}, "no bridge"},
		{"bad bridge", Config{Bridge: "a/b", DHCP: true}, "bridge"},
		{"bad ifname", Config{Bridge: "br0", IfName: "0123456789abcdef", DHCP: true}, "interface"},
		{"both", Config{Bridge: "br0", DHCP: true, Addr: netip.MustParsePrefix("10.9.0.2/24")}, "exclusive"},
		{"neither", Config{Bridge: "br0"}, "need DHCP"},
		{"gateway outside", Config{Bridge: "br0", Addr: netip.MustParsePrefix("10.9.0.2/24"), Gateway: netip.MustParseAddr("10.8.0.1")}, "outside"},
		{"gateway self", Config{Bridge: "br0", Addr: netip.MustParsePrefix("10.9.0.2/24"), Gateway: netip.MustParseAddr("10.9.0.2")}, "own address"},
		{"network address", Config{Bridge: "br0", Addr: netip.MustParsePrefix("10.9.0.0/24")}, "network address"},
		{"dhcp with gateway", Config{Bridge: "br0", DHCP: true, Gateway: gw}, "gateway"},
		// What the C fast path leaves to Go, Go refuses too.
		{"prefix 0", Config{Bridge: "br0", Addr: netip.MustParsePrefix("10.0.0.2/0")}, "prefix length of 0"},
		{"broadcast", Config{Bridge: "br0", Addr: netip.MustParsePrefix("10.9.0.255/24")}, "broadcast"},
		{"loopback", Config{Bridge: "br0", Addr: netip.MustParsePrefix("127.0.0.2/8")}, "loopback"},
		{"multicast", Config{Bridge: "br0", Addr: netip.MustParsePrefix("224.0.0.2/24")}, "multicast"},
		{"this network", Config{Bridge: "br0", Addr: netip.MustParsePrefix("0.1.2.3/8")}, "0.0.0.0/8"},
		{"reserved", Config{Bridge: "br0", Addr: netip.MustParsePrefix("250.1.2.3/8")}, "reserved"},
		{"v6 loopback", Config{Bridge: "br0", Addr: netip.MustParsePrefix("::1/128")}, "loopback"},
		{"v6 multicast", Config{Bridge: "br0", Addr: netip.MustParsePrefix("ff02::5/64")}, "multicast"},
		{"gateway multicast", Config{Bridge: "br0", Addr: netip.MustParsePrefix("224.0.0.2/4"), Gateway: netip.MustParseAddr("224.0.0.1")}, "multicast"},
		{"/31 has no broadcast", Config{Bridge: "br0", Addr: netip.MustParsePrefix("10.9.0.1/31")}, ""},
		{"percent ifname", Config{Bridge: "br0", IfName: "eth%d", DHCP: true}, "interface"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// lab makes a namespace holding a bridge br0 with 10.77.0.1/24, made with ip.
func lab(t *testing.T) (string, *netns.Handle) {
	t.Helper()
	name := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", name, "link", "add", "br0", "type", "bridge")
	testutil.Cmd(t, "ip", "-n", name, "addr", "add", "10.77.0.1/24", "dev", "br0")
	testutil.Cmd(t, "ip", "-n", name, "link", "set", "br0", "up")
	h, err := netns.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return name, h
}

// spawn runs script under sh in a new network namespace wired by c, and
// returns its output.
func spawn(t *testing.T, c *Config, script string) (string, *Attachment) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var att *Attachment
	spec := &nsclone.Spec{
		Path: "/bin/sh", Args: []string{"sh", "-c", script},
		Namespaces: nsclone.Net, Stdout: w, Stderr: w,
		BeforeExec: func(pid int) error {
			a, err := Attach(ctx, c, pid)
			att = a
			return err
		},
	}
	st, err := nsclone.Run(ctx, spec)
	w.Close()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	if st.Code() != 0 {
		t.Fatalf("payload exited %d: %s", st.Code(), out.String())
	}
	return out.String(), att
}

func TestStaticAddressSeenByFirstInstruction(t *testing.T) {
	testutil.RequirePriv(t)
	name, h := lab(t)
	c := &Config{Bridge: "br0", BridgeNS: h, Addr: netip.MustParsePrefix("10.77.0.2/24"), Gateway: netip.MustParseAddr("10.77.0.1")}
	// The payload's first command reads its own network: the address and
	// the default route are there before it runs.
	out, att := spawn(t, c, "ip -j addr show dev eth0; echo ===; ip -j route show default; echo ===; ping -c1 -W2 10.77.0.1 >/dev/null && echo reached")
	parts := strings.Split(out, "===")
	if len(parts) != 3 {
		t.Fatalf("unexpected payload output %q", out)
	}
	var addrs []struct {
		Ifname   string `json:"ifname"`
		Address  string `json:"address"` // the link's MAC
		AddrInfo []struct {
			Family    string `json:"family"`
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(parts[0]), &addrs); err != nil {
		t.Fatalf("decode %q: %v", parts[0], err)
	}
	found := false
	for _, a := range addrs {
		for _, ai := range a.AddrInfo {
			if a.Ifname == "eth0" && ai.Family == "inet" && ai.Local == "10.77.0.2" && ai.Prefixlen == 24 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("payload did not see 10.77.0.2/24 on eth0: %s", parts[0])
	}
	// Attachment.MAC is eth0's, as the payload sees it.
	if len(addrs) != 1 || att.MAC.String() != addrs[0].Address || len(att.MAC) != 6 {
		t.Errorf("Attachment.MAC %v, payload's eth0 %+v", att.MAC, addrs)
	}
	if !strings.Contains(parts[1], `"gateway":"10.77.0.1"`) {
		t.Errorf("payload did not see the default route via 10.77.0.1: %s", parts[1])
	}
	if !strings.Contains(parts[2], "reached") {
		t.Errorf("payload could not ping the bridge: %q", parts[2])
	}
	// While attached, the host end is a port of br0 (seen by ip).
	if err := att.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	var links []struct {
		Ifname string `json:"ifname"`
	}
	testutil.IPJSON(t, &links, "-n", name, "link", "show", "master", "br0")
	if len(links) != 0 {
		t.Errorf("veth left on br0 after Close: %+v", links)
	}
}

func TestTwoSandboxesReachEachOther(t *testing.T) {
	testutil.RequirePriv(t)
	_, h := lab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The first sandbox sleeps (at most 20 s); the second pings it.
	c1 := &Config{Bridge: "br0", BridgeNS: h, Addr: netip.MustParsePrefix("10.77.0.11/24")}
	var att1 *Attachment
	p1, err := nsclone.Start(ctx, &nsclone.Spec{
		Path: "/bin/sleep", Args: []string{"sleep", "20"}, Namespaces: nsclone.Net,
		BeforeExec: func(pid int) error {
			a, err := Attach(ctx, c1, pid)
			att1 = a
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p1.Signal(os.Kill)
		_, _ = p1.Wait()
		_ = att1.Close(context.Background())
	})
	c2 := &Config{Bridge: "br0", BridgeNS: h, Addr: netip.MustParsePrefix("10.77.0.12/24")}
	out, att2 := spawn(t, c2, "ping -c1 -W3 10.77.0.11 >/dev/null && echo reached || echo unreachable")
	defer att2.Close(context.Background())
	if !strings.Contains(out, "reached") || strings.Contains(out, "unreachable") {
		t.Fatalf("sandbox 2 could not reach sandbox 1: %q", out)
	}
}

func TestMissingBridgeLeavesNothing(t *testing.T) {
	testutil.RequirePriv(t)
	name, h := lab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, br := range []string{"nosuchbr", "lo"} {
		c := &Config{Bridge: br, BridgeNS: h, Addr: netip.MustParsePrefix("10.77.0.2/24")}
		_, err := nsclone.Run(ctx, &nsclone.Spec{
			Path: "/bin/true", Args: []string{"true"}, Namespaces: nsclone.Net,
			BeforeExec: func(pid int) error { _, err := Attach(ctx, c, pid); return err },
		})
		if err == nil {
			t.Fatalf("bridge %s: payload ran without a network", br)
		}
		if !strings.Contains(err.Error(), br) {
			t.Errorf("bridge %s: error %q does not name it", br, err)
		}
	}
	var links []struct {
		Ifname string `json:"ifname"`
	}
	testutil.IPJSON(t, &links, "-n", name, "link", "show")
	for _, l := range links {
		if strings.HasPrefix(l.Ifname, "nsb") {
			t.Errorf("veth %s left behind", l.Ifname)
		}
	}
}

// CheckBridge's handle is what Attach uses: no second connection and no
// lookup of the bridge by name; an attachment's Close leaves the shared
// connection open for the next sandbox, and Bridge.Close closes it.
func TestCheckedBridgeReused(t *testing.T) {
	testutil.RequirePriv(t)
	name, h := lab(t)
	ctx := context.Background()
	c := &Config{Bridge: "br0", BridgeNS: h, Addr: netip.MustParsePrefix("10.77.0.2/24")}
	br, err := CheckBridge(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	c.Checked = br
	for i := 0; i < 2; i++ {
		out, att := spawn(t, c, "ip -j link show eth0 >/dev/null && ping -c1 -W2 10.77.0.1 >/dev/null && echo reached")
		if !strings.Contains(out, "reached") {
			t.Errorf("sandbox %d: %q", i, out)
		}
		if att.hostConn != br.conn {
			t.Errorf("sandbox %d: Attach dialled its own connection instead of CheckBridge's", i)
		}
		if err := att.Close(ctx); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	var links []struct {
		Ifname string `json:"ifname"`
	}
	testutil.IPJSON(t, &links, "-n", name, "link", "show", "master", "br0")
	if len(links) != 0 {
		t.Errorf("veths left on br0: %+v", links)
	}
	if err := br.Close(); err != nil {
		t.Errorf("Bridge.Close: %v", err)
	}
	// A stale Checked (closed) makes Attach dial again.
	if out, att := spawn(t, c, "ping -c1 -W2 10.77.0.1 >/dev/null && echo reached"); !strings.Contains(out, "reached") {
		t.Errorf("after Bridge.Close: %q", out)
	} else if err := att.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// The host end of a sandbox's veth is named after its pid, and the veth of
// a dead sandbox lives until the kernel has destroyed that sandbox's
// namespace (under load, seen more than a minute later), by which time
// the pid may be reused: Attach must neither fail on the name being taken
// (EEXIST) nor delete the link that has it (it may be a live sandbox's);
// it takes the next name. The stale links are made with ip, right before
// Attach, with the names of the child's first tries.
func TestHostNameTakenTakesNext(t *testing.T) {
	testutil.RequirePriv(t)
	name, h := lab(t)
	c := &Config{Bridge: "br0", BridgeNS: h, Addr: netip.MustParsePrefix("10.77.0.2/24")}
	const taken = 2
	var stale []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var att *Attachment
	var child int
	st, err := nsclone.Run(ctx, &nsclone.Spec{
		Path: "/bin/sh", Args: []string{"sh", "-c", "ping -c1 -W2 10.77.0.1 >/dev/null && echo reached"},
		Namespaces: nsclone.Net, Stdout: w, Stderr: w,
		BeforeExec: func(pid int) error {
			child = pid
			for try := 0; try < taken; try++ {
				n := HostIfNameTry(pid, try)
				testutil.Cmd(t, "ip", "-n", name, "link", "add", n, "type", "veth", "peer", "name", "st"+strconv.Itoa(try))
				stale = append(stale, n)
			}
			a, err := Attach(ctx, c, pid)
			att = a
			return err
		},
	})
	w.Close()
	if err != nil {
		t.Fatalf("run with %v taken: %v", stale, err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	if st.Code() != 0 || !strings.Contains(out.String(), "reached") {
		t.Fatalf("payload exited %d: %q", st.Code(), out.String())
	}
	var ports []struct {
		Ifname string `json:"ifname"`
	}
	testutil.IPJSON(t, &ports, "-n", name, "link", "show", "master", "br0")
	want := HostIfNameTry(child, taken)
	if len(ports) != 1 || ports[0].Ifname != want {
		t.Errorf("ports of br0 = %+v, want the one %s", ports, want)
	}
	for _, n := range stale {
		var l []struct {
			Ifname string `json:"ifname"`
		}
		testutil.IPJSON(t, &l, "-n", name, "link", "show", "dev", n)
		if len(l) != 1 {
			t.Errorf("the stale link %s was deleted", n)
		}
	}
	if err := att.Close(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.IPJSON(t, &ports, "-n", name, "link", "show", "master", "br0")
	if len(ports) != 0 {
		t.Errorf("veth left on br0 after Close: %+v", ports)
	}
}
