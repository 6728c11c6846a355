package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// payloadView is what a sandbox's payload looks like from outside: the
// /proc/PID/status lines of its capabilities, ids, no_new_privs and seccomp,
// /proc/PID/limits, its environment, its pids group's limit and members, and
// which of the test's namespaces it shares.
type payloadView struct {
	status     map[string]string
	limits     string
	env        []string
	pidsMax    string
	inGroup    bool
	group      string // its path in the pids hierarchy, the random part cut
	sharedNS   []string
	goRuntime  bool // nsbox's Go runtime started (GODEBUG=inittrace=1)
	nsboxTasks int
}

// heldRun is an nsbox run (startHeld) whose payload prints its pid and
// waits on its stdin, so that a test can look at it from outside.
type heldRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	argv   []string
	stdin  io.WriteCloser
	stderr strings.Builder
}

// startHeld starts `nsbox run ARGS -- sh -c 'echo $$; read x; true'` with
// NSBOX_NO_FASTPATH=mode and GODEBUG=inittrace=1 (goInitLines tells
// whether Go's runtime started), and returns once the payload runs. The
// run is ended by end, or killed when the test ends (at most 30 s).
func startHeld(t *testing.T, bin, mode string, args ...string) *heldRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	h := &heldRun{t: t, argv: append(append([]string{"run"}, args...), "--", "/bin/sh", "-c", "echo $$; read x; true")}
	h.cmd = exec.CommandContext(ctx, bin, h.argv...)
	h.cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH="+mode, "GODEBUG=inittrace=1")
	h.cmd.Dir = "/"
	h.cmd.Stderr = &h.stderr
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.stdin.Close()
		h.cmd.Wait()
		cancel()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("nsbox %q: no pid line: %v (stderr %q)", h.argv, err, h.stderr.String())
	}
	if strings.TrimSpace(line) == "" {
		t.Fatalf("empty pid line")
	}
	return h
}

// end lets the payload end and waits for nsbox, which must succeed; it
// tells whether nsbox's Go runtime started.
func (h *heldRun) end() (goRuntime bool) {
	h.t.Helper()
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		h.t.Fatalf("nsbox %q: %v (stderr %q)", h.argv, err, h.stderr.String())
	}
	return goInitLines(h.stderr.String()) > 0
}

// observeSandbox starts nsbox with args and a payload that waits on its
// stdin, reads the payload's files from outside, lets it end and checks that
// its group is gone.
func observeSandbox(t *testing.T, bin, mode string, args ...string) payloadView {
	t.Helper()
	h := startHeld(t, bin, mode, args...)
	cmd := h.cmd
	pid := payloadBelow(t, cmd.Process.Pid)
	v := payloadView{status: map[string]string{}}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		k, val, _ := strings.Cut(l, ":")
		switch k {
		case "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters", "Uid", "Gid", "Groups":
			v.status[k] = strings.TrimSpace(val)
		}
	}
	lim, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	v.limits = string(lim)
	envb, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(string(envb), "\x00") {
		if kv != "" && !strings.HasPrefix(kv, "NSBOX_NO_FASTPATH=") {
			v.env = append(v.env, kv)
		}
	}
	slices.Sort(v.env)
	for _, k := range []string{"mnt", "pid", "net", "ipc", "uts", "cgroup"} {
		var a, b string
		a, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, k))
		b, _ = os.Readlink("/proc/self/ns/" + k)
		if a == b {
			v.sharedNS = append(v.sharedNS, k)
		}
	}
	if dir := pidsGroupDir(t, pid); dir != "" {
		b, _ := os.ReadFile(filepath.Join(dir, "pids.max"))
		v.pidsMax = strings.TrimSpace(string(b))
		procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		v.inGroup = slices.Contains(strings.Fields(string(procs)), strconv.Itoa(pid))
		v.group = filepath.Base(dir)
		want := "nsbox-" + strconv.Itoa(cmd.Process.Pid) + "-"
		if !strings.HasPrefix(v.group, want) || len(v.group) != len(want)+8 {
			t.Errorf("group %s: want %sXXXXXXXX", dir, want)
		}
		v.group = filepath.Dir(strings.TrimPrefix(dir, "/sys/fs/cgroup/pids")) + "/nsbox-NSBOXPID-XXXXXXXX"
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", cmd.Process.Pid))
	v.nsboxTasks = len(tasks)
	v.goRuntime = h.end()
	// Nothing is left: no group named after this nsbox, in any hierarchy.
	out, _ := exec.Command("find", "/sys/fs/cgroup", "-maxdepth", "5", "-name", "nsbox-"+strconv.Itoa(cmd.Process.Pid)+"-*").Output()
	if len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("groups left after nsbox %q: %s", h.argv, out)
	}
	return v
}

