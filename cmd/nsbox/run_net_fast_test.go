package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// The C fast path of `nsbox [-n NS] run --net --bridge BR --addr CIDR ...`
// (csrc/net_fast.c) against the Go path (NSBOX_NO_FASTPATH=1) of the same
// command line, observed with ip from inside the payload and in the lab.

// netFastModes are the two paths of every check: the C fast path, and Go.
var netFastModes = []struct{ name, env string }{{"fast-path", "0"}, {"go-path", "1"}}

// runNsboxEnv runs bin with args and extra environment under a 30 s limit
// and returns stdout, stderr and the exit code. With wrap, the command line
// is prefixed by it (ip netns exec NS).
func runNsboxEnv(t *testing.T, env []string, wrap []string, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append(append(append([]string(nil), wrap...), bin), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = "/"
	return runCaptured(t, cmd)
}

// goInitLines are the lines GODEBUG=inittrace=1 makes the Go runtime print
// when it starts; the C fast path exits before it would.
func goInitLines(stderr string) int {
	n := 0
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "init ") && strings.Contains(l, " @") {
			n++
		}
	}
	return n
}

// ipLink is the part of `ip -j addr` / `ip -j link` that both paths must
// agree on (no index, MAC or lifetimes).
type ipLink struct {
	Ifname    string   `json:"ifname"`
	Flags     []string `json:"flags"`
	MTU       int      `json:"mtu"`
	Operstate string   `json:"operstate"`
	LinkType  string   `json:"link_type"`
	Master    string   `json:"master"`
	NetnsID   *int     `json:"link_netnsid"`
	AddrInfo  []ipAddr `json:"addr_info"`
}

type ipAddr struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	Prefixlen int    `json:"prefixlen"`
	Broadcast string `json:"broadcast"`
	Scope     string `json:"scope"`
	Label     string `json:"label"`
	Dynamic   bool   `json:"dynamic"`
	NoPrefix  bool   `json:"noprefixroute"`
}

type ipRoute struct {
	Dst      string   `json:"dst"`
	Gateway  string   `json:"gateway"`
	Dev      string   `json:"dev"`
	Protocol string   `json:"protocol"`
	Scope    string   `json:"scope"`
	Prefsrc  string   `json:"prefsrc"`
	Metric   int      `json:"metric"`
	Flags    []string `json:"flags"`
}

// sandboxView is what the payload saw of its own namespace.
type sandboxView struct {
	Links  []ipLink
	Routes []ipRoute
	Ping   bool     // it reached the bridge's address
	Ports  []ipLink // br0's ports in the lab, seen while the payload ran
}

// netFastScript prints the payload's view, sections separated by ===; lab
// is the bridge's namespace.
func netFastScript(lab string) string {
	return `ip -j addr; echo ===; ip -j route show table main; echo ===; ` +
		`if ping -c 1 -W 5 10.78.0.1 >/dev/null 2>&1; then echo true; else echo false; fi; echo ===; ` +
		`ip -j -n ` + lab + ` link show master br0; exit 7`
}

// parseView decodes the payload's output, dropping what differs between
// any two sandboxes (the IPv6 link-local address, which follows the random
// MAC, and whether DAD is still running).
func parseView(t *testing.T, out string) sandboxView {
	t.Helper()
	parts := strings.Split(out, "===")
	if len(parts) != 4 {
		t.Fatalf("payload output %q", out)
	}
	var v sandboxView
	for i, dst := range []any{&v.Links, &v.Routes, &v.Ping, &v.Ports} {
		if err := json.Unmarshal([]byte(strings.TrimSpace(parts[i])), dst); err != nil {
			t.Fatalf("payload output part %d %q: %v", i, parts[i], err)
		}
	}
	for i := range v.Links {
		for j := range v.Links[i].AddrInfo {
			if a := &v.Links[i].AddrInfo[j]; a.Family == "inet6" && a.Scope == "link" {
				a.Local = "link-local"
			}
		}
	}
	return v
}

