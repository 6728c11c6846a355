package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/poolwire"
	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/pool"
)

// bridgePorts counts the ports of br in ns, as ip sees them.
func bridgePorts(t *testing.T, ns, br string) int {
	t.Helper()
	var links []map[string]any
	testutil.IPJSON(t, &links, "-n", ns, "link", "show", "master", br)
	return len(links)
}

// poolStatus runs nsbox -j pool status NAME.
func poolStatus(t *testing.T, bin, name string) (pool.Status, int) {
	t.Helper()
	out, _, code := runNsbox(t, bin, nil, "-j", "pool", "status", name)
	var st pool.Status
	if code == 0 {
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("pool status -j: %q: %v", out, err)
		}
	}
	return st, code
}

// startPoolProc starts `nsbox ARGS` (a pool start of NAME) in the
// background; when t ends the process is killed and then the socket file
// that a killed pool leaves is removed.
func startPoolProc(t *testing.T, bin, name string, args ...string) *testutil.Proc {
	t.Helper()
	t.Cleanup(func() { // runs after the kill below
		os.Remove(pool.SocketPath(name))
		os.RemoveAll(poolwire.ResolvDir(name))
	})
	return startNsbox(t, bin, args...)
}

func waitReady(t *testing.T, bin, name string, n int, p *testutil.Proc) {
	t.Helper()
	if !waitFor(30*time.Second, func() bool { st, code := poolStatus(t, bin, name); return code == 0 && st.Ready == n }) {
		st, code := poolStatus(t, bin, name)
		t.Fatalf("pool %s not ready after 30s: %+v (exit %d): %s", name, st, code, p.Stderr.String())
	}
}

// poolSandboxView is what a pool sandbox's payload reports about itself.
type poolSandboxView struct {
	netns  string // net:[INODE]
	mac    string
	addr   string
	routes string
}

