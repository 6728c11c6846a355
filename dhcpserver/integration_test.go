package dhcpserver_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsbox/nsbox/dhcpserver"
	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
)

// serveLab runs nsbox's server on the lab bridge until the test ends.
func serveLab(t *testing.T, lab *testutil.DHCPLab) *dhcpserver.Server {
	t.Helper()
	h, err := netns.Open(lab.ServerNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	srv, err := dhcpserver.New(netip.MustParsePrefix(lab.ServerIP+"/24"),
		netip.MustParseAddr(lab.Prefix+".100"), netip.MustParseAddr(lab.Prefix+".120"),
		dhcpserver.WithRouter(netip.MustParseAddr(lab.ServerIP)),
		dhcpserver.WithDNS(netip.MustParseAddr(lab.Prefix+".53")),
		dhcpserver.WithLeaseTime(10*time.Minute),
		dhcpserver.WithLeaseFile(filepath.Join(t.TempDir(), "leases.json")),
		dhcpserver.WithLogf(t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := dhcpserver.ListenUDP(h, lab.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	testutil.RunInBackground(t, "Serve", func(ctx context.Context) error { return srv.Serve(ctx, pc) })
	return srv
}

func linkMAC(t *testing.T, ns, dev string) string {
	t.Helper()
	var v []struct {
		Address string `json:"address"`
	}
	testutil.IPJSON(t, &v, "-n", ns, "link", "show", "dev", dev)
	return v[0].Address
}

// findLease waits (bounded) for the server to hold a lease for mac.
func findLease(t *testing.T, srv *dhcpserver.Server, mac string) dhcpserver.Lease {
	t.Helper()
	for i := 0; i < 100; i++ {
		for _, l := range srv.Leases() {
			if l.HWAddr == mac {
				return l
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server holds no lease for %s: %+v", mac, srv.Leases())
	return dhcpserver.Lease{}
}

// TestUdhcpc: busybox udhcpc obtains a lease from nsbox's server; its
// script (which only records its environment) sees the address, mask,
// router and DNS the server was configured with, and the server's table
// names udhcpc's MAC.
func TestUdhcpc(t *testing.T) {
	testutil.RequireTool(t, "busybox")
	lab := testutil.NewDHCPLab(t, 1, true)
	srv := serveLab(t, lab)
	dir := t.TempDir()
	rec := filepath.Join(dir, "env")
	script := testutil.EnvRecorderScript(t, dir, rec)
	p := testutil.StartProc(t, "ip", "netns", "exec", lab.Clients[0], "busybox", "udhcpc", "-f", "-q", "-n",
		"-t", "5", "-T", "1", "-i", lab.ClientDev, "-s", script)
	exited, err := p.Wait(30 * time.Second)
	if !exited || err != nil {
		t.Fatalf("udhcpc: exited %v, %v: %s", exited, err, p.Stderr.String())
	}
	var bound map[string]string
	for _, env := range testutil.RecordedEnvs(rec) {
		if strings.HasSuffix(env["argv"], "bound") {
			bound = env
		}
	}
	if bound == nil {
		t.Fatalf("udhcpc never ran its script with bound: %v\n%s", testutil.RecordedEnvs(rec), p.Stderr.String())
	}
	mac := linkMAC(t, lab.Clients[0], lab.ClientDev)
	l := findLease(t, srv, mac)
	if bound["ip"] != l.Addr.String() || bound["subnet"] != "255.255.255.0" || bound["router"] != lab.ServerIP ||
		bound["dns"] != lab.Prefix+".53" || bound["serverid"] != lab.ServerIP || bound["lease"] != "600" {
		t.Errorf("udhcpc saw ip=%s subnet=%s router=%s dns=%s serverid=%s lease=%s; server leased %s",
			bound["ip"], bound["subnet"], bound["router"], bound["dns"], bound["serverid"], bound["lease"], l.Addr)
	}
}

// TestDhclient: ISC dhclient (one try, foreground, harmless script, private
// lease and pid files) obtains a lease from nsbox's server.
func TestDhclient(t *testing.T) {
	testutil.RequireTool(t, "dhclient")
	lab := testutil.NewDHCPLab(t, 1, true)
	srv := serveLab(t, lab)
	dir := t.TempDir()
	rec := filepath.Join(dir, "env")
	script := testutil.EnvRecorderScript(t, dir, rec)
	p := testutil.StartProc(t, "ip", "netns", "exec", lab.Clients[0], "dhclient", "-1", "-d", "-v",
		"-sf", script, "-lf", filepath.Join(dir, "lease"), "-pf", filepath.Join(dir, "pid"), lab.ClientDev)
	var bound map[string]string
	for i := 0; i < 300 && bound == nil; i++ {
		for _, env := range testutil.RecordedEnvs(rec) {
			if env["reason"] == "BOUND" {
				bound = env
			}
		}
		if exited, err := p.Wait(0); exited && bound == nil {
			t.Fatalf("dhclient exited: %v: %s", err, p.Stderr.String())
		}
		if bound == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if bound == nil {
		t.Fatalf("dhclient did not bind within 15s: %s", p.Stderr.String())
	}
	mac := linkMAC(t, lab.Clients[0], lab.ClientDev)
	l := findLease(t, srv, mac)
	if bound["new_ip_address"] != l.Addr.String() || bound["new_subnet_mask"] != "255.255.255.0" ||
		bound["new_routers"] != lab.ServerIP || bound["new_domain_name_servers"] != lab.Prefix+".53" ||
		bound["new_dhcp_server_identifier"] != lab.ServerIP {
		t.Errorf("dhclient saw %v; server leased %s", bound, l.Addr)
	}
}
