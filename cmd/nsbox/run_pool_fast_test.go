package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// poolPayloadView is what the payloads of one `run --pool` path saw.
type poolPayloadView struct {
	addr     netip.Prefix
	route    string // "default via GW dev IF"
	hostLink int    // the host end's ifindex (the veth peer of eth0)
}

// runPoolView runs three sandboxes from pool name through the binary, with
// env, each payload an ip command exec'd first thing: its address, its
// routes, its link. It also returns how many Go runtime init lines
// (GODEBUG=inittrace=1) the three printed.
func runPoolView(t *testing.T, bin, name string, env []string, full func()) ([]poolPayloadView, int) {
	t.Helper()
	env = append(env, "GODEBUG=inittrace=1")
	run := func(args ...string) string {
		full() // an empty pool is Go's, whatever the path
		out, stderr, code := runNsboxEnv(t, env, nil, bin, append([]string{"run", "--pool", name, "--pid", "--net", "--"}, args...)...)
		if code != 0 {
			t.Fatalf("run --pool %q (%q): exit %d: %s", args, env, code, stderr)
		}
		return out + "\x00" + stderr
	}
	var views []poolPayloadView
	inits := 0
	split := func(s string) (string, string) {
		for i := range s {
			if s[i] == 0 {
				return s[:i], s[i+1:]
			}
		}
		return s, ""
	}
	for i := 0; i < 3; i++ {
		var v poolPayloadView
		out, stderr := split(run("ip", "-j", "-4", "addr", "show", "dev", "eth0"))
		inits += goInitLines(stderr)
		var addrs []ipLink
		if err := json.Unmarshal([]byte(out), &addrs); err != nil || len(addrs) != 1 || len(addrs[0].AddrInfo) != 1 {
			t.Fatalf("ip addr in the sandbox: %q: %v", out, err)
		}
		a := addrs[0].AddrInfo[0]
		v.addr = netip.PrefixFrom(netip.MustParseAddr(a.Local), a.Prefixlen)

		out, stderr = split(run("ip", "-j", "-4", "route", "show", "default"))
		inits += goInitLines(stderr)
		var routes []struct {
			Dst     string `json:"dst"`
			Gateway string `json:"gateway"`
			Dev     string `json:"dev"`
		}
		if err := json.Unmarshal([]byte(out), &routes); err != nil || len(routes) != 1 {
			t.Fatalf("ip route in the sandbox: %q: %v", out, err)
		}
		v.route = routes[0].Dst + " via " + routes[0].Gateway + " dev " + routes[0].Dev

		out, stderr = split(run("ip", "-j", "link", "show", "dev", "eth0"))
		inits += goInitLines(stderr)
		var links []struct {
			LinkIndex int `json:"link_index"`
		}
		if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 || links[0].LinkIndex <= 0 {
			t.Fatalf("ip link in the sandbox: %q: %v", out, err)
		}
		v.hostLink = links[0].LinkIndex
		views = append(views, v)
	}
	return views, inits
}

