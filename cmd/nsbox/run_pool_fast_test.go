package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
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
func runPoolView(t *testing.T, bin, name string, env []string) ([]poolPayloadView, int) {
	t.Helper()
	env = append(env, "GODEBUG=inittrace=1")
	run := func(args ...string) string {
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

	fast, fastInits := runPoolView(t, bin, name, []string{"NSBOX_NO_FASTPATH=0"})
	slow, slowInits := runPoolView(t, bin, name, []string{"NSBOX_NO_FASTPATH=1"})
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

// TestPoolForgetsNeighbours: a claimed namespace carries no neighbour entry
// it learned while it waited. The bridge's namespace pings the ready slot
// (so the slot learns the gateway's MAC from the ARP request), the bridge
// then changes its MAC (as a bridge without one of its own does when its
// lowest port comes or goes); the payload, on the C fast path and on the Go
// path, must not see the gateway at the old MAC (its first packets would go
// nowhere).
func TestPoolForgetsNeighbours(t *testing.T) {
	testutil.RequireTool(t, "ping")
	ns := poolLab(t)
	bin := runBuildNsbox(t)
	name := testutil.UniqueName("tp")
	p := startPoolProc(t, bin, name, "-n", ns, "pool", "start", name, "--bridge", "br0", "--size", "1",
		"--range", "10.56.0.70-10.56.0.70/24", "--gateway", "10.56.0.1")
	for i, mode := range []string{"0", "1"} {
		waitReady(t, bin, name, 1, p)
		testutil.Cmd(t, "ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", "10.56.0.70")
		var br []struct {
			Address string `json:"address"`
		}
		testutil.IPJSON(t, &br, "-n", ns, "link", "show", "br0")
		old := br[0].Address
		mac := fmt.Sprintf("02:00:5e:00:53:%02x", 0x10+i)
		testutil.Cmd(t, "ip", "-n", ns, "link", "set", "br0", "address", mac)
		out, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + mode}, nil, bin, "run", "--pool", name, "--net", "--", "ip", "-j", "neigh", "show", "dev", "eth0")
		if code != 0 {
			t.Fatalf("run --pool (NSBOX_NO_FASTPATH=%s): exit %d: %s", mode, code, stderr)
		}
		var neighs []struct {
			Dst    string `json:"dst"`
			LLAddr string `json:"lladdr"`
		}
		if err := json.Unmarshal([]byte(out), &neighs); err != nil {
			t.Fatalf("ip neigh in the sandbox: %q: %v", out, err)
		}
		for _, n := range neighs {
			if n.Dst == "10.56.0.1" && n.LLAddr != mac {
				t.Errorf("NSBOX_NO_FASTPATH=%s: the payload sees the gateway at %s (bridge's old MAC %s, now %s)", mode, n.LLAddr, old, mac)
			}
		}
	}
}
