package main

import (
	"encoding/json"
	"errors"
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

// procComm is /proc/PID/comm, "" once the process is gone.
func procComm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procFds lists /proc/PID/fd.
func procFds(t *testing.T, pid int) []string {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("fds of %d: %v", pid, err)
	}
	var fds []string
	for _, e := range es {
		fds = append(fds, e.Name())
	}
	return fds
}

// sandboxEth0 is eth0 of the network namespace of pid, seen by ip -j
// through nsenter: its address, its MAC and its host end's ifindex.
func sandboxEth0(t *testing.T, pid int) (addr, mac string, peer int) {
	t.Helper()
	out, err := exec.Command("nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", pid), "ip", "-j", "addr", "show", "dev", "eth0").Output()
	if err != nil {
		t.Fatalf("ip addr in the namespace of %d: %v", pid, err)
	}
	var ls []struct {
		Address   string   `json:"address"`
		LinkIndex int      `json:"link_index"`
		AddrInfo  []ipAddr `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &ls); err != nil || len(ls) != 1 {
		t.Fatalf("ip -j addr in the namespace of %d: %q: %v", pid, out, err)
	}
	for _, a := range ls[0].AddrInfo {
		if a.Family == "inet" {
			addr = a.Local
		}
	}
	return addr, ls[0].Address, ls[0].LinkIndex
}

// TestRunPoolExecInPlace: `run --pool NAME --net -- CMD` (the pool's
// namespace the only one, no flag that needs a parent) execs the payload
// in place: the process nsbox started is the payload itself, in the
// pool's namespace, holding stdio only. The claim's connection closed at
// the exec, yet the slot stays claimed until the payload ends; then it is
// destroyed: its host end leaves the bridge's namespace, its lease is
// released in dnsmasq's lease file, and the bridge has --size ports again.
// The exit status is the payload's (a code, or the signal that ended it);
// an exec that fails gives the slot back and says what Go's path says;
// another namespace (--ipc) keeps nsbox's process around the payload.
func TestRunPoolExecInPlace(t *testing.T) {
	testutil.RequireTool(t, "nsenter")
	dl := testutil.NewDHCPLab(t, 0, true)
	d := testutil.StartDnsmasq(t, dl, fmt.Sprintf("--dhcp-range=%s.20,%s.99,255.255.255.0,1h", dl.Prefix, dl.Prefix))
	bin := runBuildNsbox(t)
	name := testutil.UniqueName("tp")
	const size = 2
	p := startPoolProc(t, bin, name, "-n", dl.ServerNS, "pool", "start", name, "--bridge", dl.Bridge, "--size", "2", "--dhcp", "-v")
	waitReady(t, bin, name, size, p)
	full := func() {
		t.Helper()
		if !waitFor(30*time.Second, func() bool {
			st, code := poolStatus(t, bin, name)
			return code == 0 && st.Ready == size && st.InUse == 0 && bridgePorts(t, dl.ServerNS, dl.Bridge) == size
		}) {
			st, _ := poolStatus(t, bin, name)
			t.Fatalf("pool not back to %d ready and %d bridge ports: %+v, %d ports", size, size, st, bridgePorts(t, dl.ServerNS, dl.Bridge))
		}
	}
	full()

	sb := startNsbox(t, bin, "run", "--pool", name, "--net", "--", "sleep", "60")
	pid := sb.Cmd.Process.Pid
	if !waitFor(10*time.Second, func() bool { return procComm(pid) == "sleep" }) {
		t.Fatalf("nsbox's process %d is %q, not the payload (sleep): %s", pid, procComm(pid), sb.Stderr.String())
	}
	self, _ := os.Readlink("/proc/self/ns/net")
	if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); ns == self || ns == "" {
		t.Fatalf("payload in network namespace %q, the test's is %q", ns, self)
	}
	if fds := procFds(t, pid); strings.Join(fds, ",") != "0,1,2" {
		t.Errorf("payload's fds %v, want stdio only (the claim's connection closed at the exec)", fds)
	}
	addr, mac, peer := sandboxEth0(t, pid)
	if !strings.HasPrefix(addr, dl.Prefix+".") {
		t.Fatalf("payload's address %q, want a lease of %s.0/24", addr, dl.Prefix)
	}
	if got := testutil.DnsmasqLeases(d.LeaseFile)[mac]; got != addr {
		t.Fatalf("dnsmasq lease of %s: %q, want %s", mac, got, addr)
	}
	hostEnd := func() bool {
		var links []struct {
			Ifindex int `json:"ifindex"`
		}
		testutil.IPJSON(t, &links, "-n", dl.ServerNS, "link", "show")
		for _, l := range links {
			if l.Ifindex == peer {
				return true
			}
		}
		return false
	}
	// The claim outlives its connection (closed at the exec).
	time.Sleep(300 * time.Millisecond)
	if st, code := poolStatus(t, bin, name); code != 0 || st.InUse != 1 {
		t.Fatalf("pool status while the payload runs: %+v (exit %d), want 1 in use", st, code)
	}
	if !hostEnd() {
		t.Fatalf("host end %d of the running payload's slot is gone", peer)
	}

	sb.Cmd.Process.Signal(syscall.SIGTERM)
	exited, err := sb.Wait(10 * time.Second)
	var ee *exec.ExitError
	if !exited || !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("payload after SIGTERM: exited %v, %v; want it ended by SIGTERM", exited, err)
	}
	if !waitFor(10*time.Second, func() bool { return !hostEnd() }) {
		t.Errorf("host end %d still in %s 10 s after the payload ended", peer, dl.ServerNS)
	}
	if !waitFor(10*time.Second, func() bool { _, ok := testutil.DnsmasqLeases(d.LeaseFile)[mac]; return !ok }) {
		t.Errorf("lease of %s (%s) still in dnsmasq's lease file 10 s after the payload ended", mac, addr)
	}
	full()

	if _, stderr, code := runNsboxEnv(t, nil, nil, bin, "run", "--pool", name, "--net", "--", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("run --pool -- sh -c 'exit 7': exit %d (%s), want 7", code, stderr)
	}
	full()

	// An exec that fails (a file the kernel cannot run): the same line and
	// code as Go's path, and the slot goes back.
	bad := filepath.Join(t.TempDir(), "notelf")
	if err := os.WriteFile(bad, []byte("\x00\x01 not a program\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var says [2]string
	for i, mode := range []string{"0", "1"} {
		_, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + mode}, nil, bin, "run", "--pool", name, "--net", "--", bad)
		if code != 126 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nsbox: ") {
			t.Errorf("run --pool of a file that is no program (NSBOX_NO_FASTPATH=%s): exit %d, %q; want 126 and one nsbox: line", mode, code, stderr)
		}
		says[i] = stderr
		full()
	}
	if says[0] != says[1] {
		t.Errorf("failed exec: fast path says %q, Go path %q", says[0], says[1])
	}

	// Another namespace: nsbox's process stays, the payload is its child.
	sb = startNsbox(t, bin, "run", "--pool", name, "--net", "--ipc", "--", "sleep", "60")
	pid = sb.Cmd.Process.Pid
	if !waitFor(10*time.Second, func() bool { st, code := poolStatus(t, bin, name); return code == 0 && st.InUse == 1 }) {
		t.Fatalf("run --pool --net --ipc did not claim: %s", sb.Stderr.String())
	}
	if c := procComm(pid); c != "nsbox" {
		t.Errorf("run --pool --net --ipc: nsbox's process is %q, want nsbox (spawning the payload)", c)
	}
	sb.Cmd.Process.Signal(syscall.SIGTERM)
	if exited, err := sb.Wait(10 * time.Second); !exited || !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Errorf("run --pool --net --ipc after SIGTERM: exited %v, %v; want exit %d", exited, err, 128+int(syscall.SIGTERM))
	}
	full()
}
