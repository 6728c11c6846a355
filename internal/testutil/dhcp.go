package testutil

import (
	"bytes"
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
)

// DHCPLab is a LAN made of namespaces, built with iproute2: a server
// namespace holding a bridge (with the address .1 of Subnet) and N client
// namespaces, each with a veth whose inner end is ClientDev and whose other
// end is a port of the bridge. DHCP traffic never leaves these namespaces.
type DHCPLab struct {
	ServerNS string
	Bridge   string   // the bridge in ServerNS
	ServerIP string   // e.g. "10.77.3.1"
	Prefix   string   // e.g. "10.77.3" (the first three octets; the subnet is /24)
	Clients  []string // client namespace names
	// ClientDev is the interface name in every client namespace.
	ClientDev string
}

// NewDHCPLab builds a lab with n clients on subnet 10.X.Y.0/24 chosen at
// random; everything is deleted in t.Cleanup. Client interfaces are left
// down unless up is set.
func NewDHCPLab(t testing.TB, n int, up bool) *DHCPLab {
	t.Helper()
	RequirePriv(t)
	RequireTool(t, "ip")
	var rnd [2]byte
	copy(rnd[:], UniqueName("")[:2])
	lab := &DHCPLab{
		ServerNS:  NewNetns(t),
		Bridge:    "br0",
		Prefix:    fmt.Sprintf("10.%d.%d", 100+int(rnd[0])%100, int(rnd[1])),
		ClientDev: "eth0",
	}
	lab.ServerIP = lab.Prefix + ".1"
	Cmd(t, "ip", "-n", lab.ServerNS, "link", "add", lab.Bridge, "type", "bridge", "forward_delay", "0")
	Cmd(t, "ip", "-n", lab.ServerNS, "addr", "add", lab.ServerIP+"/24", "dev", lab.Bridge)
	Cmd(t, "ip", "-n", lab.ServerNS, "link", "set", lab.Bridge, "up")
	lab.Clients = make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i++ {
		lab.Clients[i] = UniqueName("nsbc")
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = lab.addClient(i, up)
		}(i)
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range lab.Clients {
			if _, err := CmdErr("ip", "netns", "del", c); err != nil && !strings.Contains(err.Error(), "No such file") {
				t.Errorf("cleanup: ip netns del %s: %v", c, err)
			}
			_ = os.RemoveAll(filepath.Join("/etc/netns", c))
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("lab client %d: %v", i, err)
		}
	}
	if up {
		lab.WaitForwarding(t)
	}
	return lab
}

// WaitForwarding waits (up to 5 s) until every port of the lab bridge is in
// the forwarding state (bridge -j link), so that a client's first DISCOVER
// is not lost to a port that is still coming up.
func (lab *DHCPLab) WaitForwarding(t testing.TB) {
	t.Helper()
	var ports []struct {
		Ifname string `json:"ifname"`
		State  string `json:"state"`
	}
	for i := 0; i < 100; i++ {
		out, err := CmdErr("bridge", "-n", lab.ServerNS, "-j", "link", "show")
		if err != nil {
			t.Fatalf("bridge -n %s -j link show: %v", lab.ServerNS, err)
		}
		ports = ports[:0]
		if err := json.Unmarshal([]byte(out), &ports); err != nil {
			t.Fatalf("bridge -j link show: %q: %v", out, err)
		}
		ready := 0
		for _, p := range ports {
			if p.State == "forwarding" {
				ready++
			}
		}
		if ready == len(lab.Clients) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("lab bridge ports not all forwarding after 5s: %+v", ports)
}

func (lab *DHCPLab) addClient(i int, up bool) error {
	c := lab.Clients[i]
	port := fmt.Sprintf("p%d", i)
	steps := [][]string{
		{"netns", "add", c},
		{"-n", c, "link", "set", "lo", "up"},
		{"-n", lab.ServerNS, "link", "add", port, "type", "veth", "peer", "name", lab.ClientDev, "netns", c},
		{"-n", lab.ServerNS, "link", "set", port, "master", lab.Bridge, "up"},
	}
	if up {
		steps = append(steps, []string{"-n", c, "link", "set", lab.ClientDev, "up"})
	}
	for _, s := range steps {
		if _, err := CmdErr("ip", s...); err != nil {
			return fmt.Errorf("ip %s: %w", strings.Join(s, " "), err)
		}
	}
	return nil
}

// IPv4Addrs returns the IPv4 "local/prefixlen" of dev in ns, with each
// address's valid lifetime in seconds (ip -j addr).
func IPv4Addrs(t testing.TB, ns, dev string) map[string]int64 {
	t.Helper()
	var v []struct {
		AddrInfo []struct {
			Family    string `json:"family"`
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
			Valid     int64  `json:"valid_life_time"`
		} `json:"addr_info"`
	}
	IPJSON(t, &v, "-n", ns, "addr", "show", "dev", dev)
	out := map[string]int64{}
	for _, l := range v {
		for _, a := range l.AddrInfo {
			if a.Family == "inet" {
				out[fmt.Sprintf("%s/%d", a.Local, a.PrefixLen)] = a.Valid
			}
		}
	}
	return out
}

// IPv4Routes returns "dst via gateway dev DEV" lines of ns's main table
// (ip -j route), dst being "default" for the default route.
func IPv4Routes(t testing.TB, ns string) []string {
	t.Helper()
	var v []struct {
		Dst     string `json:"dst"`
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
	}
	IPJSON(t, &v, "-n", ns, "-4", "route", "show")
	var out []string
	for _, r := range v {
		s := r.Dst
		if r.Gateway != "" {
			s += " via " + r.Gateway
		}
		out = append(out, s+" dev "+r.Dev)
	}
	return out
}

// Proc is a peer process (dnsmasq, udhcpc, dhclient) started by a test; it
// is killed and waited for in t.Cleanup.
type Proc struct {
	Cmd    *exec.Cmd
	Stderr *SyncBuffer
	done   chan struct{}
	err    error
}

// SyncBuffer is a bytes.Buffer safe for a process writing and a test
// reading.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartProc starts name with args (stdout and stderr collected) and stops
// it in t.Cleanup as a user would, with SIGTERM, so that it removes what it
// made (an nsbox dhcp client its pid file in /run/nsbox); one still running
// 5 s later is killed. The process gets a hard limit of 2 min.
func StartProc(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	p := &Proc{Cmd: exec.CommandContext(ctx, name, args...), Stderr: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Stderr, p.Stderr
	if err := p.Cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			t.Logf("%s did not stop within 5 s of SIGTERM: killed", name)
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
		cancel()
	})
	return p
}

