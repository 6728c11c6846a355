package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

func dhcpMain(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := realMain(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestDHCPOnceNoServer: no server on the LAN: exit 1 with exactly one line
// after --timeout, and nothing configured (no address, no route, the link
// that was down is down again, no lease file).
func TestDHCPOnceNoServer(t *testing.T) {
	lab := testutil.NewDHCPLab(t, 1, false)
	ns := lab.Clients[0]
	lf := filepath.Join(t.TempDir(), "l.lease")
	start := time.Now()
	code, out, errs := dhcpMain("-n", ns, "dhcp", "eth0", "--once", "--timeout", "1s", "--retry", "200ms", "--lease-file", lf)
	if code != 1 || errs != "nsbox: dhcp eth0: no offer in 1s\n" || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and the one line", code, out, errs)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("gave up after %s, want about 1s", d)
	}
	if a := testutil.IPv4Addrs(t, ns, "eth0"); len(a) != 0 {
		t.Errorf("addresses configured: %v", a)
	}
	if r := testutil.IPv4Routes(t, ns); len(r) != 0 {
		t.Errorf("routes configured: %v", r)
	}
	if d := testutil.LinkDetail(t, ns, "eth0"); slices.Contains(d.Flags, "UP") {
		t.Errorf("eth0 left up after the failure: %v", d.Flags)
	}
	if _, err := os.Stat(lf); !os.IsNotExist(err) {
		t.Errorf("lease file written: %v", err)
	}
}

func TestDHCPUsageErrors(t *testing.T) {
	ns := testutil.NewNetns(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"dhcp"}, 2, "nsbox: dhcp: need exactly one device"},
		{[]string{"dhcp", "a", "b"}, 2, "nsbox: dhcp: need exactly one device"},
		{[]string{"dhcp", "eth0", "--bogus"}, 2, "nsbox: dhcp: unknown flag: --bogus"},
		{[]string{"dhcp", "eth0", "--timeout", "soon"}, 2, "nsbox: dhcp: --timeout soon: not a duration"},
		{[]string{"-n", ns, "dhcp", "eth0", "--host-dns"}, 2, "nsbox: dhcp eth0: --host-dns is for the host namespace only"},
		{[]string{"-n", ns, "dhcp", "nosuch0", "--once"}, 1, "nsbox: dhcp nosuch0: no such device in netns " + ns},
		{[]string{"-n", "nsbox-no-such-ns", "dhcp", "eth0", "--once"}, 1, "nsbox: dhcp eth0: "},
		{[]string{"dhcpd", "lo"}, 2, "nsbox: dhcpd lo: --range \"\": want FROM-TO"},
		{[]string{"dhcpd", "lo", "--range", "10.1.1.10-10.1.1.x"}, 2, "nsbox: dhcpd lo: --range"},
		{[]string{"dhcpd", "lo", "--range", "10.1.1.10-10.1.1.20", "--dns", "1.2.3"}, 2, "nsbox: dhcpd lo: --dns"},
		{[]string{"-n", ns, "dhcpd", "lo", "--range", "10.1.1.10-10.1.1.20"}, 1, "nsbox: dhcpd lo: no IPv4 address on lo in the subnet of 10.1.1.10"},
		{[]string{"-n", ns, "dhcpd", "nosuch0", "--range", "10.1.1.10-10.1.1.20"}, 1, "nsbox: dhcpd nosuch0: no such device"},
	} {
		code, _, errs := dhcpMain(tc.args...)
		if code != tc.code || !strings.HasPrefix(errs, tc.msg) || strings.Count(errs, "\n") != 1 {
			t.Errorf("nsbox %s: exit %d, stderr %q; want %d and %q...", strings.Join(tc.args, " "), code, errs, tc.code, tc.msg)
		}
	}
	code, out, _ := dhcpMain("dhcp", "-h")
	if code != 0 || !strings.Contains(out, "brought up if down") || !strings.Contains(out, "--arp-check") {
		t.Errorf("dhcp -h: %d %q", code, out)
	}
}

