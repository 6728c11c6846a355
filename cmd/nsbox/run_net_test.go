package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// netLab makes a namespace holding bridge br0 (10.78.0.1/24, up), made with
// ip, and returns its name.
func netLab(t *testing.T) string {
	t.Helper()
	ns := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "br0", "type", "bridge")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "10.78.0.1/24", "dev", "br0")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "br0", "up")
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "notbr", "type", "veth", "peer", "name", "notbr1")
	return ns
}

// sandboxLinks lists the host ends of sandbox veths left in ns.
func sandboxLinks(t *testing.T, ns string) []string {
	t.Helper()
	var links []struct {
		Ifname string `json:"ifname"`
	}
	testutil.IPJSON(t, &links, "-n", ns, "link", "show")
	var out []string
	for _, l := range links {
		if strings.HasPrefix(l.Ifname, "nsb") {
			out = append(out, l.Ifname)
		}
	}
	return out
}

// waitNoSandboxLinks waits (at most 5 s) for the kernel to finish removing
// sandbox veths, then fails if any is left.
func waitNoSandboxLinks(t *testing.T, ns string) {
	t.Helper()
	var left []string
	for i := 0; i < 100; i++ {
		if left = sandboxLinks(t, ns); len(left) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("sandbox veths left in %s: %v", ns, left)
}

func TestRunNetworkStatic(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "ip")
	bin := runBuildNsbox(t)
	ns := netLab(t)
	script := `ip -j addr show dev eth0; echo ===; ip -j route show default; echo ===; ip -j link show lo; exit 7`
	stdout, stderr, code := runNsbox(t, bin, nil, "-n", ns, "run", "--net", "--bridge", "br0",
		"--addr", "10.78.0.2/24", "--gateway", "10.78.0.1", "--", "sh", "-c", script)
	if code != 7 {
		t.Fatalf("exit code %d, want the payload's 7; stderr %q", code, stderr)
	}
	parts := strings.Split(stdout, "===")
	if len(parts) != 3 {
		t.Fatalf("payload output %q", stdout)
	}
	if !strings.Contains(parts[0], `"local":"10.78.0.2","prefixlen":24`) {
		t.Errorf("first instruction did not see 10.78.0.2/24 on eth0: %s", parts[0])
	}
	if !strings.Contains(parts[1], `"gateway":"10.78.0.1"`) {
		t.Errorf("first instruction did not see the default route: %s", parts[1])
	}
	if !strings.Contains(parts[2], `"UP"`) {
		t.Errorf("loopback is not up inside: %s", parts[2])
	}
	waitNoSandboxLinks(t, ns)
}

func TestRunNetworkDHCP(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	ns := netLab(t)
	// nsbox's own server on the lab bridge.
	ctx, cancel := context.WithCancel(context.Background())
	leases := filepath.Join(t.TempDir(), "leases.json")
	srv := exec.CommandContext(ctx, bin, "-n", ns, "dhcpd", "br0", "--range", "10.78.0.100-10.78.0.120",
		"--router", "10.78.0.1", "--lease-time", "2m", "--lease-file", leases)
	srv.Cancel = func() error { return srv.Process.Signal(syscall.SIGTERM) }
	srv.WaitDelay = 5 * time.Second
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = srv.Wait() })
	testutil.WaitUDPListen(t, ns, 67, nil)
	stdout, stderr, code := runNsbox(t, bin, nil, "-n", ns, "run", "--net", "--bridge", "br0", "--dhcp",
		"--", "sh", "-c", "ip -4 -o addr show dev eth0; ip route show default")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "inet 10.78.0.1") || !strings.Contains(stdout, "/24") {
		t.Errorf("first instruction did not see a leased address: %q", stdout)
	}
	if !strings.Contains(stdout, "default via 10.78.0.1 dev eth0") {
		t.Errorf("first instruction did not see the router's default route: %q", stdout)
	}
	waitNoSandboxLinks(t, ns)
}