// payloadBelow finds the payload below nsbox (pid): the child of nsbox's
// child nsbox-init (nsbox's other child is the cgroup watcher).
func payloadBelow(t *testing.T, nsbox int) int {
	t.Helper()
	children := func(p int) []int {
		var out []int
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, e := range ents {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", p, e.Name()))
			for _, f := range strings.Fields(string(b)) {
				n, _ := strconv.Atoi(f)
				out = append(out, n)
			}
		}
		return out
	}
	for try := 0; try < 300; try++ {
		for _, c := range children(nsbox) {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c))
			if strings.TrimSpace(string(comm)) != "nsbox-init" {
				continue
			}
			if p := children(c); len(p) > 0 {
				return p[0]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no payload below nsbox %d", nsbox)
	return 0
}

// pidsGroupDir is pid's group in the v1 pids hierarchy ("" for the root).
func pidsGroupDir(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), "pids") && parts[2] != "/" {
			// Paths are shown relative to the reader's cgroup
			// namespace: the test's, the host's.
			return "/sys/fs/cgroup/pids" + parts[2]
		}
	}
	return ""
}

// TestSandboxFastParity runs the limit flags the C fast path takes once
// through it and once through Go and compares what the payload looks like
// from outside; the C run must not have started the Go runtime.
func TestSandboxFastParity(t *testing.T) {
	testutil.RequirePriv(t)
	if _, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err != nil {
		t.Skip("needs the v1 pids hierarchy at /sys/fs/cgroup/pids (this machine's)")
	}
	bin := runBuildNsbox(t)
	for _, args := range [][]string{
		{"--sandbox"},
		{"--sandbox", "--cap-add", "kill", "--seccomp", "unconfined", "--pids", "77"},
		{"--sandbox", "--setenv", "HOME=/h", "--gid", "0"},
		{"--cap-drop", "ALL", "--cap-add", "net_raw", "--no-new-privs"},
		{"--pids", "33", "--seccomp", "default"},
		{"--cap-drop", "sys_admin", "--seccomp", "default"},
		// A numeric --uid (the user's groups and environment from /etc).
		{"--sandbox", "--uid", "0", "--gid", "0"},
		{"--ro-root", "--dev", "--uid", "65534", "--setenv", "USER=u"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			c := observeSandbox(t, bin, "0", args...)
			g := observeSandbox(t, bin, "1", args...)
			if c.goRuntime || c.nsboxTasks != 1 {
				t.Errorf("C path: Go runtime %v, nsbox has %d threads; want the fast path", c.goRuntime, c.nsboxTasks)
			}
			if !g.goRuntime {
				t.Errorf("NSBOX_NO_FASTPATH=1 did not run Go")
			}
			if fmt.Sprint(c.status) != fmt.Sprint(g.status) {
				t.Errorf("/proc/PID/status:\n C  %v\n Go %v", c.status, g.status)
			}
			if c.limits != g.limits {
				t.Errorf("/proc/PID/limits:\n C  %s\n Go %s", c.limits, g.limits)
			}
			if strings.Join(c.env, "\n") != strings.Join(g.env, "\n") {
				t.Errorf("environment:\n C  %q\n Go %q", c.env, g.env)
			}
			if c.pidsMax != g.pidsMax || c.inGroup != g.inGroup || c.group != g.group {
				t.Errorf("pids group: C %q %v %s; Go %q %v %s", c.pidsMax, c.inGroup, c.group, g.pidsMax, g.inGroup, g.group)
			}
			if fmt.Sprint(c.sharedNS) != fmt.Sprint(g.sharedNS) {
				t.Errorf("namespaces shared with the test: C %v, Go %v", c.sharedNS, g.sharedNS)
			}
			if slices.Contains(args, "--pids") || slices.Contains(args, "--sandbox") {
				if !c.inGroup || c.pidsMax == "" {
					t.Errorf("C path: payload in its group %v, pids.max %q", c.inGroup, c.pidsMax)
				}
			}
			if slices.Contains(args, "--sandbox") {
				if c.status["NoNewPrivs"] != "1" || c.status["Seccomp"] != "2" && !slices.Contains(args, "unconfined") {
					t.Errorf("C path --sandbox: %v", c.status)
				}
				if len(c.sharedNS) != 0 {
					t.Errorf("C path --sandbox shares %v with the test", c.sharedNS)
				}
			}
		})
	}
}