// TestRunPoolFastMatchesGo: `run --pool NAME --pid --net` through the C fast
// path (no Go runtime start: GODEBUG=inittrace=1 prints nothing) and through
// Go (NSBOX_NO_FASTPATH=1) give the payload's first instruction the same
// kind of address (in the pool's range, the pool's prefix) and the same
// default route; every slot is destroyed after its sandbox ended (its
// host-side veth leaves the bridge's namespace, the pool has none in use).
func TestRunPoolFastMatchesGo(t *testing.T) {
	ns := poolLab(t)
	bin := runBuildNsbox(t)
	name := testutil.UniqueName("tp")
	p := startPoolProc(t, bin, name, "-n", ns, "pool", "start", name, "--bridge", "br0", "--size", "4",
		"--range", "10.56.0.10-10.56.0.50/24", "--gateway", "10.56.0.1")
	waitReady(t, bin, name, 4, p)
	rng := netip.MustParsePrefix("10.56.0.0/24")
	from, to := netip.MustParseAddr("10.56.0.10"), netip.MustParseAddr("10.56.0.50")

	full := func() { waitReady(t, bin, name, 4, p) }
	fast, fastInits := runPoolView(t, bin, name, []string{"NSBOX_NO_FASTPATH=0"}, full)
	slow, slowInits := runPoolView(t, bin, name, []string{"NSBOX_NO_FASTPATH=1"}, full)
	if fastInits != 0 {
		t.Errorf("C fast path: the Go runtime started (%d inittrace lines)", fastInits)
	}
	if slowInits == 0 {
		t.Errorf("Go path: no inittrace line (the test cannot tell the paths apart)")
	}
	seen := map[netip.Addr]bool{}
	for i, v := range append(fast, slow...) {
		path := "C"
		if i >= len(fast) {
			path = "Go"
		}
		if v.addr.Bits() != 24 || !rng.Contains(v.addr.Addr()) || v.addr.Addr().Less(from) || to.Less(v.addr.Addr()) {
			t.Errorf("%s path: sandbox address %s, want one of the pool's range 10.56.0.10-50/24", path, v.addr)
		}
		if v.route != "default via 10.56.0.1 dev eth0" {
			t.Errorf("%s path: sandbox route %q", path, v.route)
		}
		if seen[v.addr.Addr()] {
			t.Errorf("%s path: address %s given twice (a slot reused)", path, v.addr.Addr())
		}
		seen[v.addr.Addr()] = true
	}
	// Every slot used is destroyed: its host end leaves the bridge's
	// namespace (the kernel removes it with the namespace, asynchronously).
	gone := func(idx int) bool {
		var links []struct {
			Ifindex int `json:"ifindex"`
		}
		testutil.IPJSON(t, &links, "-n", ns, "link", "show")
		for _, l := range links {
			if l.Ifindex == idx {
				return false
			}
		}
		return true
	}
	for _, v := range append(fast, slow...) {
		if !waitFor(10*time.Second, func() bool { return gone(v.hostLink) }) {
			t.Errorf("host end %d of a used slot still in %s 10 s after its sandbox ended", v.hostLink, ns)
		}
	}
	if st, code := poolStatus(t, bin, name); code != 0 || st.InUse != 0 {
		t.Errorf("pool status after the runs: %+v (exit %d), want none in use", st, code)
	}
}

// TestRunPoolFastLeavesToGo: what the C fast path cannot take from the pool
// (no pool, an empty pool) ends exactly as on the Go path: Go's one line,
// exit 125. An empty pool's claim is answered at once for C (it does not
// wait), and Go then waits --pool-timeout and fails (a range pool).
func TestRunPoolFastLeavesToGo(t *testing.T) {
	ns := poolLab(t)
	bin := runBuildNsbox(t)
	missing := testutil.UniqueName("tp")
	name := testutil.UniqueName("tp")
	p := startPoolProc(t, bin, name, "-n", ns, "pool", "start", name, "--bridge", "br0", "--size", "1",
		"--range", "10.56.0.60-10.56.0.60/24")
	waitReady(t, bin, name, 1, p)
	// The one address is held by a running sandbox: the pool stays empty.
	holder := startNsbox(t, bin, "run", "--pool", name, "--net", "--", "sleep", "60")
	if !waitFor(10*time.Second, func() bool { st, code := poolStatus(t, bin, name); return code == 0 && st.InUse == 1 }) {
		t.Fatalf("the holder did not claim the slot: %s", holder.Stderr.String())
	}
	for _, pool := range []string{missing, name} {
		var got [2]string
		for i, mode := range []string{"0", "1"} {
			_, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + mode}, nil, bin, "run", "--pool", pool, "--net", "--", "true")
			if code != exitSetupFailed || !strings.HasPrefix(stderr, "nsbox: ") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("run --pool %s (NSBOX_NO_FASTPATH=%s): exit %d, %q; want 125 and one nsbox: line", pool, mode, code, stderr)
			}
			got[i] = stderr
		}
		if got[0] != got[1] {
			t.Errorf("run --pool %s: fast path says %q, Go path %q", pool, got[0], got[1])
		}
	}
	if st, code := poolStatus(t, bin, name); code != 0 || st.InUse != 1 {
		t.Errorf("pool status after the refused runs: %+v (exit %d), want the holder's slot only", st, code)
	}
}

type poolNeigh struct {
	Dst    string   `json:"dst"`
	LLAddr string   `json:"lladdr"`
	State  []string `json:"state"`
}

// bridgeMAC returns br0's MAC in ns (ip -j).
func bridgeMAC(t *testing.T, ns string) string {
	t.Helper()
	var br []struct {
		Address string `json:"address"`
	}
	testutil.IPJSON(t, &br, "-n", ns, "link", "show", "br0")
	return br[0].Address
}