func findLink(links []ipLink, name string) *ipLink {
	for i := range links {
		if links[i].Ifname == name {
			return &links[i]
		}
	}
	return nil
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

// checkView checks what the payload must see whatever the path: lo and
// ifname up, the address, the default route, the bridge reached, the host
// end a port of br0 and up.
func checkView(t *testing.T, v sandboxView, ifname string) {
	t.Helper()
	lo, eth := findLink(v.Links, "lo"), findLink(v.Links, ifname)
	if lo == nil || !hasFlag(lo.Flags, "UP") {
		t.Errorf("lo is not up inside: %+v", lo)
	}
	if eth == nil || !hasFlag(eth.Flags, "UP") || eth.Operstate != "UP" {
		t.Fatalf("%s is not up inside: %+v", ifname, eth)
	}
	found := false
	for _, a := range eth.AddrInfo {
		if a.Family == "inet" {
			found = a.Local == "10.78.0.2" && a.Prefixlen == 24 && a.Scope == "global" && a.Label == ifname
		}
	}
	if !found {
		t.Errorf("%s has not 10.78.0.2/24 scope global: %+v", ifname, eth.AddrInfo)
	}
	var def *ipRoute
	for i := range v.Routes {
		if v.Routes[i].Dst == "default" {
			def = &v.Routes[i]
		}
	}
	if def == nil || def.Gateway != "10.78.0.1" || def.Dev != ifname {
		t.Errorf("no default route via 10.78.0.1 dev %s: %+v", ifname, v.Routes)
	}
	if !v.Ping {
		t.Errorf("the payload did not reach the bridge's address 10.78.0.1")
	}
	if len(v.Ports) != 1 || !strings.HasPrefix(v.Ports[0].Ifname, "nsb") || v.Ports[0].Master != "br0" ||
		!hasFlag(v.Ports[0].Flags, "UP") {
		t.Errorf("br0's ports while the payload ran: %+v (want one nsb* host end, up)", v.Ports)
	}
}

// TestRunNetFastMatchesGo: the same static network through the C fast path
// and through Go looks the same from inside (ip -j addr, route), reaches the
// bridge, passes the exit code through and leaves no veth; the fast path
// never starts the Go runtime.
func TestRunNetFastMatchesGo(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "ip")
	testutil.RequireTool(t, "ping")
	bin := runBuildNsbox(t)
	lab := netLab(t)
	for _, tc := range []struct {
		name   string
		wrap   []string // run nsbox inside the lab: the bridge in its own namespace
		labArg string
		ifname string
		extra  []string
	}{
		{"bridge-in-named-ns", nil, lab, "eth0", nil},
		{"bridge-in-own-ns-with-init", []string{"ip", "netns", "exec", lab}, "", "sbx1", []string{"--pid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			views := map[string]sandboxView{}
			for _, m := range netFastModes {
				var args []string
				if tc.labArg != "" {
					args = append(args, "-n", tc.labArg)
				}
				args = append(append(args, "run"), tc.extra...)
				args = append(args, "--net", "--bridge", "br0", "--addr", "10.78.0.2/24", "--gateway", "10.78.0.1")
				if tc.ifname != "eth0" {
					args = append(args, "--ifname", tc.ifname)
				}
				args = append(args, "--", "sh", "-c", netFastScript(lab))
				stdout, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + m.env, "GODEBUG=inittrace=1"},
					tc.wrap, bin, args...)
				if code != 7 {
					t.Fatalf("%s: exit %d, want the payload's 7; stderr %q", m.name, code, stderr)
				}
				n := goInitLines(stderr)
				if m.name == "fast-path" && n != 0 {
					t.Errorf("fast path: the Go runtime started (%d init lines): %q", n, stderr)
				}
				if m.name == "go-path" && n == 0 {
					t.Errorf("go path: no init line with GODEBUG=inittrace=1 (the probe is broken): %q", stderr)
				}
				v := parseView(t, stdout)
				checkView(t, v, tc.ifname)
				views[m.name] = v
				waitNoSandboxLinks(t, lab)
			}
			fast, slow := views["fast-path"], views["go-path"]
			if !reflect.DeepEqual(fast.Links, slow.Links) {
				t.Errorf("ip -j addr differs:\nC  %+v\nGo %+v", fast.Links, slow.Links)
			}
			if !reflect.DeepEqual(fast.Routes, slow.Routes) {
				t.Errorf("ip -j route differs:\nC  %+v\nGo %+v", fast.Routes, slow.Routes)
			}
			if !reflect.DeepEqual(fast.Ports[0].Flags, slow.Ports[0].Flags) || fast.Ports[0].Operstate != slow.Ports[0].Operstate {
				t.Errorf("host end differs:\nC  %+v\nGo %+v", fast.Ports, slow.Ports)
			}
		})
	}
}