// TestSandboxEscapeBothPaths runs the escape probe in --sandbox --pids 64
// (the default parent, which the C fast path takes) through the C fast path
// and through Go: each attempt fails the same way on both.
func TestSandboxEscapeBothPaths(t *testing.T) {
	testutil.RequirePriv(t)
	cc := testutil.RequireTool(t, "cc")
	bin := runBuildNsbox(t)
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	probe := filepath.Join(dir, "escape")
	if out, err := exec.Command(cc, "-O2", "-Wall", "-o", probe, "testdata/escape.c").CombinedOutput(); err != nil {
		t.Fatalf("build the probe: %v\n%s", err, out)
	}
	mnt, pid := selfNSInode(t, "mnt"), selfNSInode(t, "pid")
	for _, mode := range []string{"0", "1"} {
		stdout, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + mode, "GODEBUG=inittrace=1"}, nil, bin,
			"run", "--sandbox", "--pids", "64", "--ro-bind", dir+":/tmp/probe", "--", "/tmp/probe/escape",
			strconv.FormatUint(mnt, 10), strconv.FormatUint(pid, 10), strconv.Itoa(os.Getpid()))
		if code != 0 {
			t.Fatalf("NSBOX_NO_FASTPATH=%s probe: exit %d, stderr %q, stdout %q", mode, code, stderr, stdout)
		}
		if fast := goInitLines(stderr) == 0; fast != (mode == "0") {
			t.Errorf("NSBOX_NO_FASTPATH=%s: fast path taken %v", mode, fast)
		}
		got := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
			if k, v, ok := strings.Cut(l, " "); ok {
				got[k] = v
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(escapeWant) {
			t.Errorf("NSBOX_NO_FASTPATH=%s: probe\n got  %v\n want %v", mode, got, escapeWant)
		}
	}
}

// TestSandboxFastKilled: SIGKILL to an nsbox on the C fast path with
// --pids: its watcher (with --sandbox, the early helper that also made the
// network namespace, csrc/late_ns.c) kills what is left in the group and
// removes it, the payload does not outlive it, and no process outside the
// sandbox is left in the sandbox's network namespace.
func TestSandboxFastKilled(t *testing.T) {
	testutil.RequirePriv(t)
	if _, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err != nil {
		t.Skip("needs the v1 pids hierarchy at /sys/fs/cgroup/pids (this machine's)")
	}
	bin := runBuildNsbox(t)
	for _, args := range [][]string{{"--pids", "10"}, {"--sandbox"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			sandboxFastKill(t, bin, args...)
		})
	}
}

func sandboxFastKill(t *testing.T, bin string, args ...string) {
	args = append(append([]string{"run"}, args...), "--", "/bin/sh", "-c", "echo up; exec sleep 60")
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH=0", "GODEBUG=inittrace=1")
	cmd.Dir = "/"
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("no output: %v (stderr %q)", err, stderr.String())
	}
	payload := payloadBelow(t, cmd.Process.Pid)
	dir := pidsGroupDir(t, payload)
	if !strings.Contains(filepath.Base(dir), "nsbox-"+strconv.Itoa(cmd.Process.Pid)+"-") {
		t.Fatalf("payload's group %q is not this nsbox's", dir)
	}
	var netns, pidns, ownNet unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", payload), &netns); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat("/proc/self/ns/net", &ownNet); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/pid", payload), &pidns); err != nil {
		t.Fatal(err)
	}
	if tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", cmd.Process.Pid)); len(tasks) != 1 {
		t.Errorf("nsbox has %d threads: not the C fast path", len(tasks))
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	gone := false
	var holders []string
	for i := 0; i < 500 && !gone; i++ { // at most 5 s
		_, errDir := os.Stat(dir)
		_, errPid := os.Stat(fmt.Sprintf("/proc/%d", payload))
		if netns.Ino != ownNet.Ino {
			holders = netHolders(netns.Ino, pidns.Ino)
		}
		gone = os.IsNotExist(errDir) && os.IsNotExist(errPid) && len(holders) == 0
		if !gone {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !gone {
		t.Fatalf("5 s after SIGKILL of nsbox: group %s or payload %d still there, or the network namespace held by %v", dir, payload, holders)
	}
	if goInitLines(stderr.String()) > 0 {
		t.Errorf("the Go runtime started: not the C fast path")
	}
}

// TestSandboxFastGroupAtExit: on the C fast path the payload is in its pids
// group when it runs (its own /proc/self/cgroup), the group is gone when
// nsbox has exited (no wait: nsbox removes it before it exits, whichever
// process made it), and a run that fails after the group was made (a
// --chdir that is not there, the child's step after the join) leaves no
// group either.
func TestSandboxFastGroupAtExit(t *testing.T) {
	testutil.RequirePriv(t)
	if _, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err != nil {
		t.Skip("needs the v1 pids hierarchy at /sys/fs/cgroup/pids (this machine's)")
	}
	bin := runBuildNsbox(t)
	// The test's own group: under --sandbox's cgroup namespace the payload
	// sees its group relative to it (nsbox is in the test's group).
	own := pidsGroupDir(t, os.Getpid())
	if own == "" {
		own = "/sys/fs/cgroup/pids"
	}
	for _, args := range [][]string{
		{"--pids", "20"},
		{"--ipc", "--pid", "--mount", "--net", "--pids", "21"},
		{"--sandbox", "--pids", "22"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			root := "/sys/fs/cgroup/pids"
			if args[0] == "--sandbox" {
				root = own
			}
			// The payload (sed, after the exec) reads its group from
			// inside; its pids.max, read from outside while the payload
			// runs, is TestSandboxFastParity's.
			script := `exec sed -n 's/^[0-9]*:pids://p' /proc/self/cgroup`
			full := append(append([]string{"run"}, args...), "--", "/bin/sh", "-c", script)
			stdout, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=0", "GODEBUG=inittrace=1"}, nil, bin, full...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if goInitLines(stderr) > 0 {
				t.Fatalf("the Go runtime started: not the C fast path")
			}
			g := strings.TrimSpace(stdout)
			if !strings.HasPrefix(filepath.Base(g), "nsbox-") || strings.Contains(g, "\n") {
				t.Fatalf("payload's group %q; want an nsbox- group", stdout)
			}
			if _, err := os.Stat(root + g); !os.IsNotExist(err) {
				t.Errorf("group %s still there after nsbox exited: %v", root+g, err)
			}
		})
	}
	t.Run("failed", func(t *testing.T) {
		cmd := exec.Command(bin, "run", "--sandbox", "--chdir", "/nonexistent-"+testutil.UniqueName("d"), "--", "/bin/true")
		cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH=0")
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 125 {
			t.Fatalf("exit %v (%s); want 125", err, out)
		}
		prefix := "nsbox-" + strconv.Itoa(cmd.ProcessState.Pid()) + "-"
		ents, _ := os.ReadDir("/sys/fs/cgroup/pids/nsbox")
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				t.Errorf("group %s left after a failed run", e.Name())
			}
		}
	})
}