// bridgeNeigh returns the bridge namespace's neighbour entry for addr on
// br0 ("" when there is none).
func bridgeNeigh(t *testing.T, ns, addr string) string {
	t.Helper()
	var ns4 []poolNeigh
	testutil.IPJSON(t, &ns4, "-n", ns, "neigh", "show", "dev", "br0", "to", addr)
	for _, n := range ns4 {
		if n.Dst == addr {
			return n.LLAddr
		}
	}
	return ""
}

// TestPoolPrimesNeighbours: a pool pins its bridge's MAC (a port with a
// lower MAC no longer changes it); a ready namespace already holds its
// gateway's neighbour entry with that MAC, and the bridge's namespace one
// for the namespace's address with its veth's MAC, before any packet (the
// payload's first instruction sees it, on the C fast path and on Go's);
// the bridge's entry goes with the namespace; a MAC set by hand on the
// bridge reaches the namespaces that wait (seen inside them through the
// pool's fds) and the next payload.
func TestPoolPrimesNeighbours(t *testing.T) {
	ns := poolLab(t)
	bin := runBuildNsbox(t)
	name := testutil.UniqueName("tp")
	p := startPoolProc(t, bin, name, "-n", ns, "pool", "start", name, "--bridge", "br0", "--size", "1",
		"--range", "10.56.0.70-10.56.0.71/24", "--gateway", "10.56.0.1")
	waitReady(t, bin, name, 1, p)
	mac := bridgeMAC(t, ns)
	low := testutil.UniqueName("lo")
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", low, "address", "02:00:00:00:00:01", "type", "veth", "peer", "name", low+"p")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", low, "master", "br0", "up")
	if got := bridgeMAC(t, ns); got != mac {
		t.Errorf("br0 took its new port's MAC: %s, was %s (not pinned)", got, mac)
	}
	testutil.Cmd(t, "ip", "-n", ns, "link", "del", low)

	// payload runs one sandbox and returns its view: the gateway's
	// neighbour entry and its eth0's MAC.
	payload := func(mode string) (gw poolNeigh, ethMAC string) {
		t.Helper()
		out, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + mode}, nil, bin, "run", "--pool", name, "--net", "--",
			"sh", "-c", "ip -j neigh show dev eth0; ip -j link show dev eth0")
		if code != 0 {
			t.Fatalf("run --pool (NSBOX_NO_FASTPATH=%s): exit %d: %s", mode, code, stderr)
		}
		lines := strings.SplitN(strings.TrimSpace(out), "\n", 2)
		var neighs []poolNeigh
		var links []struct {
			Address string `json:"address"`
		}
		if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &neighs) != nil || json.Unmarshal([]byte(lines[1]), &links) != nil || len(links) != 1 {
			t.Fatalf("ip in the sandbox: %q", out)
		}
		for _, n := range neighs {
			if n.Dst == "10.56.0.1" {
				gw = n
			}
		}
		return gw, links[0].Address
	}
	for i, mode := range []string{"0", "1"} {
		addr := fmt.Sprintf("10.56.0.%d", 70+i) // the range is handed out round robin
		waitReady(t, bin, name, 1, p)
		held := bridgeNeigh(t, ns, addr)
		gw, eth := payload(mode)
		if gw.LLAddr != mac {
			t.Errorf("NSBOX_NO_FASTPATH=%s: the payload's first instruction sees the gateway at %q (%v), want the bridge's %s", mode, gw.LLAddr, gw.State, mac)
		}
		if held == "" || held != eth {
			t.Errorf("NSBOX_NO_FASTPATH=%s: the bridge's namespace held %q for %s before the claim, the sandbox's eth0 is %s", mode, held, addr, eth)
		}
		if !waitFor(10*time.Second, func() bool { return bridgeNeigh(t, ns, addr) != eth }) {
			t.Errorf("the bridge's neighbour entry for %s (%s) outlived its namespace", addr, eth)
		}
	}

	// A MAC set by hand: the waiting namespace gets it (the pool looks at
	// its bridge every 250 ms).
	waitReady(t, bin, name, 1, p)
	mac = "02:00:5e:00:53:10"
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "br0", "address", mac)
	if !waitFor(10*time.Second, func() bool { return slotGatewayMAC(t, p.Cmd.Process.Pid, ns) == mac }) {
		t.Fatalf("the waiting namespace still sees the gateway at %q, the bridge is now %s", slotGatewayMAC(t, p.Cmd.Process.Pid, ns), mac)
	}
	if gw, _ := payload("0"); gw.LLAddr != mac {
		t.Errorf("after a MAC change the payload sees the gateway at %q, want %s", gw.LLAddr, mac)
	}
}

