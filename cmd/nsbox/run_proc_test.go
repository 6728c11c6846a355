package main

import (
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestRunProcStaysInSandbox runs TestRunProcStaysInSandboxInner in a mount
// namespace of its own (unshare --mount, private from the host), where / is
// made rshared as systemd makes the host's: every --propagation value, on
// the C fast path and on the Go path, must leave the outer /proc alone.
func TestRunProcStaysInSandbox(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "unshare")
	bin := runBuildNsbox(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	outer, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--",
		self, "-test.run=^TestRunProcStaysInSandboxInner$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "NSBOX_PROC_INNER=1", "NSBOX_PROC_BIN="+bin, "NSBOX_PROC_OUTER_MNT="+outer)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestRunProcStaysInSandboxInner") {
		t.Fatalf("inner test: %v\n%s", err, out)
	}
}

// TestRunProcStaysInSandboxInner is TestRunProcStaysInSandbox's body; it
// runs only in the mount namespace that test made.
func TestRunProcStaysInSandboxInner(t *testing.T) {
	if os.Getenv("NSBOX_PROC_INNER") != "1" {
		t.Skip("runs inside TestRunProcStaysInSandbox's mount namespace only")
	}
	bin := os.Getenv("NSBOX_PROC_BIN")
	if mnt, err := os.Readlink("/proc/self/ns/mnt"); err != nil || mnt == os.Getenv("NSBOX_PROC_OUTER_MNT") {
		t.Fatalf("not in a mount namespace of our own (%q, %v): refusing to make / shared", mnt, err)
	}
	if err := unix.Mount("", "/", "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatalf("make / rshared: %v", err)
	}
	// Our mountinfo is read through a handle on our /proc/self taken now:
	// a leaked /proc would cover /proc.
	selfDir, err := os.Open("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	defer selfDir.Close()
	procMounts := func() int {
		t.Helper()
		fd, err := unix.Openat(int(selfDir.Fd()), "mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "mountinfo")
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if fs := strings.Fields(l); len(fs) > 4 && fs[4] == "/proc" {
				n++
			}
		}
		return n
	}
	before := procMounts()
	for _, mode := range []string{"0", "1"} { // NSBOX_NO_FASTPATH: the C fast path, then Go
		for _, prop := range []string{"", "private", "slave", "shared", "unchanged"} {
			args := []string{"run", "--ipc", "--pid", "--mount"}
			if prop != "" {
				args = append(args, "--propagation", prop)
			}
			args = append(args, "--", "/bin/true")
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH="+mode)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("NSBOX_NO_FASTPATH=%s nsbox %q: %v\n%s", mode, args, err, out)
			}
			if got, err := os.Readlink("/proc/self"); err != nil || got != strconv.Itoa(os.Getpid()) {
				t.Errorf("NSBOX_NO_FASTPATH=%s nsbox %q: afterwards the outer /proc/self reads %q, %v; want %d",
					mode, args, got, err, os.Getpid())
			}
			after := procMounts()
			if after != before {
				t.Errorf("NSBOX_NO_FASTPATH=%s nsbox %q: %d /proc mounts in the outer namespace afterwards, want %d",
					mode, args, after, before)
			}
			// Take a leaked /proc off (in this namespace only), so that
			// each case is judged on its own.
			for ; after > before; after-- {
				if err := unix.Unmount("/proc", unix.MNT_DETACH); err != nil {
					t.Fatalf("unmount leaked /proc: %v", err)
				}
			}
		}
	}
}

// TestRunClosedStdioRunsOnce starts nsbox run with every combination of
// fds 0, 1 and 2 closed, on the C fast path and on the Go path: the payload
// runs exactly once. (With two of them closed the fast path's error pipe
// used to land on them, the payload's output read as a failure report, and
// Go ran the payload a second time.)
func TestRunClosedStdioRunsOnce(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	dir := t.TempDir()
	for _, mode := range []string{"0", "1"} {
		for mask := 1; mask < 8; mask++ {
			redir := ""
			for fd := 0; fd < 3; fd++ {
				if mask&(1<<fd) != 0 {
					redir += " " + strconv.Itoa(fd) + ">&-"
				}
			}
			log := dir + "/ran-" + mode + "-" + strconv.Itoa(mask)
			script := "echo ran >>" + log + "; echo long-error-message-here-long-error-message >&2"
			cmd := exec.Command("sh", "-c", `exec "$@"`+redir, "sh", bin, "run", "--", "sh", "-c", script)
			cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH="+mode)
			_, _, code := runCaptured(t, cmd)
			b, err := os.ReadFile(log)
			if err != nil {
				t.Errorf("NSBOX_NO_FASTPATH=%s, closed%s: the payload did not run: %v", mode, redir, err)
				continue
			}
			if n := strings.Count(string(b), "ran\n"); n != 1 || code != 0 {
				t.Errorf("NSBOX_NO_FASTPATH=%s, closed%s: the payload ran %d times, exit %d; want once, exit 0", mode, redir, n, code)
			}
		}
	}
}
