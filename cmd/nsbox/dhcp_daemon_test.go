package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// waitGone waits (bounded) until pid has ended.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); strings.Contains(string(b), ") Z ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d still runs after 5s", pid)
}

// waitDnsmasq waits (bounded) until dnsmasq's lease file lists mac (want)
// or does not (!want).
func waitDnsmasq(t *testing.T, dm *testutil.Dnsmasq, mac string, want bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if _, ok := testutil.DnsmasqLeases(dm.LeaseFile)[mac]; ok == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("dnsmasq lease of %s: listed = %v after 2s, want %v", mac, !want, want)
}

// TestDHCPDaemonStopRelease drives the built binary as a dhclient user
// would: --daemon returns once bound and leaves a process named by the pid
// file; a second client on the device is refused; -x stops it and keeps the
// lease (dnsmasq still lists it, the address stays); -r stops it and
// releases (dnsmasq drops it, the address goes); -r with no client running
// releases the lease of the lease file.
func TestDHCPDaemonStopRelease(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	lab := testutil.NewDHCPLab(t, 1, true)
	dm := testutil.StartDnsmasq(t, lab)
	ns := lab.Clients[0]
	dir := t.TempDir()
	lf, pf := filepath.Join(dir, "eth0.lease"), filepath.Join(dir, "eth0.pid")
	mac := testutil.LinkDetail(t, ns, "eth0").Address
	files := []string{"--lease-file", lf, "--pid-file", pf}
	daemon := func() int {
		t.Helper()
		out, errs, code := runNsbox(t, bin, nil, append([]string{"-n", ns, "dhcp", "eth0", "--daemon", "--retry", "200ms"}, files...)...)
		if code != 0 || !strings.HasPrefix(out, "eth0: "+lab.Prefix+".") {
			t.Fatalf("--daemon: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		pid := readPid(pf)
		if pid <= 0 {
			t.Fatalf("pid file %s names no pid", pf)
		}
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
		if err := syscall.Kill(pid, 0); err != nil {
			t.Fatalf("daemon pid %d: %v", pid, err)
		}
		return pid
	}
	pid := daemon()
	addrs := testutil.IPv4Addrs(t, ns, "eth0")
	if len(addrs) != 1 {
		t.Fatalf("addresses after --daemon: %v", addrs)
	}
	waitDnsmasq(t, dm, mac, true)

	_, errs, code := runNsbox(t, bin, nil, append([]string{"-n", ns, "dhcp", "eth0", "--once"}, files...)...)
	if want := fmt.Sprintf("nsbox: dhcp eth0: a client already runs for eth0 as pid %d (stop it with nsbox dhcp -x eth0)\n", pid); code != 1 || errs != want {
		t.Errorf("second client: exit %d, stderr %q; want 1, %q", code, errs, want)
	}

	if _, errs, code := runNsbox(t, bin, nil, append([]string{"-n", ns, "dhcp", "-x", "eth0"}, files...)...); code != 0 {
		t.Fatalf("-x: exit %d: %s", code, errs)
	}
	waitGone(t, pid)
	if got := testutil.IPv4Addrs(t, ns, "eth0"); len(got) != 1 {
		t.Errorf("-x removed the address: %v", got)
	}
	waitDnsmasq(t, dm, mac, true)

	pid = daemon() // INIT-REBOOT from the lease file
	for a := range addrs {
		if got := testutil.IPv4Addrs(t, ns, "eth0"); len(got) != 1 || got[a] == 0 {
			t.Errorf("after restart: %v, before %v", got, addrs)
		}
	}
	if _, errs, code := runNsbox(t, bin, nil, append([]string{"-n", ns, "dhcp", "-r", "eth0"}, files...)...); code != 0 {
		t.Fatalf("-r: exit %d: %s", code, errs)
	}
	waitGone(t, pid)
	if got := testutil.IPv4Addrs(t, ns, "eth0"); len(got) != 0 {
		t.Errorf("-r left addresses %v", got)
	}
	waitDnsmasq(t, dm, mac, false)
	if _, err := os.Stat(lf); !os.IsNotExist(err) {
		t.Errorf("lease file kept after -r: %v", err)
	}

	// No client running: -r releases what the lease file holds.
	if _, errs, code := runNsbox(t, bin, nil, append([]string{"-n", ns, "dhcp", "eth0", "--once", "--retry", "200ms"}, files...)...); code != 0 {
		t.Fatalf("--once: exit %d: %s", code, errs)
	}
	waitDnsmasq(t, dm, mac, true)
	if _, errs, code := runNsbox(t, bin, nil, append([]string{"-n", ns, "dhcp", "-r", "eth0"}, files...)...); code != 0 {
		t.Fatalf("-r without a client: exit %d: %s", code, errs)
	}
	if got := testutil.IPv4Addrs(t, ns, "eth0"); len(got) != 0 {
		t.Errorf("-r left addresses %v", got)
	}
	waitDnsmasq(t, dm, mac, false)
	// Nothing held, nothing running: -r and -x succeed quietly.
	for _, f := range []string{"-r", "-x"} {
		if out, errs, code := runNsbox(t, bin, nil, append([]string{"-n", ns, "dhcp", f, "eth0"}, files...)...); code != 0 || out != "" || errs != "" {
			t.Errorf("%s with nothing to do: exit %d, %q, %q", f, code, out, errs)
		}
	}
}

// TestDHCPDSecondRefused: a second server on the same device of the same
// namespace (named or by path) is refused with the first one's pid, and
// so is a second server on another device sharing its lease file.
func TestDHCPDSecondRefused(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	lab := testutil.NewDHCPLab(t, 1, true)
	dir := t.TempDir()
	lf := filepath.Join(dir, "leases.json")
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, bin, "-n", lab.ServerNS, "dhcpd", lab.Bridge, "--range", lab.Prefix+".50-"+lab.Prefix+".60", "--lease-file", lf)
	srv.Cancel = func() error { return srv.Process.Signal(syscall.SIGTERM) }
	srv.WaitDelay = 5 * time.Second
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = srv.Wait() })
	testutil.WaitUDPListen(t, lab.ServerNS, 67, nil)
	first := srv.Process.Pid
	for _, tc := range []struct{ nsArg, lease, want string }{
		{lab.ServerNS, filepath.Join(dir, "other.json"), fmt.Sprintf("nsbox: dhcpd %s: already served by pid %d\n", lab.Bridge, first)},
		{"/run/netns/" + lab.ServerNS, lf, fmt.Sprintf("nsbox: dhcpd %s: already served by pid %d\n", lab.Bridge, first)},
	} {
		_, errs, code := runNsbox(t, bin, nil, "-n", tc.nsArg, "dhcpd", lab.Bridge, "--range", lab.Prefix+".70-"+lab.Prefix+".80", "--lease-file", tc.lease)
		if code != 1 || errs != tc.want {
			t.Errorf("-n %s: exit %d, stderr %q; want 1, %q", tc.nsArg, code, errs, tc.want)
		}
	}
	// Another device (the lab's lo has no address in the range: use a
	// veth with one) sharing the lease file.
	testutil.Cmd(t, "ip", "-n", lab.ServerNS, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	testutil.Cmd(t, "ip", "-n", lab.ServerNS, "addr", "add", "10.250.0.1/24", "dev", "d0")
	_, errs, code := runNsbox(t, bin, nil, "-n", lab.ServerNS, "dhcpd", "d0", "--range", "10.250.0.10-10.250.0.20", "--lease-file", lf)
	if want := fmt.Sprintf("nsbox: dhcpd d0: lease file %s: in use by pid %d\n", lf, first); code != 1 || errs != want {
		t.Errorf("shared lease file: exit %d, stderr %q; want 1, %q", code, errs, want)
	}
}
