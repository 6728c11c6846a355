package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// nsInode returns the inode of the namespace file at path.
func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

// processInNetns starts sleep inside ns with ip netns exec (an independent
// tool) and returns its pid once its network namespace is ns's.
func processInNetns(t *testing.T, ns string) int {
	t.Helper()
	p := testutil.StartProc(t, "ip", "netns", "exec", ns, "sleep", "120")
	pid := p.Cmd.Process.Pid
	want := nsInode(t, filepath.Join("/run/netns", ns))
	for i := 0; i < 200; i++ {
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == want {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d never entered %s", pid, ns)
	return 0
}

// ifnames decodes the names of a JSON link list (ip -j or nsbox -j).
func ifnames(t *testing.T, what, out string) []string {
	t.Helper()
	var links []struct {
		Ifname string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("%s: decode %q: %v", what, out, err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Ifname)
	}
	sort.Strings(names)
	return names
}

// TestNetnsTargets: -n, netns exec, netns pids and run --netns take a name,
// a path (/run/netns/X, /proc/PID/ns/net) or a pid, and each reaches the
// same namespace that ip -n NAME shows; netns attach NAME PID names PID's
// namespace as ip netns attach does; -n X netns exec Y is a usage error.
func TestNetnsTargets(t *testing.T) {
	ns := testutil.NewNetns(t)
	a, b := testutil.UniqueName("nta"), testutil.UniqueName("ntb")
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)
	pid := processInNetns(t, ns)
	ino := nsInode(t, filepath.Join("/run/netns", ns))
	want := ifnames(t, "ip -j -n "+ns+" link", testutil.Cmd(t, "ip", "-j", "-n", ns, "link", "show"))
	if len(want) != 3 {
		t.Fatalf("ip -n %s link shows %v, want lo and the veth pair", ns, want)
	}
	targets := []string{ns, "/run/netns/" + ns, fmt.Sprintf("/proc/%d/ns/net", pid), strconv.Itoa(pid)}
	for _, target := range targets {
		out, errOut, code := cli(t, "-j", "-n", target, "link", "show")
		if code != 0 {
			t.Errorf("nsbox -n %s link show: exit %d, %s", target, code, errOut)
			continue
		}
		if got := ifnames(t, "nsbox -j -n "+target, out); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("nsbox -n %s link show: %v; ip -n %s link show: %v", target, got, ns, want)
		}
		out, errOut, code = cli(t, "netns", "exec", target, "readlink", "/proc/self/ns/net")
		if wantNS := fmt.Sprintf("net:[%d]\n", ino); code != 0 || out != wantNS {
			t.Errorf("nsbox netns exec %s readlink /proc/self/ns/net: exit %d, %q (%s); want %q", target, code, out, errOut, wantNS)
		}
		out, errOut, code = cli(t, "netns", "pids", target)
		if code != 0 || !containsLine(out, strconv.Itoa(pid)) {
			t.Errorf("nsbox netns pids %s: exit %d, %q (%s); want a line %d", target, code, out, errOut, pid)
		}
		out, errOut, code = cli(t, "run", "--netns", target, "--", "readlink", "/proc/self/ns/net")
		if wantNS := fmt.Sprintf("net:[%d]\n", ino); code != 0 || out != wantNS {
			t.Errorf("nsbox run --netns %s readlink /proc/self/ns/net: exit %d, %q (%s); want %q", target, code, out, errOut, wantNS)
		}
	}
	ipPids := testutil.Cmd(t, "ip", "netns", "pids", ns)
	if out, _, _ := cli(t, "netns", "pids", strconv.Itoa(pid)); out != ipPids {
		t.Errorf("nsbox netns pids %d: %q; ip netns pids %s: %q", pid, out, ns, ipPids)
	}

	// netns attach NAME PID, then ip sees NAME as PID's namespace.
	att := testutil.UniqueName("ntatt")
	t.Cleanup(func() { _, _ = testutil.CmdErr("ip", "netns", "del", att) })
	if _, errOut, code := cli(t, "netns", "attach", att, strconv.Itoa(pid)); code != 0 {
		t.Fatalf("nsbox netns attach %s %d: exit %d, %s", att, pid, code, errOut)
	}
	if got := nsInode(t, filepath.Join("/run/netns", att)); got != ino {
		t.Errorf("after netns attach, /run/netns/%s is namespace %d, want %d", att, got, ino)
	}
	if got := ifnames(t, "ip -j -n "+att, testutil.Cmd(t, "ip", "-j", "-n", att, "link", "show")); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("ip -n %s (attached) link: %v, want %v", att, got, want)
	}
	if _, errOut, code := cli(t, "netns", "attach", att, strconv.Itoa(pid)); code != 1 || errOut != "nsbox: netns attach "+att+": namespace already exists\n" {
		t.Errorf("second netns attach %s: exit %d, %q", att, code, errOut)
	}

	// -n X netns exec Y: an error, not -n ignored.
	if _, errOut, code := cli(t, "-n", ns, "netns", "exec", ns, "true"); code != 2 || !strings.Contains(errOut, "-n "+ns+" does not apply") {
		t.Errorf("nsbox -n %s netns exec %s true: exit %d, %q; want exit 2 saying -n does not apply", ns, ns, code, errOut)
	}
	if _, err := os.Stat("/run/netns/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("a namespace named %d appeared", pid)
	}
}

func containsLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if l == line {
			return true
		}
	}
	return false
}
