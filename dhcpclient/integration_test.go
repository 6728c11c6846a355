package dhcpclient_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsbox/nsbox/dhcpclient"
	"github.com/nsbox/nsbox/dhcpserver"
	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// labClient is the real client (packet socket, rtnl applier) for one lab
// namespace.
type labClient struct {
	ns   *netns.Handle
	conn *rtnl.Conn
	c    *dhcpclient.Client
}

func newLabClient(t *testing.T, lab *testutil.DHCPLab, i int, opts ...dhcpclient.Option) *labClient {
	t.Helper()
	return newLabClientWith(t, lab, i, dhcpclient.Listen, opts...)
}

// newLabClientWith is newLabClient over the Conn that listen opens.
func newLabClientWith(t *testing.T, lab *testutil.DHCPLab, i int, listen func(*netns.Handle, string) (dhcpclient.Conn, error), opts ...dhcpclient.Option) *labClient {
	t.Helper()
	name := lab.Clients[i]
	h, err := netns.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	rc, err := rtnl.Dial(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	if err := rc.SetUp(ctx, lab.ClientDev); err != nil {
		t.Fatal(err)
	}
	link, err := rc.LinkByName(ctx, lab.ClientDev)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := listen(h, lab.ClientDev)
	if err != nil {
		t.Fatal(err)
	}
	ap := &dhcpclient.RtnlApplier{Conn: rc, Dev: lab.ClientDev, ResolvConf: dhcpclient.ResolvConfPath(name)}
	all := append([]dhcpclient.Option{dhcpclient.WithApplier(ap), dhcpclient.WithNetns(name),
		dhcpclient.WithFirstRetry(200 * time.Millisecond), dhcpclient.WithLogf(t.Logf)}, opts...)
	c, err := dhcpclient.New(lab.ClientDev, link.HardwareAddr, pc, all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &labClient{ns: h, conn: rc, c: c}
}

func macOf(t *testing.T, ns, dev string) string {
	t.Helper()
	var v []struct {
		Address string `json:"address"`
	}
	testutil.IPJSON(t, &v, "-n", ns, "link", "show", "dev", dev)
	if len(v) != 1 {
		t.Fatalf("ip link show %s in %s: %v", dev, ns, v)
	}
	return v[0].Address
}

// TestDnsmasqLeaseApplyRelease: nsbox's client against dnsmasq in a lab.
// The lease is checked with ip -j (address, lifetime, default route, MTU),
// dnsmasq's lease file and /etc/netns/NS/resolv.conf; the release must
// remove it from dnsmasq's file and from the interface.
func TestDnsmasqLeaseApplyRelease(t *testing.T) {
	lab := testutil.NewDHCPLab(t, 1, false)
	dns := lab.Prefix + ".53"
	dm := testutil.StartDnsmasq(t, lab, "--dhcp-option=option:dns-server,"+dns, "--dhcp-option=option:mtu,1400",
		"--dhcp-option=option:domain-name,lab.test")
	ns := lab.Clients[0]
	lc := newLabClient(t, lab, 0, dhcpclient.WithHostname("nsboxtest"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	l, err := lc.c.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := l.Addr.String()
	if !strings.HasPrefix(want, lab.Prefix+".") || l.Addr.Bits() != 24 {
		t.Fatalf("leased %s, want an address of %s.0/24", want, lab.Prefix)
	}
	addrs := testutil.IPv4Addrs(t, ns, lab.ClientDev)
	valid, ok := addrs[want]
	if !ok {
		t.Fatalf("ip addr in %s: %v, want %s", ns, addrs, want)
	}
	if valid <= 3500 || valid > 3600 {
		t.Errorf("valid_life_time %d, want the lease (3600s) minus a few seconds", valid)
	}
	routes := testutil.IPv4Routes(t, ns)
	if !slices.Contains(routes, "default via "+lab.ServerIP+" dev "+lab.ClientDev) {
		t.Errorf("routes %v lack the default via %s", routes, lab.ServerIP)
	}
	var links []struct {
		MTU int `json:"mtu"`
	}
	testutil.IPJSON(t, &links, "-n", ns, "link", "show", "dev", lab.ClientDev)
	if len(links) != 1 || links[0].MTU != 1400 {
		t.Errorf("ip link: %+v, want mtu 1400 (option 26)", links)
	}
	rc, err := os.ReadFile(dhcpclient.ResolvConfPath(ns))
	if err != nil || !strings.Contains(string(rc), "nameserver "+dns+"\n") || !strings.Contains(string(rc), "search lab.test\n") {
		t.Errorf("resolv.conf: %q, %v", rc, err)
	}
	mac := macOf(t, ns, lab.ClientDev)
	if got := testutil.DnsmasqLeases(dm.LeaseFile)[mac]; got != l.Addr.Addr().String() {
		t.Errorf("dnsmasq lease file has %q for %s, want %s", got, mac, l.Addr.Addr())
	}

	if err := lc.c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	gone := false
	for i := 0; i < 100 && !gone; i++ {
		_, has := testutil.DnsmasqLeases(dm.LeaseFile)[mac]
		gone = !has
		if !gone {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !gone {
		b, _ := os.ReadFile(dm.LeaseFile)
		t.Errorf("dnsmasq still lists %s after RELEASE: %s", mac, b)
	}
	if addrs := testutil.IPv4Addrs(t, ns, lab.ClientDev); len(addrs) != 0 {
		t.Errorf("addresses after release: %v", addrs)
	}
	if routes := testutil.IPv4Routes(t, ns); len(routes) != 0 {
		t.Errorf("routes after release: %v", routes)
	}
	if _, err := os.Stat(dhcpclient.ResolvConfPath(ns)); !os.IsNotExist(err) {
		t.Errorf("resolv.conf kept after release: %v", err)
	}
}

// TestDnsmasqClasslessRoutes: option 121 is installed and overrides option
// 3 (no default route via the router), per RFC 3442.
func TestDnsmasqClasslessRoutes(t *testing.T) {
	lab := testutil.NewDHCPLab(t, 1, true)
	gw := lab.Prefix + ".254"
	testutil.StartDnsmasq(t, lab, "--dhcp-option=option:classless-static-route,172.30.0.0/16,"+gw+",0.0.0.0/0,"+lab.Prefix+".253")
	lc := newLabClient(t, lab, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := lc.c.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	routes := testutil.IPv4Routes(t, lab.Clients[0])
	for _, want := range []string{"172.30.0.0/16 via " + gw + " dev eth0", "default via " + lab.Prefix + ".253 dev eth0"} {
		if !slices.Contains(routes, want) {
			t.Errorf("routes %v lack %q", routes, want)
		}
	}
	if slices.Contains(routes, "default via "+lab.ServerIP+" dev eth0") {
		t.Errorf("routes %v: option 3 used although option 121 was given", routes)
	}
}

// TestEmbeddedServerManyClients: 50 client namespaces on one bridge lease
// from nsbox's own server at once; all addresses distinct and configured.
func TestEmbeddedServerManyClients(t *testing.T) {
	n := 50
	if v := os.Getenv("NSBOX_DHCP_MANY"); v != "" {
		fmt.Sscan(v, &n)
	}
	lab := testutil.NewDHCPLab(t, n, true)
	sh, err := netns.Open(lab.ServerNS)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	srv, err := dhcpserver.New(netip.MustParsePrefix(lab.ServerIP+"/24"), netip.MustParseAddr(lab.Prefix+".10"),
		netip.MustParseAddr(lab.Prefix+".250"), dhcpserver.WithRouter(netip.MustParseAddr(lab.ServerIP)),
		dhcpserver.WithLeaseFile(t.TempDir()+"/leases.json"))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := dhcpserver.ListenUDP(sh, lab.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	testutil.RunInBackground(t, "Serve", func(ctx context.Context) error { return srv.Serve(ctx, pc) })
	clients := make([]*labClient, n)
	for i := range clients {
		// The packet socket: the server unicasts to clients that do not
		// ask for broadcast replies, which is what this test checks.
		clients[i] = newLabClientWith(t, lab, i, dhcpclient.ListenPacket, dhcpclient.WithLogf(func(string, ...any) {}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leases := make([]*dhcpclient.Lease, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, lc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leases[i], errs[i] = lc.c.Acquire(ctx)
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for i, l := range leases {
		if errs[i] != nil {
			t.Errorf("client %d: %v", i, errs[i])
			continue
		}
		a := l.Addr.String()
		if other, dup := seen[a]; dup {
			t.Errorf("%s leased to %s and %s", a, other, lab.Clients[i])
		}
		seen[a] = lab.Clients[i]
		if _, ok := testutil.IPv4Addrs(t, lab.Clients[i], lab.ClientDev)[a]; !ok {
			t.Errorf("%s: %s not configured (ip addr)", lab.Clients[i], a)
		}
	}
	if got := len(srv.Leases()); got != n {
		t.Errorf("server holds %d leases, want %d", got, n)
	}
	// The server unicast its replies (RFC 2131 4.1): it seeded its
	// neighbour table with every client's address and MAC.
	var neigh []struct {
		Dst    string `json:"dst"`
		Lladdr string `json:"lladdr"`
	}
	testutil.IPJSON(t, &neigh, "-n", lab.ServerNS, "-4", "neigh", "show", "dev", lab.Bridge)
	macs := map[string]string{}
	for _, e := range neigh {
		macs[e.Dst] = e.Lladdr
	}
	for i, l := range leases {
		if l == nil {
			continue
		}
		if got, want := macs[l.Addr.Addr().String()], macOf(t, lab.Clients[i], lab.ClientDev); got != want {
			t.Errorf("server neighbour entry for %s: %q, want %s", l.Addr.Addr(), got, want)
		}
	}
}

// TestListenMissingDevice: a clear error naming the device.
func TestListenMissingDevice(t *testing.T) {
	ns := testutil.NewNetns(t)
	h, err := netns.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := dhcpclient.Listen(h, "nosuch0"); err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("Listen on a missing device: %v", err)
	}
}

// serveEmbedded runs dhcpserver on the lab bridge; stop ends it early.
func serveEmbedded(t *testing.T, lab *testutil.DHCPLab, from, to string, opts ...dhcpserver.Option) (srv *dhcpserver.Server, stop func()) {
	t.Helper()
	sh, err := netns.Open(lab.ServerNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Close() })
	srv, err = dhcpserver.New(netip.MustParsePrefix(lab.ServerIP+"/24"), netip.MustParseAddr(lab.Prefix+from),
		netip.MustParseAddr(lab.Prefix+to), append([]dhcpserver.Option{dhcpserver.WithRouter(netip.MustParseAddr(lab.ServerIP))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := dhcpserver.ListenUDP(sh, lab.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	stop = testutil.RunInBackground(t, "Serve", func(ctx context.Context) error { return srv.Serve(ctx, pc) })
	return srv, stop
}

// TestARPCheckDeclines: a squatter on the LAN already uses the first pool
// address; with the ARP probe the client declines it (the server sees the
// DECLINE) and ends up with the second address.
func TestARPCheckDeclines(t *testing.T) {
	lab := testutil.NewDHCPLab(t, 2, true)
	squatter := lab.Clients[1]
	testutil.Cmd(t, "ip", "-n", squatter, "addr", "add", lab.Prefix+".10/24", "dev", lab.ClientDev)
	srv, _ := serveEmbedded(t, lab, ".10", ".11")
	h, err := netns.Open(lab.Clients[0])
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	mac := macOf(t, lab.Clients[0], lab.ClientDev)
	hw, _ := net.ParseMAC(mac)
	lc := newLabClient(t, lab, 0, dhcpclient.WithDeclineWait(100*time.Millisecond),
		dhcpclient.WithProber(&dhcpclient.ARPProber{NS: h, Dev: lab.ClientDev, HW: hw, Probes: 2, Interval: 100 * time.Millisecond}))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	l, err := lc.c.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Addr.Addr().String(); got != lab.Prefix+".11" {
		t.Fatalf("leased %s, want %s.11 (.10 is taken by the squatter)", got, lab.Prefix)
	}
	addrs := testutil.IPv4Addrs(t, lab.Clients[0], lab.ClientDev)
	if _, ok := addrs[lab.Prefix+".11/24"]; !ok || len(addrs) != 1 {
		t.Errorf("ip addr %v, want only %s.11/24", addrs, lab.Prefix)
	}
	ls := srv.Leases()
	if len(ls) != 1 || ls[0].Addr.String() != lab.Prefix+".11" {
		t.Errorf("server leases %+v, want only .11 (the .10 declined)", ls)
	}
}

// TestServerGoneExpiry: the server disappears after the bind; the client
// renews and rebinds in vain and removes the address at expiry (observed
// with ip), then starts over.
func TestServerGoneExpiry(t *testing.T) {
	lab := testutil.NewDHCPLab(t, 1, true)
	_, stop := serveEmbedded(t, lab, ".10", ".20", dhcpserver.WithLeaseTime(3*time.Second))
	states := make(chan dhcpclient.State, 64)
	lc := newLabClient(t, lab, 0, dhcpclient.WithMinRenewRetry(200*time.Millisecond), dhcpclient.WithMinLeaseTime(time.Second),
		dhcpclient.WithStateHook(func(s dhcpclient.State) {
			select {
			case states <- s:
			default:
			}
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := lc.c.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	for len(states) > 0 { // the states of Acquire
		<-states
	}
	if _, ok := testutil.IPv4Addrs(t, lab.Clients[0], lab.ClientDev)[l.Addr.String()]; !ok {
		t.Fatalf("%s not configured", l.Addr)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- lc.c.Run(rctx) }()
	var seen []dhcpclient.State
	deadline := time.After(10 * time.Second)
wait:
	for {
		select {
		case s := <-states:
			seen = append(seen, s)
			if s == dhcpclient.StateSelecting {
				break wait
			}
		case <-deadline:
			t.Fatalf("states %v: no SELECTING within 10s", seen)
		}
	}
	if addrs := testutil.IPv4Addrs(t, lab.Clients[0], lab.ClientDev); len(addrs) != 0 {
		t.Errorf("after expiry ip addr shows %v", addrs)
	}
	rcancel()
	if err := <-done; err == nil {
		t.Errorf("Run returned nil after losing its lease")
	}
	want := []dhcpclient.State{dhcpclient.StateRenewing, dhcpclient.StateRebinding, dhcpclient.StateInit}
	for _, w := range want {
		if !slices.Contains(seen, w) {
			t.Errorf("states %v lack %s", seen, w)
		}
	}
}