// Wait waits up to d for the process to exit and returns its error.
func (p *Proc) Wait(d time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(d):
		return false, nil
	}
}

// Dnsmasq is a dnsmasq DHCP server running in a lab's server namespace.
type Dnsmasq struct {
	*Proc
	LeaseFile string
}

// StartDnsmasq runs dnsmasq (DHCP only, --no-ping, no DNS, no config file)
// on the lab's bridge with the pool .100-.200 and the extra arguments (for
// example --dhcp-option=...), and waits until it listens on port 67.
func StartDnsmasq(t testing.TB, lab *DHCPLab, extra ...string) *Dnsmasq {
	t.Helper()
	RequireTool(t, "dnsmasq")
	dir := t.TempDir()
	d := &Dnsmasq{LeaseFile: filepath.Join(dir, "dnsmasq.leases")}
	args := append([]string{"netns", "exec", lab.ServerNS, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--port=0", "--interface=" + lab.Bridge, "--bind-interfaces",
		fmt.Sprintf("--dhcp-range=%s.100,%s.200,255.255.255.0,1h", lab.Prefix, lab.Prefix),
		"--dhcp-leasefile=" + d.LeaseFile, "--pid-file=" + filepath.Join(dir, "dnsmasq.pid"), "--no-ping",
		"--dhcp-authoritative"}, extra...)
	d.Proc = StartProc(t, "ip", args...)
	WaitUDPListen(t, lab.ServerNS, 67, d.Proc)
	return d
}

// WaitUDPListen waits (up to 10 s) until something in ns listens on UDP
// port; it fails early if p exits.
func WaitUDPListen(t testing.TB, ns string, port int, p *Proc) {
	t.Helper()
	waitListen(t, ns, "udp", port, p)
}

// waitListen waits (up to 10 s) until something in ns listens on port of
// proto ("udp" or "tcp", as ss shows it); it fails early if p exits.
func waitListen(t testing.TB, ns, proto string, port int, p *Proc) {
	t.Helper()
	for i := 0; i < 200; i++ {
		out, _ := CmdErr("ip", "netns", "exec", ns, "ss", "-Hln", "--"+proto, fmt.Sprintf("sport = :%d", port))
		if strings.TrimSpace(out) != "" {
			return
		}
		if p != nil {
			if exited, err := p.Wait(0); exited {
				t.Fatalf("%s exited before listening: %v: %s", p.Cmd.Path, err, p.Stderr.String())
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s port %d in %s after 10s", proto, port, ns)
}

// EnvRecorderScript writes a shell script into dir that appends its
// environment, one variable per line, followed by a line "--", to out. It
// changes nothing else: used as udhcpc's -s and dhclient's -sf so that the
// peers configure nothing and never touch the host's resolv.conf.
func EnvRecorderScript(t testing.TB, dir, out string) string {
	t.Helper()
	path := filepath.Join(dir, "record-env.sh")
	script := fmt.Sprintf("#!/bin/sh\n{ echo \"argv=$*\"; env; echo --; } >> '%s'\nexit 0\n", out)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// RecordedEnvs parses what EnvRecorderScript wrote: one map per call.
func RecordedEnvs(path string) []map[string]string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []map[string]string
	cur := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "--" {
			out = append(out, cur)
			cur = map[string]string{}
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			cur[k] = v
		}
	}
	return out
}

// DnsmasqLeases returns the "mac ip" pairs of dnsmasq's lease file.
func DnsmasqLeases(path string) map[string]string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 {
			out[f[1]] = f[2]
		}
	}
	return out
}
