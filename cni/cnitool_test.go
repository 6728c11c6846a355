package cni_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nsbox/nsbox/internal/testutil"
)

// checkResultMatchesNS compares a result with what ip -j sees in the
// container namespace: the interface, its MAC, every address and route.
func checkResultMatchesNS(t *testing.T, l *lab, res *current.Result, ns, ifName string) {
	t.Helper()
	var ctr *current.Interface
	idx := -1
	for i, itf := range res.Interfaces {
		if itf.Sandbox == "/run/netns/"+ns && itf.Name == ifName {
			ctr, idx = itf, i
		}
	}
	if ctr == nil {
		t.Fatalf("result has no interface %s in %s: %+v", ifName, ns, res.Interfaces)
	}
	in := link(t, ns, ifName)
	if in == nil {
		t.Fatalf("ip -n %s: no %s", ns, ifName)
	}
	if in.Address != ctr.Mac {
		t.Errorf("mac: result %s, ip %s", ctr.Mac, in.Address)
	}
	if !slices.Contains(in.Flags, "UP") {
		t.Errorf("%s is not up: %v", ifName, in.Flags)
	}
	have := map[string]bool{}
	for _, a := range in.AddrInfo {
		have[fmt.Sprintf("%s/%d", a.Local, a.PrefixLen)] = true
	}
	n := 0
	for _, ip := range res.IPs {
		if ip.Interface == nil || *ip.Interface != idx {
			continue
		}
		n++
		if !have[ip.Address.String()] {
			t.Errorf("address %s of the result not in ip -j addr %v", ip.Address.String(), have)
		}
	}
	if n == 0 {
		t.Errorf("result has no address for %s: %+v", ifName, res.IPs)
	}
	routes := testutil.IPv4Routes(t, ns)
	for _, r := range res.Routes {
		dst := r.Dst.String()
		if ones, _ := r.Dst.Mask.Size(); ones == 0 {
			dst = "default"
		}
		want := fmt.Sprintf("%s via %s dev %s", dst, r.GW, ifName)
		if !slices.Contains(routes, want) {
			t.Errorf("route %q of the result not in ip -j route %q", want, routes)
		}
	}
	// The host end: a port of the bridge, named in the result.
	var hostIf string
	for _, itf := range res.Interfaces {
		if itf.Sandbox == "" && itf.Name != l.Bridge && strings.HasPrefix(itf.Name, "nsc") {
			hostIf = itf.Name
		}
	}
	h := link(t, l.RT, hostIf)
	if h == nil || h.Master != l.Bridge {
		t.Errorf("host veth %q: %+v, want a port of %s", hostIf, h, l.Bridge)
	}
}

