package nsnet

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/dhcpserver"
	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
)

// serve runs nsbox's embedded DHCP server on br0 of the lab namespace.
func serve(t *testing.T, labName string) *dhcpserver.Server {
	t.Helper()
	h, err := netns.Open(labName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	srv, err := dhcpserver.New(netip.MustParsePrefix("10.77.0.1/24"),
		netip.MustParseAddr("10.77.0.100"), netip.MustParseAddr("10.77.0.150"),
		dhcpserver.WithRouter(netip.MustParseAddr("10.77.0.1")), dhcpserver.WithLeaseTime(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := dhcpserver.ListenUDP(h, "br0")
	if err != nil {
		t.Fatal(err)
	}
	testutil.RunInBackground(t, "serve", func(ctx context.Context) error { return srv.Serve(ctx, pc) })
	return srv
}

func TestDHCPLeaseSeenByFirstInstructionAndReleased(t *testing.T) {
	testutil.RequirePriv(t)
	name, h := lab(t)
	srv := serve(t, name)
	c := &Config{Bridge: "br0", BridgeNS: h, DHCP: true, DHCPTimeout: 10 * time.Second}
	out, att := spawn(t, c, "ip -4 -o addr show dev eth0; ip route show default")
	if !strings.Contains(out, "inet 10.77.0.1") || !strings.Contains(out, "/24") {
		t.Errorf("payload did not see a leased 10.77.0.x/24 address: %q", out)
	}
	if !strings.Contains(out, "default via 10.77.0.1 dev eth0") {
		t.Errorf("payload did not see the router as default route: %q", out)
	}
	if att.Addr.Addr().String() == "" || !strings.Contains(out, att.Addr.Addr().String()) {
		t.Errorf("attachment address %s is not what the payload saw: %q", att.Addr, out)
	}
	// The server holds the lease until the attachment releases it.
	held := func() int {
		n := 0
		for _, l := range srv.Leases() {
			if l.Addr == att.Addr.Addr() && !l.Offered && time.Now().Before(l.Expiry) {
				n++
			}
		}
		return n
	}
	if held() != 1 {
		t.Errorf("server does not hold the lease of %s: %+v", att.Addr, srv.Leases())
	}
	// The payload has exited: Detach releases the lease and the kernel
	// removes the veth with the sandbox's namespace.
	if err := att.Detach(context.Background()); err != nil {
		t.Fatalf("detach: %v", err)
	}
	var left []string
	for i := 0; i < 100; i++ {
		var links []struct {
			Ifname string `json:"ifname"`
		}
		testutil.IPJSON(t, &links, "-n", name, "link", "show")
		left = left[:0]
		for _, l := range links {
			if strings.HasPrefix(l.Ifname, "nsb") {
				left = append(left, l.Ifname)
			}
		}
		if len(left) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(left) != 0 {
		t.Errorf("veth %v left 5 s after the sandbox ended", left)
	}
	for i := 0; i < 100 && held() != 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if held() != 0 {
		t.Errorf("lease of %s still held after Close: %+v", att.Addr, srv.Leases())
	}
}

// A sandbox's DHCPRELEASE is the last thing its namespace sends: when the
// neighbour entry of the server is gone by then (the kernel collects stale
// entries once the table, shared by all namespaces, holds more than
// gc_thresh1, as with a pool of 100 sandboxes) and the server's ARP answer
// is slow, the release waited in the neighbour queue and was dropped with
// the namespace: dnsmasq kept the lease (TestRunPoolCLI under load). The
// payload flushes its neighbour table, the server ignores ARP for 300 ms
// (arp_ignore 8), so the kernel's second probe, 1 s later, is the one
// answered; Detach must still get the release to dnsmasq.
func TestReleaseReachesServerWithoutNeighbour(t *testing.T) {
	testutil.RequirePriv(t)
	dl := testutil.NewDHCPLab(t, 0, true)
	d := testutil.StartDnsmasq(t, dl)
	h, err := netns.Open(dl.ServerNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := &Config{Bridge: dl.Bridge, BridgeNS: h, DHCP: true}
	out, att := spawn(t, c, "ip neigh flush all; ip -j link show eth0")
	var link []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &link); err != nil || len(link) != 1 {
		t.Fatalf("payload output %q: %v", out, err)
	}
	mac := link[0].Address
	if _, ok := testutil.DnsmasqLeases(d.LeaseFile)[mac]; !ok {
		t.Fatalf("dnsmasq has no lease for %s: %v", mac, testutil.DnsmasqLeases(d.LeaseFile))
	}
	arpIgnore := "net.ipv4.conf." + dl.Bridge + ".arp_ignore"
	testutil.Cmd(t, "ip", "netns", "exec", dl.ServerNS, "sysctl", "-q", "-w", arpIgnore+"=8")
	restored := make(chan struct{})
	go func() {
		defer close(restored)
		time.Sleep(300 * time.Millisecond)
		testutil.CmdErr("ip", "netns", "exec", dl.ServerNS, "sysctl", "-q", "-w", arpIgnore+"=0")
	}()
	t.Cleanup(func() { <-restored })
	if err := att.Detach(context.Background()); err != nil {
		t.Fatalf("detach: %v", err)
	}
	for i := 0; ; i++ {
		if _, ok := testutil.DnsmasqLeases(d.LeaseFile)[mac]; !ok {
			break
		}
		if i == 100 {
			t.Fatalf("dnsmasq still holds the lease of %s 5 s after Detach: %v", mac, testutil.DnsmasqLeases(d.LeaseFile))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A TCP connection that the payload leaves behind (it exited with the
// socket open) is an orphan in the sandbox's namespace and holds the
// namespace until its FIN is acknowledged. Detach used to release the lease
// (removing the address and routes) at once: a FIN or its answer lost on
// the way (seen under a storm of 100 sandboxes) could then never be sent
// again, and the namespace, its veth and the port on the bridge stayed one
// to two minutes (bench/pool's settle). The lab drops the client's FINs: the
// first only (the kernel's retransmission, 200 ms later, must still leave
// with the address in place, and the server reads the end of the stream),
// or all of them (Detach aborts the orphan after its wait: the server reads
// a reset). Either way the port goes at once.
func TestDetachEndsOrphanedConnections(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "nft")
	testutil.RequireTool(t, "bash")
	for _, c := range []struct {
		name    string
		drop    string // the nft rule that drops the client's FINs
		dropped func(n int) bool
		want    error // what the server's read ends with
	}{
		{"first FIN lost", "tcp flags & fin == fin ip saddr @seen accept\n\t\ttcp dport PORT tcp flags & fin == fin add @seen { ip saddr } counter drop",
			func(n int) bool { return n == 1 }, nil},
		{"every FIN lost", "tcp flags & fin == fin counter drop",
			func(n int) bool { return n >= 1 }, syscall.ECONNRESET},
	} {
		t.Run(c.name, func(t *testing.T) { detachWithOrphan(t, c.drop, c.dropped, c.want) })
	}
}

func detachWithOrphan(t *testing.T, drop string, dropped func(int) bool, want error) {
	name, h := lab(t)
	serve(t, name)
	const port = "7799"
	var l net.Listener
	if err := netns.Do(h, func() error {
		var err error
		l, err = net.Listen("tcp4", "10.77.0.1:"+port)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// The server keeps the connection open and reads until the client's
	// FIN or reset: the client closes first.
	end := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			end <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c)
		end <- err
	}()
	rules := filepath.Join(t.TempDir(), "drop-fin.nft")
	if err := os.WriteFile(rules, []byte(`table inet dropfin {
	set seen { type ipv4_addr; flags dynamic; }
	chain in {
		type filter hook input priority 0; policy accept;
		tcp dport `+port+` `+strings.ReplaceAll(drop, "PORT", port)+`
	}
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Cmd(t, "ip", "netns", "exec", name, "nft", "-f", rules)
	c := &Config{Bridge: "br0", BridgeNS: h, DHCP: true, DHCPTimeout: 10 * time.Second, Logf: t.Logf}
	// bash opens the connection on fd 3 and exits with it open.
	_, att := spawn(t, c, "exec bash -c 'exec 3<>/dev/tcp/10.77.0.1/"+port+"'")
	var ruleset struct {
		Nftables []struct {
			Rule *struct {
				Expr []struct {
					Counter *struct{ Packets int } `json:"counter"`
				} `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(testutil.Cmd(t, "ip", "netns", "exec", name, "nft", "-j", "list", "chain", "inet", "dropfin", "in")), &ruleset); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range ruleset.Nftables {
		if o.Rule != nil {
			for _, e := range o.Rule.Expr {
				if e.Counter != nil {
					n += e.Counter.Packets
				}
			}
		}
	}
	if !dropped(n) {
		t.Fatalf("the lab dropped %d FINs of the payload's connection: the test does not make the orphan it means to", n)
	}
	if err := att.Detach(context.Background()); err != nil {
		t.Fatalf("detach: %v", err)
	}
	var left []string
	for i := 0; i < 100; i++ {
		var ports []struct {
			Ifname string `json:"ifname"`
		}
		testutil.IPJSON(t, &ports, "-n", name, "link", "show", "master", "br0")
		left = left[:0]
		for _, p := range ports {
			left = append(left, p.Ifname)
		}
		if len(left) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(left) != 0 {
		t.Errorf("br0 still has ports %v 5 s after Detach: the payload's orphaned connection holds the sandbox's namespace", left)
	}
	select {
	case err := <-end:
		if !errors.Is(err, want) {
			t.Errorf("the server's read of the payload's connection ended with %v, want %v", err, want)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the server's read of the payload's connection did not end")
	}
}
