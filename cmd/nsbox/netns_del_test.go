package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsbox/nsbox/dhcpclient"
	"github.com/nsbox/nsbox/internal/testutil"
)

// TestNetnsDelCleansUp: netns del X warns (naming the pids) when processes
// still run in X, removes what nsbox wrote under /etc/netns/X/ (a user's
// file stays) and X's lease file, and prunes the lease files of a
// namespace that no longer exists, keeping those of living ones.
func TestNetnsDelCleansUp(t *testing.T) {
	lab := testutil.NewDHCPLab(t, 1, true)
	testutil.StartDnsmasq(t, lab, "--dhcp-option=option:dns-server,"+lab.Prefix+".53")
	ns := lab.Clients[0]
	if code, _, errs := dhcpMain("-n", ns, "dhcp", "eth0", "--once", "--retry", "200ms"); code != 0 {
		t.Fatalf("dhcp --once: %s", errs)
	}
	lf := dhcpclient.DefaultLeaseFile(ns, "eth0")
	t.Cleanup(func() { os.Remove(lf) })
	etc := filepath.Join("/etc/netns", ns)
	if b, err := os.ReadFile(filepath.Join(etc, "resolv.conf")); err != nil || !strings.HasPrefix(string(b), nsboxMark) {
		t.Fatalf("resolv.conf of the lease: %q %v", b, err)
	}
	if _, err := os.Stat(lf); err != nil {
		t.Fatalf("lease file: %v", err)
	}
	userFile := filepath.Join(etc, "hosts")
	if err := os.WriteFile(userFile, []byte("127.0.0.1 mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Lease files of a namespace that is gone, and of a living one.
	gone := testutil.UniqueName("gone")
	goneLease := dhcpclient.DefaultLeaseFile(gone, "eth0")
	l := &dhcpclient.Lease{Interface: "eth0", Netns: gone, Addr: netip.MustParsePrefix("10.1.2.3/24"), Server: netip.MustParseAddr("10.1.2.1"), LeaseTime: time.Hour, Acquired: time.Now()}
	if err := dhcpclient.SaveLease(goneLease, l); err != nil {
		t.Fatal(err)
	}
	goneSrv := filepath.Join(dhcpdLeaseDir, "netns-"+gone+"-br0.leases")
	liveSrv := filepath.Join(dhcpdLeaseDir, "netns-"+lab.ServerNS+"-br0.leases")
	for _, f := range []string{goneSrv, liveSrv} {
		if err := os.WriteFile(f, []byte(`{"version":1,"leases":[]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(f) })
	}
	t.Cleanup(func() { os.Remove(goneLease) })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sleeper := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = sleeper.Wait() }()
	pid := sleeper.Process.Pid
	for i := 0; i < 200; i++ { // until ip netns exec has entered ns
		if out, _ := testutil.CmdErr("ip", "netns", "pids", ns); strings.Contains(out, fmt.Sprint(pid)) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, out, errs := dhcpMain("netns", "del", ns)
	want := fmt.Sprintf("nsbox: warning: netns del %s: processes still run in it (pid %d); the namespace lives until they end (stop them with: kill %d)\n", ns, pid, pid)
	if code != 0 || out != "" || errs != want {
		t.Errorf("netns del: exit %d, stdout %q, stderr %q; want 0 and %q", code, out, errs, want)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); !os.IsNotExist(err) {
		t.Errorf("namespace file still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(etc, "resolv.conf")); !os.IsNotExist(err) {
		t.Errorf("nsbox's resolv.conf kept: %v", err)
	}
	if _, err := os.Stat(userFile); err != nil {
		t.Errorf("the user's file was removed: %v", err)
	}
	for _, f := range []string{lf, goneLease, goneSrv} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("lease file %s kept: %v", f, err)
		}
	}
	if _, err := os.Stat(liveSrv); err != nil {
		t.Errorf("lease file of the living %s removed: %v", lab.ServerNS, err)
	}
	// Without processes: no warning at all.
	other := testutil.UniqueName("nsdel")
	if code, _, errs := dhcpMain("netns", "add", other); code != 0 {
		t.Fatal(errs)
	}
	if code, out, errs := dhcpMain("netns", "del", other); code != 0 || out != "" || errs != "" {
		t.Errorf("netns del of an idle namespace: exit %d, %q, %q", code, out, errs)
	}
}