// TestRangeLifecycle: add, check, del, del, gc, status through cnitool
// with nsbox-range, a gateway on the bridge and masquerade.
func TestRangeLifecycle(t *testing.T) {
	l := newLab(t)
	l.writeConflist("1.1.0", l.nsboxConf(l.rangeIPAM(), map[string]any{"isDefaultGateway": true, "ipMasq": true, "mtu": 1400, "hairpinMode": true}))
	ctr := testutil.NewNetns(t)
	res := parseResult(t, l.cni("add", ctr))
	checkResultMatchesNS(t, l, res, ctr, "eth0")
	if len(res.IPs) != 1 || res.IPs[0].Gateway.String() != l.Subnet+".1" || !strings.HasPrefix(res.IPs[0].Address.String(), l.Subnet+".") {
		t.Fatalf("ips %+v: want one address of %s.0/24 via %s.1", res.IPs, l.Subnet, l.Subnet)
	}
	addr := res.IPs[0].Address.IP.String()
	// host-local's layout: a file named by the address holding id and ifname.
	if got, want := l.allocations()[addr], containerID(ctr)+"\r\neth0"; got != want {
		t.Errorf("allocation file %s: %q, want %q", addr, got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(l.DataDir, l.Net, "last_reserved_ip.0")); string(b) != addr {
		t.Errorf("last_reserved_ip.0 = %q, want %s", b, addr)
	}
	br := link(t, l.RT, l.Bridge)
	if br == nil || !slices.ContainsFunc(br.AddrInfo, func(a ipAddr) bool { return a.Local == l.Subnet+".1" }) {
		t.Errorf("bridge %s lacks the gateway %s.1: %+v", l.Bridge, l.Subnet, br)
	}
	if in := link(t, ctr, "eth0"); in.MTU != 1400 {
		t.Errorf("mtu %d, want 1400", in.MTU)
	}
	out := testutil.Cmd(t, "bridge", "-n", l.RT, "-d", "link", "show")
	if !strings.Contains(out, "hairpin on") {
		t.Errorf("bridge -d link: no port with hairpin on:\n%s", out)
	}
	rules := fmt.Sprint(nftRules(t, l.RT))
	if !strings.Contains(rules, "masquerade") || !strings.Contains(rules, l.Subnet+".0") || !strings.Contains(rules, "name=cni+network+"+l.Net) {
		t.Errorf("nft rules %v: want the network's masquerade of %s.0/24", rules, l.Subnet)
	}

	l.cni("check", ctr)
	l.cni("status", ctr)
	l.cni("del", ctr)
	l.cni("del", ctr) // idempotent
	if len(l.allocations()) != 0 {
		t.Errorf("allocations after del: %v", l.allocations())
	}
	if p := ports(t, l.RT, l.Bridge); len(p) != 0 {
		t.Errorf("bridge ports after del: %v", p)
	}
	// The bridge nsbox created keeps the MAC it was given (a bridge
	// without a set MAC takes its ports' and changes with them).
	if br := link(t, l.RT, l.Bridge); br == nil || br.Address != res.Interfaces[0].Mac {
		t.Errorf("bridge MAC after the last port left: %+v, result said %s", br, res.Interfaces[0].Mac)
	}
	if link(t, ctr, "eth0") != nil {
		t.Errorf("eth0 still in %s after del", ctr)
	}
	if r := nftRules(t, l.RT); len(r) != 0 {
		t.Errorf("nft rules after the last del: %v", r)
	}
	l.cni("gc", ctr)
	// A DEL after the namespace is gone also succeeds.
	res = parseResult(t, l.cni("add", ctr))
	testutil.Cmd(t, "ip", "netns", "del", ctr)
	testutil.Cmd(t, "ip", "netns", "add", ctr) // for t.Cleanup's delete
	l.cni("del", ctr)
	if len(l.allocations()) != 0 {
		t.Errorf("allocations after del of a dead namespace (it held %s): %v", res.IPs[0].Address.IP, l.allocations())
	}
}

// TestChainPortmapTuning: nsbox first in a conflist, Debian's reference
// portmap and tuning after it; they read nsbox's prevResult.
func TestChainPortmapTuning(t *testing.T) {
	l := newLab(t)
	testutil.RequireTool(t, "iptables")
	l.writeConflist("1.0.0",
		l.nsboxConf(l.rangeIPAM(), map[string]any{"isDefaultGateway": true}),
		map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}, "snat": true},
		map[string]any{"type": "tuning", "sysctl": map[string]any{"net.ipv4.conf.eth0.arp_notify": "1"}, "mac": "02:11:22:33:44:55"},
	)
	ctr := testutil.NewNetns(t)
	capArgs := `CAP_ARGS={"portMappings":[{"hostPort":18080,"containerPort":80,"protocol":"tcp"}]}`
	res := parseResult(t, l.cni("add", ctr, capArgs))
	// tuning changed the MAC and reported it in the result it passed on.
	in := link(t, ctr, "eth0")
	if in.Address != "02:11:22:33:44:55" {
		t.Errorf("tuning: eth0 mac %s", in.Address)
	}
	checkResultMatchesNS(t, l, res, ctr, "eth0")
	b, err := testutil.CmdErr("ip", "netns", "exec", ctr, "cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify")
	if err != nil || strings.TrimSpace(b) != "1" {
		t.Errorf("tuning sysctl arp_notify = %q (%v), want 1", b, err)
	}
	// portmap's DNAT to the address nsbox gave.
	nat, err := testutil.CmdErr("ip", "netns", "exec", l.RT, "iptables-save", "-t", "nat")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(nat, "18080") || !strings.Contains(nat, res.IPs[0].Address.IP.String()+":80") {
		t.Errorf("portmap: no DNAT of 18080 to %s:80 in\n%s", res.IPs[0].Address.IP, nat)
	}
	// No CHECK here: Debian's portmap 1.1.1 fails its own CHECK without
	// IPv6 mappings ("could not check ipv6 dnat: chain ... not found"),
	// whatever plugin comes before it.
	l.cni("del", ctr, capArgs)
	l.cni("del", ctr, capArgs)
	nat, _ = testutil.CmdErr("ip", "netns", "exec", l.RT, "iptables-save", "-t", "nat")
	if strings.Contains(nat, "18080") {
		t.Errorf("portmap rule left after del:\n%s", nat)
	}
	if len(l.allocations()) != 0 || len(ports(t, l.RT, l.Bridge)) != 0 {
		t.Errorf("left after del: %v %v", l.allocations(), ports(t, l.RT, l.Bridge))
	}
}