func TestRunNetworkSIGTERMLeavesNothing(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	ns := netLab(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-n", ns, "run", "--net", "--bridge", "br0",
				"--addr", "10.78.0.3/24", "--", "sleep", "30")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait (bounded) until the sandbox is wired.
			for i := 0; i < 100 && len(sandboxLinks(t, ns)) == 0; i++ {
				time.Sleep(50 * time.Millisecond)
			}
			if len(sandboxLinks(t, ns)) == 0 {
				t.Fatal("sandbox veth never appeared")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if sig == syscall.SIGTERM {
				if cmd.ProcessState.ExitCode() != 128+int(syscall.SIGTERM) {
					t.Errorf("exit %v, want 143 (the payload died of SIGTERM)", err)
				}
			}
			// SIGKILL: the payload dies with nsbox (parent-death signal),
			// so the kernel removes its namespace and the veth with it.
			waitNoSandboxLinks(t, ns)
		})
	}
}

func TestRunNetworkBadInput(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	ns := netLab(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing bridge", []string{"-n", ns, "run", "--net", "--bridge", "nosuch", "--addr", "10.78.0.4/24", "--", "true"}, exitSetupFailed, "nosuch"},
		{"not a bridge", []string{"-n", ns, "run", "--net", "--bridge", "notbr", "--addr", "10.78.0.4/24", "--", "true"}, exitSetupFailed, "not a bridge"},
		{"cidr without prefix", []string{"-n", ns, "run", "--net", "--bridge", "br0", "--addr", "10.78.0.4", "--", "true"}, exitUsage, "prefix"},
		{"gateway outside", []string{"-n", ns, "run", "--net", "--bridge", "br0", "--addr", "10.78.0.4/24", "--gateway", "10.79.0.1", "--", "true"}, exitUsage, "outside"},
		{"dhcp and addr", []string{"-n", ns, "run", "--net", "--bridge", "br0", "--dhcp", "--addr", "10.78.0.4/24", "--", "true"}, exitUsage, "--dhcp"},
		{"bridge without net", []string{"-n", ns, "run", "--bridge", "br0", "--addr", "10.78.0.4/24", "--", "true"}, exitUsage, "--net"},
		{"no offer", []string{"-n", ns, "run", "--net", "--bridge", "br0", "--dhcp", "--dhcp-timeout", "1s", "--", "true"}, exitSetupFailed, "no offer in 1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runNsbox(t, bin, nil, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "nsbox: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr %q: want one nsbox: line naming %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("the payload ran: stdout %q", stdout)
			}
			waitNoSandboxLinks(t, ns)
		})
	}
}

func TestRunNetworkDHCPAgainstDnsmasq(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "dnsmasq")
	bin := runBuildNsbox(t)
	ns := netLab(t)
	dir := t.TempDir()
	leases := filepath.Join(dir, "dnsmasq.leases")
	ctx, cancel := context.WithCancel(context.Background())
	dm := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--port=0", "--interface=br0", "--bind-interfaces",
		"--dhcp-range=10.78.0.150,10.78.0.160,255.255.255.0,2m", "--dhcp-option=option:router,10.78.0.1",
		"--dhcp-leasefile="+leases, "--pid-file="+filepath.Join(dir, "dnsmasq.pid"), "--no-ping")
	dm.WaitDelay = 5 * time.Second
	if err := dm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = dm.Wait() })
	testutil.WaitUDPListen(t, ns, 67, nil)
	stdout, stderr, code := runNsbox(t, bin, nil, "-n", ns, "run", "--net", "--bridge", "br0", "--dhcp",
		"--", "sh", "-c", "ip -4 -o addr show dev eth0; ip route show default")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "inet 10.78.0.15") && !strings.Contains(stdout, "inet 10.78.0.160/") {
		t.Errorf("first instruction did not see a lease from dnsmasq's range: %q", stdout)
	}
	if !strings.Contains(stdout, "default via 10.78.0.1 dev eth0") {
		t.Errorf("first instruction did not see dnsmasq's router: %q", stdout)
	}
	// dnsmasq recorded the lease, then dropped it on the sandbox's RELEASE.
	var b []byte
	for i := 0; i < 100; i++ {
		b, _ = os.ReadFile(leases)
		if !strings.Contains(string(b), "10.78.0.1") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(string(b), "10.78.0.1") {
		t.Errorf("dnsmasq still holds the sandbox's lease after it ended: %q", b)
	}
	waitNoSandboxLinks(t, ns)
}