// startDHCPD runs `nsbox -n SERVER dhcpd br0 ...` in-process until the
// test ends (the context plays the part of SIGTERM).
func startDHCPD(t *testing.T, lab *testutil.DHCPLab, args ...string) string {
	t.Helper()
	lf := filepath.Join(t.TempDir(), "dhcpd.leases")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	e := newEnv(strings.NewReader(""), &out, &errb)
	e.netns = lab.ServerNS
	done := make(chan error, 1)
	go func() {
		done <- e.dispatch(ctx, append([]string{"dhcpd", lab.Bridge, "--lease-file", lf}, args...), false)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dhcpd: %v (stderr %q)", err, errb.String())
		}
		e.close()
	})
	testutil.WaitUDPListen(t, lab.ServerNS, 67, nil)
	return lf
}

// TestDHCPOnceJSONAgainstDhcpd: `nsbox dhcpd` serves, `nsbox -j dhcp
// --once` leases; the JSON, ip -j addr/route, resolv.conf under /etc/netns
// and the server's lease file agree.
func TestDHCPOnceJSONAgainstDhcpd(t *testing.T) {
	lab := testutil.NewDHCPLab(t, 1, false)
	ns := lab.Clients[0]
	slf := startDHCPD(t, lab, "--range", lab.Prefix+".50-"+lab.Prefix+".60", "--router", lab.ServerIP,
		"--dns", lab.Prefix+".53,"+lab.Prefix+".54", "--lease-time", "2m")
	code, out, errs := dhcpMain("-n", ns, "-j", "dhcp", "eth0", "--once", "--timeout", "10s", "--retry", "200ms",
		"--lease-file", filepath.Join(t.TempDir(), "c.lease"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var ls []struct {
		Address string   `json:"address"`
		Prefix  int      `json:"prefix"`
		Router  string   `json:"router"`
		DNS     []string `json:"dns"`
		Server  string   `json:"server"`
		Lease   int      `json:"lease"`
		T1      int      `json:"t1"`
		T2      int      `json:"t2"`
		Expiry  string   `json:"expiry"`
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("-j output %q: %v, want an array of one lease", out, err)
	}
	l := ls[0]
	if !strings.HasPrefix(l.Address, lab.Prefix+".5") && !strings.HasPrefix(l.Address, lab.Prefix+".60") ||
		l.Prefix != 24 || l.Router != lab.ServerIP || len(l.DNS) != 2 || l.Server != lab.ServerIP ||
		l.Lease != 120 || l.T1 != 60 || l.T2 != 105 || l.Expiry == "" {
		t.Errorf("lease JSON %+v", l)
	}
	if _, ok := testutil.IPv4Addrs(t, ns, "eth0")[l.Address+"/24"]; !ok {
		t.Errorf("ip addr: %v, want %s/24", testutil.IPv4Addrs(t, ns, "eth0"), l.Address)
	}
	if r := testutil.IPv4Routes(t, ns); !slices.Contains(r, "default via "+lab.ServerIP+" dev eth0") {
		t.Errorf("routes %v", r)
	}
	rc, err := os.ReadFile(filepath.Join("/etc/netns", ns, "resolv.conf"))
	if err != nil || !strings.Contains(string(rc), "nameserver "+lab.Prefix+".54\n") {
		t.Errorf("resolv.conf %q: %v", rc, err)
	}
	b, err := os.ReadFile(slf)
	if err != nil || !strings.Contains(string(b), `"address": "`+l.Address+`"`) {
		t.Errorf("dhcpd lease file %s: %v", b, err)
	}
}

// TestDHCPForegroundRelease: the foreground client against dnsmasq; when
// its context ends (SIGTERM in realMain) with --release, dnsmasq's lease
// file no longer lists it and the address is gone.
func TestDHCPForegroundRelease(t *testing.T) {
	lab := testutil.NewDHCPLab(t, 1, true)
	dm := testutil.StartDnsmasq(t, lab)
	ns := lab.Clients[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	e := newEnv(strings.NewReader(""), &out, &errb)
	defer e.close()
	e.netns = ns
	done := make(chan error, 1)
	go func() {
		done <- e.dispatch(ctx, []string{"dhcp", "eth0", "--release", "--retry", "200ms", "--lease-file", filepath.Join(t.TempDir(), "l")}, false)
	}()
	var mac, addr string
	for i := 0; i < 200 && addr == ""; i++ {
		for a := range testutil.IPv4Addrs(t, ns, "eth0") {
			addr = a
		}
		if addr == "" {
			time.Sleep(25 * time.Millisecond)
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("no address after 5s: %v %s", <-done, errb.String())
	}
	mac = testutil.LinkDetail(t, ns, "eth0").Address
	if got := testutil.DnsmasqLeases(dm.LeaseFile)[mac]; got+"/24" != addr {
		t.Errorf("dnsmasq lists %q for %s, ip shows %s", got, mac, addr)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dhcp: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dhcp did not stop within 10s of the signal")
	}
	if a := testutil.IPv4Addrs(t, ns, "eth0"); len(a) != 0 {
		t.Errorf("address kept after --release: %v", a)
	}
	for i := 0; i < 100; i++ {
		if _, ok := testutil.DnsmasqLeases(dm.LeaseFile)[mac]; !ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("dnsmasq still lists %s after release", mac)
}

// TestDHCPInitRebootFromLeaseFile: a second --once with the same lease file
// starts in INIT-REBOOT (no DISCOVER) and gets the same address from
// dnsmasq.
func TestDHCPInitRebootFromLeaseFile(t *testing.T) {
	lab := testutil.NewDHCPLab(t, 1, false)
	testutil.StartDnsmasq(t, lab)
	ns := lab.Clients[0]
	lf := filepath.Join(t.TempDir(), "eth0.lease")
	code, out, errs := dhcpMain("-n", ns, "-j", "dhcp", "eth0", "--once", "--timeout", "10s", "--lease-file", lf, "--retry", "300ms")
	if code != 0 {
		t.Fatalf("first run: %d %s", code, errs)
	}
	if d := testutil.LinkDetail(t, ns, "eth0"); !slices.Contains(d.Flags, "UP") {
		t.Errorf("eth0 was down and not brought up: %v", d.Flags)
	}
	var firsts []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &firsts); err != nil || len(firsts) != 1 {
		t.Fatalf("-j output %q: %v", out, err)
	}
	first := firsts[0]
	var saved struct {
		Address string `json:"address"`
		Netns   string `json:"netns"`
	}
	b, err := os.ReadFile(lf)
	if err != nil || json.Unmarshal(b, &saved) != nil || saved.Address != first.Address || saved.Netns != ns {
		t.Fatalf("lease file %s: %v", b, err)
	}
	testutil.Cmd(t, "ip", "-n", ns, "addr", "flush", "dev", "eth0")
	code, _, errs = dhcpMain("-n", ns, "dhcp", "eth0", "--once", "--timeout", "10s", "--lease-file", lf, "-v")
	if code != 0 {
		t.Fatalf("second run: %d %s", code, errs)
	}
	if !strings.Contains(errs, "INIT-REBOOT -> REBOOTING") || strings.Contains(errs, "SELECTING") {
		t.Errorf("second run did not go through INIT-REBOOT alone:\n%s", errs)
	}
	if _, ok := testutil.IPv4Addrs(t, ns, "eth0")[first.Address+"/24"]; !ok {
		t.Errorf("after reboot: %v, want %s/24", testutil.IPv4Addrs(t, ns, "eth0"), first.Address)
	}
}

// TestDHCPOnBridge: the walkthrough's `dhclient br0`: the client runs on a
// bridge (inside the client namespace) whose port leads to the server.
func TestDHCPOnBridge(t *testing.T) {
	lab := testutil.NewDHCPLab(t, 1, true)
	testutil.StartDnsmasq(t, lab)
	ns := lab.Clients[0]
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "br0", "type", "bridge", "forward_delay", "0")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "eth0", "master", "br0")
	code, out, errs := dhcpMain("-n", ns, "dhcp", "br0", "--once", "--timeout", "10s", "--retry", "300ms",
		"--lease-file", filepath.Join(t.TempDir(), "l"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	addrs := testutil.IPv4Addrs(t, ns, "br0")
	if len(addrs) != 1 || !strings.HasPrefix(out, "br0: ") {
		t.Errorf("br0 addresses %v, output %q", addrs, out)
	}
	for a := range addrs {
		if !strings.Contains(out, a) {
			t.Errorf("output %q does not name the configured %s", out, a)
		}
	}
}