// TestDelegatedHostLocal: an ipam type nsbox does not implement goes to
// that plugin (Debian's host-local, spec <= 1.0, under a 1.1.0 network).
func TestDelegatedHostLocal(t *testing.T) {
	l := newLab(t)
	hl := filepath.Join(t.TempDir(), "host-local")
	l.writeConflist("1.1.0", l.nsboxConf(map[string]any{
		"type": "host-local", "dataDir": hl,
		"ranges": [][]map[string]any{{{"subnet": l.Subnet + ".0/24", "rangeStart": l.Subnet + ".50"}}},
	}, map[string]any{"isDefaultGateway": true}))
	ctr := testutil.NewNetns(t)
	res := parseResult(t, l.cni("add", ctr))
	checkResultMatchesNS(t, l, res, ctr, "eth0")
	addr := res.IPs[0].Address.IP.String()
	if addr != l.Subnet+".50" {
		t.Errorf("address %s, want host-local's first %s.50", addr, l.Subnet)
	}
	if b, err := os.ReadFile(filepath.Join(hl, l.Net, addr)); err != nil || !strings.Contains(string(b), containerID(ctr)) {
		t.Errorf("host-local file of %s: %q %v", addr, b, err)
	}
	l.cni("check", ctr)
	l.cni("status", ctr)
	l.cni("del", ctr)
	if _, err := os.Stat(filepath.Join(hl, l.Net, addr)); !os.IsNotExist(err) {
		t.Errorf("host-local kept %s after del: %v", addr, err)
	}
	l.cni("del", ctr)
}

// TestGCEmptyValidList: cnitool gc passes no valid attachment, so every
// allocation and veth of the network is stale and goes.
func TestGCEmptyValidList(t *testing.T) {
	l := newLab(t)
	l.writeConflist("1.1.0", l.nsboxConf(l.rangeIPAM(), map[string]any{"ipMasq": true}))
	var nss []string
	for i := 0; i < 3; i++ {
		ns := testutil.NewNetns(t)
		nss = append(nss, ns)
		l.cni("add", ns)
	}
	if n := len(l.allocations()); n != 3 {
		t.Fatalf("%d allocations, want 3", n)
	}
	if p := ports(t, l.RT, l.Bridge); len(p) != 3 {
		t.Fatalf("ports %v, want 3", p)
	}
	l.cni("gc", nss[0])
	if a := l.allocations(); len(a) != 0 {
		t.Errorf("allocations after gc: %v", a)
	}
	if p := ports(t, l.RT, l.Bridge); len(p) != 0 {
		t.Errorf("veths after gc: %v", p)
	}
	for _, ns := range nss {
		if link(t, ns, "eth0") != nil {
			t.Errorf("%s still has eth0 after gc", ns)
		}
	}
	if r := nftRules(t, l.RT); len(r) != 0 {
		t.Errorf("nft rules after gc: %v", r)
	}
}

// TestParallel100: 100 ADDs at once get 100 distinct addresses.
func TestParallel100(t *testing.T) {
	l := newLab(t)
	l.writeConflist("1.1.0", l.nsboxConf(l.rangeIPAM(), nil))
	const n = 100
	nss := make([]string, n)
	for i := range nss {
		nss[i] = testutil.NewNetns(t)
	}
	addrs := make([]string, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range nss {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			l.delOnCleanup(nss[i])
			out, e, code := l.run(nil, nil, l.cnitool, "add", l.Net, "/run/netns/"+nss[i])
			if code != 0 {
				errs[i] = fmt.Sprintf("exit %d: %s %s", code, out, e)
				return
			}
			r, err := current.NewResult([]byte(out))
			if err != nil {
				errs[i] = err.Error()
				return
			}
			res, _ := current.GetResult(r)
			addrs[i] = res.IPs[0].Address.IP.String()
		}(i)
	}
	wg.Wait()
	seen := map[string]int{}
	for i, a := range addrs {
		if errs[i] != "" {
			t.Errorf("add %d: %s", i, errs[i])
			continue
		}
		if j, dup := seen[a]; dup {
			t.Errorf("add %d and %d both got %s", j, i, a)
		}
		seen[a] = i
		// What the namespace has is what the result said.
		got := testutil.IPv4Addrs(t, nss[i], "eth0")
		if _, ok := got[a+"/24"]; !ok {
			t.Errorf("%s: eth0 has %v, result said %s", nss[i], got, a)
		}
	}
	if len(seen) != n || len(l.allocations()) != n {
		t.Errorf("%d distinct addresses, %d allocation files; want %d", len(seen), len(l.allocations()), n)
	}
	for i := range nss {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if out, e, code := l.run(nil, nil, l.cnitool, "del", l.Net, "/run/netns/"+nss[i]); code != 0 {
				t.Errorf("del %d: %s %s", i, out, e)
			}
		}(i)
	}
	wg.Wait()
	if len(l.allocations()) != 0 || len(ports(t, l.RT, l.Bridge)) != 0 {
		t.Errorf("left after 100 dels: %d allocations, ports %v", len(l.allocations()), ports(t, l.RT, l.Bridge))
	}
}
