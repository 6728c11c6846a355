package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

func testCgroupParent(t *testing.T) string { return testutil.CgroupParent(t) }

func cgroupChildren(parent string) []string { return testutil.CgroupChildren(parent) }

// TestRunLimitsCLI: bad values of the limit flags are one "nsbox:" line
// naming the flag, exit 125, nothing started and no group left; an OOM kill
// is reported on one line with exit 137.
func TestRunLimitsCLI(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	parent := testCgroupParent(t)
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknownSys := write("unknown.json", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","fly_away"],"action":"SCMP_ACT_ERRNO"}]}`)
	foreign := write("foreign.json", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_S390X"]}`)
	badArch := write("badarch.json", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}`)
	malformed := write("malformed.json", `{"defaultAction":`)
	misspelt := write("misspelt.json", `{"defaultAction":"SCMP_ACT_ALLOW","sycalls":[]}`)
	marker := filepath.Join(dir, "ran")
	for _, c := range []struct {
		args []string
		want string // in the message, besides the flag
	}{
		{[]string{"--cap-drop", "CAP_FLY"}, "CAP_FLY"},
		{[]string{"--cap-add", "teleport"}, "teleport"},
		{[]string{"--rlimit", "fly=1"}, "fly"},
		{[]string{"--rlimit", "nofile=10:100000000"}, "100000000"},
		{[]string{"--rlimit", "nofile=-1"}, "-1"},
		{[]string{"--seccomp", unknownSys}, "fly_away"},
		{[]string{"--seccomp", foreign}, "SCMP_ARCH_S390X"},
		{[]string{"--seccomp", badArch}, "SCMP_ARCH_VAX"},
		{[]string{"--seccomp", malformed}, "malformed.json"},
		{[]string{"--seccomp", misspelt}, "sycalls"},
		{[]string{"--memory", "-1m"}, "-1m"},
		{[]string{"--memory", "lots"}, "lots"},
		{[]string{"--memory-swap", "64m"}, "--memory"},
		{[]string{"--pids", "-3"}, "-3"},
		{[]string{"--cpus", "x"}, "x"},
		{[]string{"--memory", "64m", "--cgroup-parent", parent + "/missing"}, "missing"},
	} {
		flag := c.args[0]
		if len(c.args) > 2 {
			flag = c.args[2]
		}
		stdout, stderr, code := runNsbox(t, bin, nil, append(append([]string{"run"}, c.args...), "--", "/usr/bin/touch", marker)...)
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if code != 125 || len(lines) != 1 || !strings.HasPrefix(lines[0], "nsbox: ") ||
			!strings.Contains(lines[0], flag) || !strings.Contains(lines[0], c.want) || stdout != "" {
			t.Errorf("run %v: exit %d, stderr %q; want 125 and one nsbox: line naming %s and %q", c.args, code, stderr, flag, c.want)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("run %v started the payload", c.args)
		}
		if left := cgroupChildren(parent); len(left) > 0 {
			t.Fatalf("run %v left groups %v", c.args, left)
		}
	}

	// OOM: the one line, exit 137, no group left.
	perl := testutil.RequireTool(t, "perl")
	_, stderr, code := runNsbox(t, bin, nil, "run", "--memory", "32m", "--cgroup-parent", parent, "--",
		perl, "-e", `my @a; push @a, "x" x (1<<20) for 1..512`)
	if code != 137 || stderr != "nsbox: sandbox killed: out of memory (limit 32 MiB)\n" {
		t.Errorf("memory hog: exit %d, stderr %q; want 137 and the OOM line", code, stderr)
	}
	if left := cgroupChildren(parent); len(left) > 0 {
		t.Fatalf("OOM run left groups %v", left)
	}
}

// nsbox ps shows a named sandbox's cgroup limits and current use, the same
// as the group's own files read here.
func TestPsLimits(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	parent := testCgroupParent(t)
	t.Setenv("NSBOX_STATE_DIR", t.TempDir())
	name := testutil.UniqueName("sbl")
	statusR, statusW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer statusR.Close()
	cmd := exec.Command(bin, "run", "--name", name, "--status-fd", "3", "--memory", "48m", "--pids", "30",
		"--cpus", "0.5", "--cgroup-parent", parent, "--", "sleep", "60")
	cmd.ExtraFiles = []*os.File{statusW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	statusW.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var first map[string]any
	if err := json.NewDecoder(statusR).Decode(&first); err != nil {
		t.Fatalf("status line: %v", err)
	}
	out, stderr, code := runNsbox(t, bin, nil, "-j", "ps")
	var list []struct {
		Name   string
		Limits struct {
			Memory, Pids int64
			CPUs         float64
		}
		Usage *struct{ Memory, Pids int64 }
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("ps -j: exit %d %q %q", code, out, stderr)
	}
	found := false
	for _, e := range list {
		if e.Name != name {
			continue
		}
		found = true
		if e.Limits.Memory != 48<<20 || e.Limits.Pids != 30 || e.Limits.CPUs != 0.5 || e.Usage == nil {
			t.Fatalf("ps -j limits %+v usage %+v", e.Limits, e.Usage)
		}
		// The group's own files, read here: the sandbox is idle, so the
		// task count is stable (nsbox-init and sleep).
		var groupPids string
		for _, c := range cgroupChildren(parent) {
			if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", c, "pids.current")); err == nil {
				groupPids = strings.TrimSpace(string(b))
			}
		}
		if groupPids == "" || strconv.FormatInt(e.Usage.Pids, 10) != groupPids || e.Usage.Memory <= 0 {
			t.Errorf("ps -j usage %+v; the group's pids.current says %q", e.Usage, groupPids)
		}
	}
	if !found {
		t.Fatalf("ps -j does not list %s: %s", name, out)
	}
	if text, _, _ := runNsbox(t, bin, nil, "ps"); !strings.Contains(text, "pids=30/") || !strings.Contains(text, "mem=48MiB/") || !strings.Contains(text, "cpus=0.5") {
		t.Errorf("ps: %q; want the LIMITS column", text)
	}
	cmd.Process.Signal(unix.SIGTERM)
	cmd.Wait()
	if left := cgroupChildren(parent); len(left) > 0 {
		t.Fatalf("groups left: %v", left)
	}
}

// SIGKILL of nsbox run: the watcher kills the sandbox and removes its
// groups (with and without a PID namespace).
func TestRunCgroupNsboxKilled(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	for _, ns := range [][]string{{"--pid", "--mount"}, {"--uts"}} {
		parent := testCgroupParent(t)
		marker := testutil.UniqueName("sleep")
		args := append(append([]string{"run"}, ns...), "--pids", "10", "--memory", "32m", "--cgroup-parent", parent,
			"--", "perl", "-e", `$0 = "`+marker+`"; sleep 60`)
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		var groups []string
		for i := 0; i < 250 && len(groups) == 0; i++ {
			groups = cgroupChildren(parent)
			time.Sleep(20 * time.Millisecond)
		}
		if len(groups) == 0 {
			t.Fatalf("%v: no group appeared under %s", ns, parent)
		}
		running := false
		for i := 0; i < 250 && !running; i++ {
			out, _ := exec.Command("pgrep", "-f", "^"+marker).Output()
			running = len(out) > 0
			time.Sleep(20 * time.Millisecond)
		}
		if !running {
			t.Fatalf("%v: the payload %s is not running", ns, marker)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		for i := 0; i < 250 && len(cgroupChildren(parent)) > 0; i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if left := cgroupChildren(parent); len(left) > 0 {
			t.Fatalf("%v: groups left after SIGKILL of nsbox: %v", ns, left)
		}
		if out, _ := exec.Command("pgrep", "-f", "^"+marker).Output(); len(out) > 0 {
			t.Fatalf("%v: the payload outlived nsbox: pids %s", ns, out)
		}
	}
}