// slotGatewayMAC looks into the namespaces pool process pid holds (by its
// fds; the bridge's namespace ns excluded) and returns the MAC of a
// neighbour entry for 10.56.0.1 in one of them.
func slotGatewayMAC(t *testing.T, pid int, ns string) string {
	t.Helper()
	bridge := ""
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+ns, &st); err == nil {
		bridge = fmt.Sprintf("net:[%d]", st.Ino)
	}
	self, _ := os.Readlink("/proc/self/ns/net")
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		l, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || !strings.HasPrefix(l, "net:") || l == bridge || l == self {
			continue
		}
		out, err := exec.Command("nsenter", "--net="+dir+"/"+e.Name(), "ip", "-j", "neigh", "show", "to", "10.56.0.1").Output()
		if err != nil {
			continue
		}
		var neighs []poolNeigh
		if json.Unmarshal(out, &neighs) == nil && len(neighs) == 1 {
			return neighs[0].LLAddr
		}
	}
	return ""
}

// TestRunPoolFastResolvConf: the default form (`run --pool NAME -- CMD`: a
// new mount namespace) takes the C fast path too (no Go runtime start), and
// its payload sees the pool's DNS servers in /etc/resolv.conf, a bind
// (mountinfo) of the file the pool wrote for the namespace, the same text
// as on the Go path; that file goes with the namespace; and the host's
// /etc/resolv.conf is untouched.
func TestRunPoolFastResolvConf(t *testing.T) {
	ns := poolLab(t)
	bin := runBuildNsbox(t)
	name := testutil.UniqueName("tp")
	p := startPoolProc(t, bin, name, "-n", ns, "pool", "start", name, "--bridge", "br0", "--size", "2",
		"--range", "10.56.0.80-10.56.0.89/24", "--dns", "10.56.0.53,10.56.0.54")
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	var confs [2]string
	for i, mode := range []string{"0", "1"} {
		waitReady(t, bin, name, 2, p)
		out, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + mode, "GODEBUG=inittrace=1"}, nil, bin,
			"run", "--pool", name, "--", "sh", "-c", "cat /etc/resolv.conf; echo @@; cat /proc/self/mountinfo")
		if code != 0 {
			t.Fatalf("run --pool (NSBOX_NO_FASTPATH=%s): exit %d: %s", mode, code, stderr)
		}
		if inits := goInitLines(stderr); (inits == 0) != (mode == "0") {
			t.Errorf("NSBOX_NO_FASTPATH=%s: %d Go runtime init lines", mode, inits)
		}
		conf, mounts, _ := strings.Cut(out, "@@\n")
		confs[i] = conf
		if !strings.Contains(conf, "nameserver 10.56.0.53\nnameserver 10.56.0.54\n") {
			t.Errorf("NSBOX_NO_FASTPATH=%s: the payload's /etc/resolv.conf: %q", mode, conf)
		}
		var src string
		for _, l := range strings.Split(mounts, "\n") {
			if f := strings.Fields(l); len(f) > 4 && f[4] == "/etc/resolv.conf" {
				src = f[3]
			}
		}
		if src == "" {
			t.Errorf("NSBOX_NO_FASTPATH=%s: no mount on /etc/resolv.conf in the sandbox", mode)
		}
		if mode == "0" {
			if !strings.HasPrefix(src, "/run/nsbox/pools/"+name+".d/") {
				t.Errorf("C path: /etc/resolv.conf is bound from %q, want the pool's file", src)
			}
			if !waitFor(10*time.Second, func() bool { _, err := os.Stat(src); return os.IsNotExist(err) }) {
				t.Errorf("the pool's file %s outlived its namespace", src)
			}
		}
	}
	if confs[0] != confs[1] {
		t.Errorf("resolv.conf: C path %q, Go path %q", confs[0], confs[1])
	}
	if now, err := os.ReadFile("/etc/resolv.conf"); err != nil || string(now) != string(host) {
		t.Errorf("the host's /etc/resolv.conf changed: %q (%v)", now, err)
	}
}
