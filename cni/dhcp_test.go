package cni_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// dhcpLab puts the lab's bridge (with .1/24) in the runtime namespace and
// dnsmasq on it, logging every DHCP message to a file.
func dhcpLab(t *testing.T, l *lab) (leases, logFile string) {
	t.Helper()
	// A fixed MAC, as a real LAN's server has: a bridge without one takes
	// its lowest port's MAC and changes it as containers come and go.
	testutil.Cmd(t, "ip", "-n", l.RT, "link", "add", l.Bridge, "address", "02:00:0a:0b:0c:01", "type", "bridge", "forward_delay", "0")
	testutil.Cmd(t, "ip", "-n", l.RT, "addr", "add", l.Subnet+".1/24", "dev", l.Bridge)
	testutil.Cmd(t, "ip", "-n", l.RT, "link", "set", l.Bridge, "up")
	logFile = filepath.Join(t.TempDir(), "dnsmasq.log")
	d := testutil.StartDnsmasq(t, &testutil.DHCPLab{ServerNS: l.RT, Bridge: l.Bridge, ServerIP: l.Subnet + ".1", Prefix: l.Subnet},
		"--log-facility="+logFile, "--log-dhcp")
	return d.LeaseFile, logFile
}

func (l *lab) dhcpIPAM() map[string]any {
	return map[string]any{"type": "nsbox-dhcp", "dataDir": l.DataDir, "socketDir": l.SockDir, "timeout": "10s"}
}

func readFrom(path string, off int) string {
	b, _ := os.ReadFile(path)
	if off > len(b) {
		return ""
	}
	return string(b[off:])
}