// linkMonitor records the names of the nsb* links that appear in ns (ip
// monitor), so a test can tell how many veths a run created, even briefly.
type linkMonitor struct {
	mu    sync.Mutex
	names map[string]bool
	probe string // a dummy link made to know that the monitor listens
	ready bool   // the probe was seen
	cmd   *exec.Cmd
	done  chan struct{}
}

var nsbName = regexp.MustCompile(`\bnsb[0-9a-f]+\b`)

func startLinkMonitor(t *testing.T, ns string) *linkMonitor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	m := &linkMonitor{names: map[string]bool{}, done: make(chan struct{}), probe: testutil.UniqueName("mon")}
	m.cmd = exec.CommandContext(ctx, "ip", "-n", ns, "monitor", "link")
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			m.mu.Lock()
			for _, n := range nsbName.FindAllString(sc.Text(), -1) {
				m.names[n] = true
			}
			if strings.Contains(sc.Text(), m.probe) {
				m.ready = true
			}
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-m.done
		_ = m.cmd.Wait()
	})
	// ip monitor subscribes shortly after it starts: wait (bounded) until
	// it reports a link event of the test's own.
	for i := 0; i < 50; i++ {
		testutil.Cmd(t, "ip", "-n", ns, "link", "add", m.probe, "type", "bridge")
		testutil.Cmd(t, "ip", "-n", ns, "link", "del", m.probe)
		time.Sleep(50 * time.Millisecond)
		m.mu.Lock()
		ready := m.ready
		m.mu.Unlock()
		if ready {
			return m
		}
	}
	t.Fatalf("ip -n %s monitor link reports nothing", ns)
	return nil
}

// count waits (bounded) for the events to settle and returns how many
// distinct nsb* links appeared.
func (m *linkMonitor) count() int {
	time.Sleep(300 * time.Millisecond)
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.names)
}

