package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestRunSandboxDNSAndLease: a sandbox leased by DHCP (from dnsmasq) sees
// the lease's DNS servers in its /etc/resolv.conf, a static one those of
// --dns; the host's file is untouched and nothing stays in resolvDir. A
// sandbox killed with SIGKILL holds its lease at most nsnet's 2 min: the
// expiry in dnsmasq's lease file is that close although dnsmasq hands out
// 1 h leases.
func TestRunSandboxDNSAndLease(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	lab := testutil.NewDHCPLab(t, 0, true)
	dm := testutil.StartDnsmasq(t, lab, "--dhcp-option=option:dns-server,"+lab.Prefix+".53,"+lab.Prefix+".54")
	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("dhcp", func(t *testing.T) {
		out, errs, code := runNsbox(t, bin, nil, "-n", lab.ServerNS, "run", "--net", "--bridge", lab.Bridge, "--dhcp", "--", "cat", "/etc/resolv.conf")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "nameserver "+lab.Prefix+".53\nnameserver "+lab.Prefix+".54\n") || strings.Contains(out, string(hostResolv)) {
			t.Errorf("sandbox resolv.conf %q, want the lease's servers only", out)
		}
	})
	t.Run("static", func(t *testing.T) {
		out, errs, code := runNsbox(t, bin, nil, "-n", lab.ServerNS, "run", "--net", "--bridge", lab.Bridge,
			"--addr", lab.Prefix+".9/24", "--dns", "192.168.9.9,fd00::9", "--", "cat", "/etc/resolv.conf")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "nameserver 192.168.9.9\nnameserver fd00::9\n") {
			t.Errorf("sandbox resolv.conf %q, want --dns's servers", out)
		}
		_, errs, code = runNsbox(t, bin, nil, "-n", lab.ServerNS, "run", "--net", "--bridge", lab.Bridge,
			"--addr", lab.Prefix+".9/24", "--dns", "1.2.3", "--", "true")
		if code != 2 || !strings.HasPrefix(errs, "nsbox: run: --dns: ") {
			t.Errorf("bad --dns: exit %d, %q", code, errs)
		}
	})
	if after, _ := os.ReadFile("/etc/resolv.conf"); string(after) != string(hostResolv) {
		t.Errorf("host resolv.conf changed: %q -> %q", hostResolv, after)
	}

	t.Run("sigkill", func(t *testing.T) {
		before := testutil.DnsmasqLeases(dm.LeaseFile)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-n", lab.ServerNS, "run", "--net", "--bridge", lab.Bridge, "--dhcp", "--", "sleep", "20")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		var mac string
		for i := 0; i < 200 && mac == ""; i++ {
			for m := range testutil.DnsmasqLeases(dm.LeaseFile) {
				if _, old := before[m]; !old {
					mac = m
				}
			}
			time.Sleep(25 * time.Millisecond)
		}
		if mac == "" {
			t.Fatal("the sandbox's lease never showed in dnsmasq's lease file")
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		left := dnsmasqExpiry(t, dm.LeaseFile, mac) - time.Now().Unix()
		if left > 125 || left < 60 {
			t.Errorf("a killed sandbox holds its lease %d s more (dnsmasq grants 1 h), want at most 2 min", left)
		}
		// The killed nsbox's resolv file waits for the next networked run
		// to prune it; the test leaves nothing behind either way.
		for _, e := range readDirNames(resolvDir) {
			if strings.HasPrefix(e, strconv.Itoa(cmd.Process.Pid)+"-") {
				_ = os.Remove(filepath.Join(resolvDir, e))
			}
		}
	})
	for _, e := range readDirNames(resolvDir) {
		if strings.HasPrefix(e, strconv.Itoa(os.Getpid())+"-") {
			t.Errorf("resolv file %s left behind", e)
		}
	}
}

func readDirNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// dnsmasqExpiry returns the expiry (Unix seconds, dnsmasq's first column)
// of mac's lease.
func dnsmasqExpiry(t *testing.T, path, mac string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == mac {
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatalf("dnsmasq lease line %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no lease of %s in %s", mac, b)
	return 0
}

// TestRunStaticIPv6FirstInstruction: a sandbox with a static IPv6 address
// reaches its gateway with its first instruction (no tentative address).
func TestRunStaticIPv6FirstInstruction(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "ping")
	bin := runBuildNsbox(t)
	ns := netLab(t)
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "fd00:78::1/64", "dev", "br0", "nodad")
	out, errs, code := runNsbox(t, bin, nil, "-n", ns, "run", "--net", "--bridge", "br0", "--addr", "fd00:78::5/64",
		"--gateway", "fd00:78::1", "--", "sh", "-c", "ip -6 -o addr show dev eth0 scope global; ping -6 -c1 -W3 fd00:78::1")
	if code != 0 {
		t.Fatalf("exit %d: stdout %q stderr %q", code, out, errs)
	}
	if strings.Contains(out, "tentative") || !strings.Contains(out, "fd00:78::5/64") {
		t.Errorf("sandbox address: %q", out)
	}
	waitNoSandboxLinks(t, ns)
}
