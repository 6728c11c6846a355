package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

func selfNSInode(t *testing.T, kind string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/"+kind, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestRunSandboxEscape runs a probe (testdata/escape.c, built here) inside
// run --sandbox and asserts that every escape it tries fails with the
// expected errno; a setuid-root copy of id gains nothing there, while the
// same copy does raise the euid outside the sandbox (so the check can fail).
// A fork bomb meets the pids limit and a memory hog the OOM killer; no
// cgroup is left.
func TestRunSandboxEscape(t *testing.T) {
	testutil.RequirePriv(t)
	cc := testutil.RequireTool(t, "cc")
	bin := runBuildNsbox(t)
	parent := testCgroupParent(t)
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} { // uid 65534 runs the setuid copy from here
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	probe := filepath.Join(dir, "escape")
	if out, err := exec.Command(cc, "-O2", "-Wall", "-o", probe, "testdata/escape.c").CombinedOutput(); err != nil {
		t.Fatalf("build the probe: %v\n%s", err, out)
	}
	// A setuid-root copy of id.
	idPath, err := exec.LookPath("id")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(idPath)
	if err != nil {
		t.Fatal(err)
	}
	suid := filepath.Join(dir, "id")
	if err := os.WriteFile(suid, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(suid, 0o4755); err != nil { // os.Chmod would drop the setuid bit of a plain number
		t.Fatal(err)
	}
	bind := dir + ":/tmp/probe"
	mnt, pid := selfNSInode(t, "mnt"), selfNSInode(t, "pid")
	stdout, stderr, code := runNsbox(t, bin, nil, "run", "--sandbox", "--pids", "64", "--cgroup-parent", parent,
		"--ro-bind", bind, "--", "/tmp/probe/escape",
		strconv.FormatUint(mnt, 10), strconv.FormatUint(pid, 10), strconv.Itoa(os.Getpid()))
	if code != 0 {
		t.Fatalf("probe: exit %d, stderr %q, stdout %q", code, stderr, stdout)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			got[k] = v
		}
	}
	want := escapeWant
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %s", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("probe output %q: want exactly the attempts %v", stdout, want)
	}

	// The setuid copy works outside (euid 0 for uid 65534) ...
	out, stderr, code := runNsbox(t, bin, nil, "run", "--uid", "65534", "--gid", "65534", "--", suid, "-u")
	if code != 0 || strings.TrimSpace(out) != "0" {
		t.Fatalf("setuid id outside the sandbox: exit %d, %q %q; want euid 0 (the control)", code, out, stderr)
	}
	// ... and gives nothing inside.
	out, stderr, code = runNsbox(t, bin, nil, "run", "--sandbox", "--cgroup-parent", parent, "--ro-bind", bind, "--", "/tmp/probe/id", "-u")
	if code != 0 || strings.TrimSpace(out) != "65534" {
		t.Errorf("setuid id inside --sandbox: exit %d, %q %q; want euid 65534", code, out, stderr)
	}

	// A memory hog ends with the OOM line.
	perl := testutil.RequireTool(t, "perl")
	_, stderr, code = runNsbox(t, bin, nil, "run", "--sandbox", "--memory", "32m", "--cgroup-parent", parent, "--",
		perl, "-e", `my @a; push @a, "x" x (1<<20) for 1..512`)
	if code != 137 || stderr != "nsbox: sandbox killed: out of memory (limit 32 MiB)\n" {
		t.Errorf("memory hog in --sandbox: exit %d, stderr %q", code, stderr)
	}
	if left := cgroupChildren(parent); len(left) > 0 {
		t.Fatalf("groups left: %v", left)
	}

}

// escapeWant is what each attempt of testdata/escape.c gives inside
// --sandbox.
var escapeWant = map[string]string{
	"sandboxed":       "ok",
	"mount":           "EPERM",
	"umount":          "EPERM",
	"pivot_root":      "EPERM",
	"unshare":         "EPERM",
	"setns":           "EPERM",
	"clone3_newuser":  "ENOSYS", // so that libc falls back to clone, whose flags the filter sees
	"clone_newuser":   "EPERM",
	"keyctl":          "EPERM",
	"bpf":             "EPERM",
	"perf_event_open": "EPERM",
	"userfaultfd":     "EPERM",
	"kexec_load":      "EPERM",
	"init_module":     "EPERM",
	"reboot":          "EPERM",
	"ptrace_parent":   "EPERM",
	"write_usr":       "EROFS",
	"write_etc":       "EROFS",
	"open_disk":       "ENOENT", // --dev has no disks
	"open_mem":        "ENOENT",
	"mknod_disk":      "EPERM",
	"capset":          "EPERM",
	"kill_host":       "ESRCH", // host pids do not exist in the sandbox's PID namespace
	"fork_bomb":       "EAGAIN",
}