// TestRunNetFastFailures: every failure gives exactly the message and exit
// code of the Go path, the payload never runs, and no veth is left. A
// failure after the C path created its veth (a gateway the kernel refuses)
// shows two veths in the lab (C's, deleted, then Go's), the Go path one.
func TestRunNetFastFailures(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "ip")
	bin := runBuildNsbox(t)
	lab := netLab(t)
	missing := testutil.UniqueName("nsbnone")
	pid := regexp.MustCompile(`\bnsb[0-9a-f]+\b`)
	cases := []struct {
		name    string
		args    []string
		code    int
		veths   map[string]int // nsb* links seen per mode; nil: not checked
		payload bool           // the payload runs (and exits 0)
	}{
		{"missing bridge", []string{"-n", lab, "run", "--net", "--bridge", "nosuch", "--addr", "10.78.0.4/24"}, exitSetupFailed,
			map[string]int{"fast-path": 0, "go-path": 0}, false},
		{"not a bridge", []string{"-n", lab, "run", "--net", "--bridge", "notbr", "--addr", "10.78.0.4/24"}, exitSetupFailed,
			map[string]int{"fast-path": 0, "go-path": 0}, false},
		{"missing namespace", []string{"-n", missing, "run", "--net", "--bridge", "br0", "--addr", "10.78.0.4/24"}, exitSetupFailed,
			nil, false},
		{"interface name taken inside", []string{"-n", lab, "run", "--net", "--bridge", "br0", "--addr", "10.78.0.4/24", "--ifname", "lo"},
			exitSetupFailed, map[string]int{"fast-path": 0, "go-path": 0}, false},
		{"gateway refused by the kernel", []string{"-n", lab, "run", "--net", "--bridge", "br0", "--addr", "10.78.0.4/24", "--gateway", "10.78.0.255"},
			exitSetupFailed, map[string]int{"fast-path": 2, "go-path": 1}, false},
		{"address of the bridge itself", []string{"-n", lab, "run", "--net", "--bridge", "br0", "--addr", "10.78.0.1/24"}, 0,
			map[string]int{"fast-path": 1, "go-path": 1}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				stdout, stderr string
				code           int
			}
			res := map[string]result{}
			for _, m := range netFastModes {
				marker := filepath.Join(t.TempDir(), "ran")
				mon := startLinkMonitor(t, lab)
				args := append(append([]string(nil), tc.args...), "--", "sh", "-c", "echo ran; touch "+marker)
				stdout, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + m.env}, nil, bin, args...)
				res[m.name] = result{stdout, pid.ReplaceAllString(stderr, "nsbPID"), code}
				if code != tc.code {
					t.Errorf("%s: exit %d, want %d (stderr %q)", m.name, code, tc.code, stderr)
				}
				_, err := os.Stat(marker)
				if ran := err == nil; ran != tc.payload {
					t.Errorf("%s: payload ran %v, want %v", m.name, ran, tc.payload)
				}
				if !tc.payload {
					lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
					if len(lines) != 1 || !strings.HasPrefix(lines[0], "nsbox: ") || stdout != "" {
						t.Errorf("%s: stdout %q stderr %q: want one nsbox: line and no output", m.name, stdout, stderr)
					}
				}
				if want, ok := tc.veths[m.name]; ok {
					if got := mon.count(); got != want {
						t.Errorf("%s: %d sandbox veths appeared in the lab, want %d", m.name, got, want)
					}
				}
				waitNoSandboxLinks(t, lab)
			}
			if res["fast-path"] != res["go-path"] {
				t.Errorf("C fast path and Go differ:\nC  %+v\nGo %+v", res["fast-path"], res["go-path"])
			}
		})
	}
}

// TestRunNetFastSignals: on the fast path, SIGTERM reaches the payload (exit
// 143) and SIGKILL of nsbox kills the payload (parent-death signal), and
// either way the kernel removes the veth with the sandbox's namespace.
func TestRunNetFastSignals(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "ip")
	bin := runBuildNsbox(t)
	lab := netLab(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			pidFile := filepath.Join(t.TempDir(), "pid")
			cmd := exec.CommandContext(ctx, bin, "-n", lab, "run", "--net", "--bridge", "br0", "--addr", "10.78.0.5/24",
				"--", "sh", "-c", "echo $$ > "+pidFile+"; exec sleep 30")
			cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH=0", "GODEBUG=inittrace=1")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var payload int
			for i := 0; i < 200 && payload == 0; i++ {
				b, _ := os.ReadFile(pidFile)
				payload, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				time.Sleep(25 * time.Millisecond)
			}
			if payload == 0 {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatal("the payload never started")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if sig == syscall.SIGTERM && cmd.ProcessState.ExitCode() != 128+int(syscall.SIGTERM) {
				t.Errorf("exit %d, want 143 (the payload died of SIGTERM)", cmd.ProcessState.ExitCode())
			}
			if n := goInitLines(stderr.String()); n != 0 {
				t.Errorf("the Go runtime started (%d init lines): the fast path did not run", n)
			}
			gone := false
			for i := 0; i < 200 && !gone; i++ {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", payload))
				gone = err != nil || !strings.Contains(string(b), "sleep")
				time.Sleep(25 * time.Millisecond)
			}
			if !gone {
				_ = syscall.Kill(payload, syscall.SIGKILL)
				t.Errorf("the payload %d outlived nsbox", payload)
			}
			waitNoSandboxLinks(t, lab)
		})
	}
}