// TestDHCPKeeper: addresses from dnsmasq through the keeper the plugin
// starts; a SIGKILLed keeper comes back (on the next plugin call), renews
// every lease with a REQUEST (no DISCOVER) and the containers keep their
// addresses; DEL releases.
func TestDHCPKeeper(t *testing.T) {
	l := newLab(t)
	testutil.RequireTool(t, "dnsmasq")
	leaseFile, logFile := dhcpLab(t, l)
	l.writeConflist("1.1.0", l.nsboxConf(l.dhcpIPAM(), nil))
	var nss []string
	addrs := map[string]string{} // ns -> address
	for i := 0; i < 3; i++ {
		ns := testutil.NewNetns(t)
		nss = append(nss, ns)
		res := parseResult(t, l.cni("add", ns))
		checkResultMatchesNS(t, l, res, ns, "eth0")
		a := res.IPs[0].Address.IP.String()
		if !strings.HasPrefix(a, l.Subnet+".") || res.IPs[0].Gateway.String() != l.Subnet+".1" {
			t.Fatalf("lease %s via %s: want an address of dnsmasq's pool via %s.1", a, res.IPs[0].Gateway, l.Subnet)
		}
		addrs[ns] = a
		// The address's lifetime is the lease's (1h), not forever.
		if got := testutil.IPv4Addrs(t, ns, "eth0")[a+"/24"]; got <= 0 || got > 3600 {
			t.Errorf("%s valid lifetime %d, want the lease's", a, got)
		}
	}
	held := testutil.DnsmasqLeases(leaseFile)
	for _, a := range addrs {
		if !slices.Contains(mapValues(held), a) {
			t.Errorf("dnsmasq's leases %v lack %s", held, a)
		}
	}
	pid := l.keeperPid()
	if pid <= 0 {
		t.Fatal("no keeper pid file")
	}
	// SIGKILL: no chance to release or save anything.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	off := len(readFrom(logFile, 0))
	l.cni("check", nss[0]) // starts a new keeper, which resumes all three
	if p := l.keeperPid(); p == pid || p <= 0 {
		t.Fatalf("keeper pid %d after restart (was %d)", p, pid)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		log := readFrom(logFile, off)
		n := 0
		for _, a := range addrs {
			if strings.Contains(log, "DHCPACK("+l.Bridge+") "+a+" ") {
				n++
			}
		}
		if n == len(addrs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart dnsmasq acked %d of %d leases:\n%s", n, len(addrs), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	log := readFrom(logFile, off)
	if strings.Contains(log, "DHCPDISCOVER") {
		t.Errorf("the restarted keeper sent DISCOVER:\n%s", log)
	}
	for ns, a := range addrs {
		if !strings.Contains(log, "DHCPREQUEST("+l.Bridge+") "+a+" ") {
			t.Errorf("no renewing REQUEST for %s after the restart", a)
		}
		if _, ok := testutil.IPv4Addrs(t, ns, "eth0")[a+"/24"]; !ok {
			t.Errorf("%s lost %s across the keeper restart", ns, a)
		}
		l.cni("check", ns)
	}
	off = len(readFrom(logFile, 0))
	for _, ns := range nss {
		l.cni("del", ns)
		l.cni("del", ns)
	}
	// A DHCPRELEASE has no answer: wait (bounded) until dnsmasq has
	// handled every one.
	var want []string
	for _, a := range addrs {
		want = append(want, "DHCPRELEASE("+l.Bridge+") "+a+" ")
	}
	waitReleased(t, logFile, off, leaseFile, want, l.logText)
	if ents, _ := os.ReadDir(filepath.Join(l.DataDir, "dhcp")); len(ents) != 0 {
		t.Errorf("keeper records left: %v", ents)
	}
	if p := ports(t, l.RT, l.Bridge); len(p) != 0 {
		t.Errorf("veths left: %v", p)
	}
}

// TestDHCPGC: GC with an empty valid list releases the network's leases.
func TestDHCPGC(t *testing.T) {
	l := newLab(t)
	testutil.RequireTool(t, "dnsmasq")
	leaseFile, logFile := dhcpLab(t, l)
	l.writeConflist("1.1.0", l.nsboxConf(l.dhcpIPAM(), nil))
	ns := testutil.NewNetns(t)
	a := parseResult(t, l.cni("add", ns)).IPs[0].Address.IP.String()
	l.cni("gc", ns)
	waitReleased(t, logFile, 0, leaseFile, []string{"DHCPRELEASE(" + l.Bridge + ") " + a + " "})
	if p := ports(t, l.RT, l.Bridge); len(p) != 0 {
		t.Errorf("veths left after gc: %v", p)
	}
	l.cni("del", ns)
}

// waitReleased waits up to 5 s until dnsmasq's log (from off) has every
// line of want and its lease file is empty.
func waitReleased(t *testing.T, logFile string, off int, leaseFile string, want []string, extra ...func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		log := readFrom(logFile, off)
		missing := 0
		for _, w := range want {
			if !strings.Contains(log, w) {
				missing++
			}
		}
		left := testutil.DnsmasqLeases(leaseFile)
		if missing == 0 && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("after 5 s dnsmasq lacks %d of %q and still leases %v:\n%s", missing, want, left, log)
			for _, f := range extra {
				t.Log(f())
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKeeperSingle: five ADDs at once, with no keeper running, start
// exactly one keeper (the lock), and all five get distinct leases.
func TestKeeperSingle(t *testing.T) {
	l := newLab(t)
	testutil.RequireTool(t, "dnsmasq")
	dhcpLab(t, l)
	l.writeConflist("1.1.0", l.nsboxConf(l.dhcpIPAM(), nil))
	const n = 5
	nss := make([]string, n)
	for i := range nss {
		nss[i] = testutil.NewNetns(t)
	}
	outs := make([]string, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range nss {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i], _, codes[i] = l.run(nil, nil, l.cnitool, "add", l.Net, "/run/netns/"+nss[i])
			l.delOnCleanup(nss[i])
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range nss {
		if codes[i] != 0 {
			t.Fatalf("add %d: exit %d %s\n%s", i, codes[i], outs[i], l.logText())
		}
		a := parseResult(t, outs[i]).IPs[0].Address.IP.String()
		if seen[a] {
			t.Errorf("address %s given twice", a)
		}
		seen[a] = true
	}
	// Every process whose environment names this socket folder as its
	// keeper's (/proc/PID/environ), not just the one in the pid file.
	// A keeper that lost the lock race exits at once; allow it 1 s.
	var keepers []string
	for try := 0; try < 50; try++ {
		keepers = keepers[:0]
		procs, _ := os.ReadDir("/proc")
		for _, p := range procs {
			env, err := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
			if err == nil && slices.Contains(strings.Split(string(env), "\x00"), "NSBOX_CNI_KEEPER="+l.SockDir) {
				keepers = append(keepers, p.Name())
			}
		}
		if len(keepers) <= 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(keepers) != 1 || keepers[0] != strconv.Itoa(l.keeperPid()) {
		t.Errorf("keeper processes %v, pid file says %d; want exactly that one", keepers, l.keeperPid())
	}
	for _, ns := range nss {
		l.cni("del", ns)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