// TestRunPoolCLI: 100 concurrent run --pool get 100 distinct leased
// addresses, each seen (with its default route) by the payload's first
// command; afterwards nothing of theirs is left: no named namespace, the
// bridge has --size ports again, every lease they held is released in
// dnsmasq's file; pool stop releases the rest.
func TestRunPoolCLI(t *testing.T) {
	dl := testutil.NewDHCPLab(t, 0, true)
	// .100-.200 and .20-.99: room for 100 in use and 10 ready.
	d := testutil.StartDnsmasq(t, dl, fmt.Sprintf("--dhcp-range=%s.20,%s.99,255.255.255.0,1h", dl.Prefix, dl.Prefix),
		"--log-dhcp", "--log-facility=-")
	bin := runBuildNsbox(t)
	name := testutil.UniqueName("tp")
	const size, n = 10, 100
	p := startPoolProc(t, bin, name, "-n", dl.ServerNS, "pool", "start", name, "--bridge", dl.Bridge, "--size", fmt.Sprint(size), "--dhcp", "-v")
	waitReady(t, bin, name, size, p)
	if got := bridgePorts(t, dl.ServerNS, dl.Bridge); got != size {
		t.Fatalf("bridge has %d ports with %d ready", got, size)
	}

	// Each payload reports what it sees first, then waits until all 100
	// have reported, so that all hold their namespaces at once.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	script := `{ readlink /proc/self/ns/net; ip -j link show eth0; ip -j -4 addr show dev eth0; ip -j -4 route show default; } > "$0.tmp" && mv "$0.tmp" "$0"
i=0; while [ ! -e "$1" ] && [ $i -lt 1000 ]; do sleep 0.1; i=$((i+1)); done`
	views := make([]poolSandboxView, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			report := filepath.Join(dir, fmt.Sprint(i))
			// 2 min, not runNsbox's 30 s: each waits for all 100 (a shared
			// 2-core machine under load takes its time to start them).
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_, stderr, code := runCaptured(t, exec.CommandContext(ctx, bin, "run", "--pool", name, "--pool-timeout", "60s", "--", "sh", "-c", script, report, filepath.Join(dir, "go")))
			out, _ := os.ReadFile(report)
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if code != 0 || len(lines) != 4 {
				errs[i] = fmt.Sprintf("exit %d, %q, %s", code, out, stderr)
				return
			}
			var link []struct{ Address string }
			var addr []struct {
				AddrInfo []struct{ Local string } `json:"addr_info"`
			}
			if json.Unmarshal([]byte(lines[1]), &link) != nil || json.Unmarshal([]byte(lines[2]), &addr) != nil ||
				len(link) != 1 || len(addr) != 1 || len(addr[0].AddrInfo) != 1 {
				errs[i] = fmt.Sprintf("unexpected output %q", out)
				return
			}
			views[i] = poolSandboxView{netns: lines[0], mac: link[0].Address, addr: addr[0].AddrInfo[0].Local, routes: lines[3]}
		}()
	}
	if !waitFor(100*time.Second, func() bool {
		ents, _ := os.ReadDir(dir)
		k := 0
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".tmp") {
				k++
			}
		}
		return k == n
	}) {
		t.Errorf("not all %d sandboxes reported within 100s", n)
	}
	if st, _ := poolStatus(t, bin, name); st.InUse != n {
		t.Errorf("status with %d sandboxes running: %+v", n, st)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	addrs, macs, inodes := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, v := range views {
		if errs[i] != "" {
			t.Fatalf("sandbox %d: %s", i, errs[i])
		}
		if addrs[v.addr] || macs[v.mac] || inodes[v.netns] {
			t.Fatalf("sandbox %d shares its address, MAC or namespace with another: %+v", i, v)
		}
		addrs[v.addr], macs[v.mac], inodes[v.netns] = true, true, true
		if !strings.HasPrefix(v.addr, dl.Prefix+".") || !strings.Contains(v.routes, `"gateway":"`+dl.ServerIP+`"`) {
			t.Fatalf("sandbox %d: address %s, default route %s", i, v.addr, v.routes)
		}
	}
	// Nothing of theirs is named or mounted: no /run/netns entry and no
	// mount of their namespaces.
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/run/netns", e.Name()), &st) == nil && inodes[fmt.Sprintf("net:[%d]", st.Ino)] {
			t.Fatalf("/run/netns/%s is a pool sandbox's namespace", e.Name())
		}
	}
	for ino := range inodes {
		if strings.Contains(string(mi), ino) {
			t.Fatalf("mountinfo shows %s", ino)
		}
	}
	// The pool is back to exactly --size ports and leases: the used ones
	// were destroyed (never reused) and their leases released.
	if !waitFor(20*time.Second, func() bool {
		st, _ := poolStatus(t, bin, name)
		return bridgePorts(t, dl.ServerNS, dl.Bridge) == size && st.Ready == size && st.InUse == 0
	}) {
		st, _ := poolStatus(t, bin, name)
		t.Fatalf("bridge has %d ports, status %+v, want %d ready and ports", bridgePorts(t, dl.ServerNS, dl.Bridge), st, size)
	}
	if !waitFor(10*time.Second, func() bool {
		leases := testutil.DnsmasqLeases(d.LeaseFile)
		for mac := range leases {
			if macs[mac] {
				return false
			}
		}
		return len(leases) == size
	}) {
		t.Fatalf("dnsmasq leases after the sandboxes ended: %v (sandbox MACs %v)\npool:\n%s\ndnsmasq:\n%s",
			testutil.DnsmasqLeases(d.LeaseFile), macs, p.Stderr.String(), d.Proc.Stderr.String())
	}
	if _, stderr, code := runNsbox(t, bin, nil, "pool", "stop", name); code != 0 {
		t.Fatalf("pool stop: exit %d: %s", code, stderr)
	}
	if exited, err := p.Wait(10 * time.Second); !exited || err != nil {
		t.Fatalf("pool start after stop: exited %v, %v: %s", exited, err, p.Stderr.String())
	}
	if !waitFor(10*time.Second, func() bool {
		return len(testutil.DnsmasqLeases(d.LeaseFile)) == 0 && bridgePorts(t, dl.ServerNS, dl.Bridge) == 0
	}) {
		t.Fatalf("after pool stop: leases %v, %d ports", testutil.DnsmasqLeases(d.LeaseFile), bridgePorts(t, dl.ServerNS, dl.Bridge))
	}
	if _, err := os.Stat(pool.SocketPath(name)); !os.IsNotExist(err) {
		t.Fatalf("socket after stop: %v", err)
	}
}

// poolLab is a namespace with bridge br0 (10.56.0.1/24) and an outside
// link, for range pools.
func poolLab(t *testing.T) string {
	ns := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "br0", "type", "bridge", "forward_delay", "0")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "10.56.0.1/24", "dev", "br0")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "br0", "up")
	return ns
}

// TestPoolSIGKILL: a SIGKILLed pool leaves no namespace or veth once the
// kernel has torn them down, and its NAT rules go at the next nsbox call.
func TestPoolSIGKILL(t *testing.T) {
	testutil.RequireTool(t, "nft")
	ns := poolLab(t)
	bin := runBuildNsbox(t)
	name := testutil.UniqueName("tp")
	p := startPoolProc(t, bin, name, "-n", ns, "pool", "start", name, "--bridge", "br0", "--size", "8", "--range", "10.56.0.10-10.56.0.50/24", "--nat")
	waitReady(t, bin, name, 8, p)
	if exists, _ := nsboxTable(t, ns); !exists {
		t.Fatal("pool --nat added no table")
	}
	p.Cmd.Process.Kill()
	p.Wait(10 * time.Second)
	if !waitFor(10*time.Second, func() bool {
		var veths []map[string]any
		testutil.IPJSON(t, &veths, "-n", ns, "link", "show", "type", "veth")
		return len(veths) == 0
	}) {
		t.Fatalf("veths left 10s after SIGKILL of the pool: %d ports", bridgePorts(t, ns, "br0"))
	}
	_, stderr, code := runNsbox(t, bin, nil, "run", "--pool", name, "--", "true")
	if code != exitSetupFailed || !strings.Contains(stderr, "pool is not running") {
		t.Fatalf("run --pool of a killed pool: exit %d, %q", code, stderr)
	}
	if _, _, code := runNsbox(t, bin, nil, "-n", ns, "nat", "list"); code != 0 {
		t.Fatalf("nat list: exit %d", code)
	}
	if exists, rules := nsboxTable(t, ns); exists || len(rules) != 0 {
		t.Fatalf("NAT of the killed pool after the next nsbox call: %v %q", exists, rules)
	}
	os.Remove(pool.SocketPath(name)) // the one file a killed pool leaves; the next start replaces it
}

// TestPoolSIGKILLReleasesLeases: the leases of a DHCP pool killed with
// SIGKILL are released (gone from dnsmasq's lease file, not left to
// expire) by the next pool start of the same name, which then leases its
// own; once that one stops, dnsmasq holds none.
func TestPoolSIGKILLReleasesLeases(t *testing.T) {
	dl := testutil.NewDHCPLab(t, 0, true)
	d := testutil.StartDnsmasq(t, dl, fmt.Sprintf("--dhcp-range=%s.20,%s.99,255.255.255.0,1h", dl.Prefix, dl.Prefix))
	bin := runBuildNsbox(t)
	name := testutil.UniqueName("tp")
	args := []string{"-n", dl.ServerNS, "pool", "start", name, "--bridge", dl.Bridge, "--size", "3", "--dhcp"}
	p := startPoolProc(t, bin, name, args...)
	waitReady(t, bin, name, 3, p)
	var dead map[string]string
	if !waitFor(10*time.Second, func() bool { dead = testutil.DnsmasqLeases(d.LeaseFile); return len(dead) == 3 }) {
		t.Fatalf("dnsmasq leases with a pool of 3 ready: %v", dead)
	}
	p.Cmd.Process.Kill()
	p.Wait(10 * time.Second)
	if got := testutil.DnsmasqLeases(d.LeaseFile); len(got) != 3 {
		t.Fatalf("dnsmasq leases right after SIGKILL: %v (want the 3 still held)", got)
	}
	p2 := startPoolProc(t, bin, name, args...)
	waitReady(t, bin, name, 3, p2)
	if !waitFor(10*time.Second, func() bool {
		got := testutil.DnsmasqLeases(d.LeaseFile)
		for mac := range dead {
			if _, ok := got[mac]; ok {
				return false
			}
		}
		return len(got) == 3
	}) {
		t.Fatalf("dnsmasq leases after the next pool start: %v; the killed pool's were %v: %s", testutil.DnsmasqLeases(d.LeaseFile), dead, p2.Stderr.String())
	}
	if _, stderr, code := runNsbox(t, bin, nil, "pool", "stop", name); code != 0 {
		t.Fatalf("pool stop: exit %d: %s", code, stderr)
	}
	p2.Wait(10 * time.Second)
	if !waitFor(10*time.Second, func() bool { return len(testutil.DnsmasqLeases(d.LeaseFile)) == 0 }) {
		t.Fatalf("dnsmasq leases after pool stop: %v", testutil.DnsmasqLeases(d.LeaseFile))
	}
	if _, err := os.Stat(poolwire.ResolvDir(name)); !os.IsNotExist(err) {
		t.Fatalf("%s after pool stop: %v", poolwire.ResolvDir(name), err)
	}
}

// TestPoolBadInput: each mistake is one nsbox: line with the right exit
// code, and leaves nothing.
func TestPoolBadInput(t *testing.T) {
	ns := poolLab(t)
	bin := runBuildNsbox(t)
	name := testutil.UniqueName("tp")
	oneLine := func(stderr, want string) bool {
		return strings.Count(stderr, "\n") == 1 && strings.HasPrefix(stderr, "nsbox: ") && strings.Contains(stderr, want)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--pool", name, "--", "true"}, exitSetupFailed, "pool is not running"},
		{[]string{"run", "--pool", "a/b", "--", "true"}, exitUsage, "pool name"},
		{[]string{"run", "--pool", name, "--netns", "x", "--", "true"}, exitUsage, "--pool and --netns exclude each other"},
		{[]string{"-n", ns, "pool", "start", name, "--bridge", "br0", "--size", "5", "--range", "10.56.0.10-10.56.0.12/24"}, exitFailed, "holds 3 addresses, fewer than the size 5"},
		{[]string{"-n", ns, "pool", "start", name, "--bridge", "nosuch", "--size", "1", "--dhcp"}, exitFailed, "bridge nosuch does not exist"},
		{[]string{"-n", ns, "pool", "start", name, "--bridge", "br0", "--size", "1"}, exitUsage, "exactly one of --dhcp and --range"},
		{[]string{"-n", ns, "pool", "start", name, "--bridge", "br0", "--size", "1", "--range", "10.56.0.10-10.56.0.5/24"}, exitUsage, "TO comes before FROM"},
		{[]string{"pool", "status", name}, exitFailed, "pool is not running"},
	} {
		_, stderr, code := runNsbox(t, bin, nil, c.args...)
		if code != c.code || !oneLine(stderr, c.want) {
			t.Errorf("nsbox %q: exit %d, %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
	if got := bridgePorts(t, ns, "br0"); got != 0 {
		t.Fatalf("bad input left %d ports", got)
	}
	// A refused start leaves the bridge's MAC as the kernel assigned it
	// (a running pool pins it: addr_assign_type 3, "set by user").
	if out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/sys/class/net/br0/addr_assign_type").Output(); err != nil || strings.TrimSpace(string(out)) == "3" {
		t.Errorf("br0's addr_assign_type after the refused starts: %q, %v (pinned)", out, err)
	}

	// A running pool: its socket owned by another user is refused by the
	// client; a client of another uid is refused by the server (SO_PEERCRED).
	p := startPoolProc(t, bin, name, "-n", ns, "pool", "start", name, "--bridge", "br0", "--size", "2", "--range", "10.56.0.10-10.56.0.50/24")
	waitReady(t, bin, name, 2, p)
	sock := pool.SocketPath(name)
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runNsbox(t, bin, &syscall.Credential{Uid: 65534, Gid: 65534}, "run", "--user", "--map-root", "--pool", name, "--", "true")
	if code != exitSetupFailed || !oneLine(stderr, "uid 65534 may not use pool "+name) {
		t.Errorf("run --pool as uid 65534: exit %d, %q", code, stderr)
	}
	if err := os.Chown(sock, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runNsbox(t, bin, nil, "run", "--pool", name, "--", "true")
	if code != exitSetupFailed || !oneLine(stderr, "socket belongs to another user") {
		t.Errorf("run --pool with a foreign socket: exit %d, %q", code, stderr)
	}
	if err := os.Chown(sock, 0, 0); err != nil {
		t.Fatal(err)
	}
	if st, code := poolStatus(t, bin, name); code != 0 || st.InUse != 0 || st.Ready != 2 {
		t.Fatalf("status after refused claims: %+v, exit %d", st, code)
	}
	// The bridge vanishes: the pool ends with one line, exit 1, and its
	// namespaces go.
	testutil.Cmd(t, "ip", "-n", ns, "link", "del", "br0")
	exited, err := p.Wait(10 * time.Second)
	var ee interface{ ExitCode() int }
	if !exited || err == nil || !asExit(err, &ee) || ee.ExitCode() != exitFailed || !oneLine(p.Stderr.String(), "bridge br0 vanished") {
		t.Fatalf("pool after its bridge vanished: exited %v, %v, %q", exited, err, p.Stderr.String())
	}
	if !waitFor(10*time.Second, func() bool {
		var veths []map[string]any
		testutil.IPJSON(t, &veths, "-n", ns, "link", "show", "type", "veth")
		return len(veths) == 0
	}) {
		t.Fatal("veths left after the pool's bridge vanished")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket after the pool ended: %v", err)
	}
}

func asExit(err error, target *interface{ ExitCode() int }) bool {
	e, ok := err.(interface{ ExitCode() int })
	if ok {
		*target = e
	}
	return ok
}

// TestRunPoolEmpty: with nothing ready in --pool-timeout, run wires a DHCP
// namespace itself and -v says so; every sandbox gets its own address.
func TestRunPoolEmpty(t *testing.T) {
	dl := testutil.NewDHCPLab(t, 0, true)
	testutil.StartDnsmasq(t, dl)
	bin := runBuildNsbox(t)
	name := testutil.UniqueName("tp")
	p := startPoolProc(t, bin, name, "-n", dl.ServerNS, "pool", "start", name, "--bridge", dl.Bridge, "--size", "1", "--dhcp")
	waitReady(t, bin, name, 1, p)
	const n = 3
	outs, errs := make([]string, n), make([]string, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i], codes[i] = runNsbox(t, bin, nil, "run", "-v", "--pool", name, "--pool-timeout", "0s", "--",
				"sh", "-c", "ip -4 -j addr show dev eth0; sleep 2")
		}()
	}
	wg.Wait()
	took, itself := 0, 0
	addrs := map[string]bool{}
	for i := range n {
		var a []struct {
			AddrInfo []struct{ Local string } `json:"addr_info"`
		}
		if codes[i] != 0 || json.Unmarshal([]byte(outs[i]), &a) != nil || len(a) != 1 || len(a[0].AddrInfo) != 1 || addrs[a[0].AddrInfo[0].Local] {
			t.Fatalf("run %d: exit %d, %q, %q", i, codes[i], outs[i], errs[i])
		}
		addrs[a[0].AddrInfo[0].Local] = true
		switch {
		case strings.Contains(errs[i], "pool "+name+": took "):
			took++
		case strings.Contains(errs[i], "nothing ready within 0s: wiring the namespace itself (--bridge "+dl.Bridge+" --dhcp)"):
			itself++
		}
	}
	if took < 1 || took+itself != n {
		t.Fatalf("took %d from the pool, wired %d itself; stderr %q", took, itself, errs)
	}
}