// TestSandboxFastNothingOutlives: nsbox's helper (the late network
// namespace, and the v1 pids group's watcher) is reaped by nsbox before it
// exits. Run under a child subreaper (testdata/subreaper.c), which is
// where a process left behind would go, as it would to init: nothing is
// left, neither running nor a zombie (under a PID 1 that never reaps, a
// zombie a run would pile up).
func TestSandboxFastNothingOutlives(t *testing.T) {
	testutil.RequirePriv(t)
	cc := testutil.RequireTool(t, "cc")
	bin := runBuildNsbox(t)
	wrap := filepath.Join(t.TempDir(), "subreaper")
	if out, err := exec.Command(cc, "-O2", "-Wall", "-o", wrap, "testdata/subreaper.c").CombinedOutput(); err != nil {
		t.Fatalf("build the subreaper: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"--sandbox"},
		{"--pids", "20"},
		{"--ipc", "--pid", "--mount", "--net"},
		{"--sandbox", "--chdir", "/nonexistent-" + testutil.UniqueName("d")}, // fails after the helper started
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			for i := 0; i < 20; i++ {
				full := append(append([]string{wrap, bin, "run"}, args...), "--", "/bin/sh", "-c", "exit 3")
				cmd := exec.Command(full[0], full[1:]...)
				cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH=0")
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("%v: %v", full, err)
				}
				if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, " none") {
					t.Fatalf("run %d: %q: something outlived nsbox", i, got)
				}
			}
		})
	}
}

// cpusAllowed is the Cpus_allowed_list line of a /proc/PID/status text.
func cpusAllowed(status string) string {
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == "Cpus_allowed_list" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestSandboxFastAffinity: on an idle machine nsbox starts its early helper
// on another CPU (late_ns.c's nsb_late_elsewhere); the payload still runs
// with the caller's CPU mask (its own /proc/self/status after the exec),
// since only the helper's mask is ever changed, and back at once. Runs
// several times so that some of them find a CPU idle.
func TestSandboxFastAffinity(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	self, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	want := cpusAllowed(string(self))
	if want == "" {
		t.Fatal("no Cpus_allowed_list in /proc/self/status")
	}
	for _, args := range [][]string{
		{"--sandbox"},
		{"--ipc", "--pid", "--mount", "--net", "--ro-root"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			for i := 0; i < 10; i++ {
				full := append(append([]string{"run"}, args...), "--", "/bin/sh", "-c", "exec cat /proc/self/status")
				stdout, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=0", "GODEBUG=inittrace=1"}, nil, bin, full...)
				if code != 0 {
					t.Fatalf("exit %d, stderr %q", code, stderr)
				}
				if goInitLines(stderr) > 0 {
					t.Fatalf("the Go runtime started: not the C fast path")
				}
				if got := cpusAllowed(stdout); got != want {
					t.Fatalf("run %d: payload's Cpus_allowed_list %q; want the caller's %q", i, got, want)
				}
			}
		})
	}
}
