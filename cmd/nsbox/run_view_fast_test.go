package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// The view and environment flags on the C fast path: the same command line
// through the fast path and through Go (NSBOX_NO_FASTPATH=1, the
// reference) gives the same mounts (the payload's mountinfo read from
// outside), the same files and the exact same environment; the fast path
// never starts the Go runtime (GODEBUG=inittrace=1 prints nothing); and a
// command line it cannot finish gives Go's message, exit code and nothing
// more.

// viewFastArgs is the view of TestRunViewFastPath: issue 10's benchmark
// line plus a file bind, a writable bind, a sized tmpfs and environment
// edits. NSBOX_NO_FASTPATH is unset for the payload so that both paths'
// environments can be compared whole.
func viewFastArgs(root, file, shared string) []string {
	args := nsboxView(root)
	args = args[:len(args)-1]
	return append(args, "--ro-bind", file+":/etc/marker", "--bind", shared+":/shared",
		"--tmpfs", "/scratch:size=2m,mode=1777", "--setenv", "NSBOX_FAST_VIEW=1", "--unsetenv", "NSBOX_NO_FASTPATH",
		"--unsetenv", "GODEBUG", "--")
}

// mountinfoView reduces a mountinfo to what two runs of one view share:
// each mount's root, mount point, options, type, source and super options
// (not the ids, which differ per run).
func mountinfoView(mi string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(mi), "\n") {
		f := strings.Fields(l)
		sep := -1
		for i, w := range f {
			if w == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(f) < sep+4 {
			continue
		}
		out = append(out, strings.Join(append(f[3:6:6], f[sep+1:]...), " "))
	}
	return strings.Join(out, "\n")
}

// viewFastRun starts the view with a payload that reports what it sees and
// waits for a line on stdin, reads its mountinfo from outside, and returns
// that and the payload's report.
func viewFastRun(t *testing.T, bin string, env []string, args []string) (mountinfo, report, stderr string) {
	t.Helper()
	script := `env | LC_ALL=C sort; echo --; ls -A / /dev; stat -c '%n %F %a %t:%T' / /dev/* /dev/pts/ptmx; cat /etc/marker; echo --; mktemp /shared/f.XXXXXX >/dev/null; pwd; echo ready; read x; exit 0`
	cmd := exec.Command(bin, append(args, "/bin/sh", "-c", script)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = "/"
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = pw
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() { stdin.Close(); cmd.Wait(); pr.Close() })
	buf := make([]byte, 1<<16)
	for !strings.HasSuffix(out.String(), "ready\n") {
		n, err := pr.Read(buf)
		if err != nil {
			t.Fatalf("payload did not get ready: %v; stdout %q stderr %q", err, out.String(), errb.String())
		}
		out.Write(buf[:n])
	}
	// nsbox -> init -> payload (sh).
	pid := childOf(t, childOf(t, cmd.Process.Pid))
	mi, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("nsbox: %v, stderr %q", err, errb.String())
	}
	return string(mi), out.String(), errb.String()
}

// TestRunViewFastPath: the view on the fast path is the view on Go's path.
func TestRunViewFastPath(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	before := hostMounts(t)
	root := newRootfs(t)
	file := filepath.Join(t.TempDir(), "marker")
	if err := os.WriteFile(file, []byte("marker-of-"+t.Name()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	args := viewFastArgs(root, file, shared)

	// The Go reference first (it makes the mount points in the rootfs), then
	// the fast path on the same rootfs: same mounts, same everything.
	goMI, goOut, goErr := viewFastRun(t, bin, []string{"NSBOX_NO_FASTPATH=1", "GODEBUG=inittrace=1"}, args)
	cMI, cOut, cErr := viewFastRun(t, bin, []string{"GODEBUG=inittrace=1"}, args)
	if goInitLines(goErr) == 0 {
		t.Errorf("the Go reference did not start Go: stderr %q", goErr)
	}
	if n := goInitLines(cErr); n != 0 || cErr != "" {
		t.Errorf("the fast path started the Go runtime (%d init lines) or printed: %q", n, cErr)
	}
	if g, c := mountinfoView(goMI), mountinfoView(cMI); g != c || !strings.Contains(c, " /usr ro,") ||
		!strings.Contains(c, " /scratch ") || !strings.Contains(c, "size=2048k") || !strings.Contains(c, " /dev/pts ") {
		t.Errorf("mountinfo differs or lacks the view:\nGo:\n%s\nfast path:\n%s", g, c)
	}
	if goOut != cOut || !strings.Contains(cOut, "NSBOX_FAST_VIEW=1\n") || strings.Contains(cOut, "NSBOX_NO_FASTPATH") ||
		!strings.Contains(cOut, "marker-of-") || !strings.HasSuffix(cOut, "\n/\nready\n") {
		t.Errorf("the payloads saw different things:\nGo:\n%s\nfast path:\n%s", goOut, cOut)
	}
	// Written through --bind: on the host, one file per run.
	if ents, err := os.ReadDir(shared); err != nil || len(ents) != 2 {
		t.Errorf("the writable bind: %v %v, want a file from each run", ents, err)
	}
	if after := hostMounts(t); after != before {
		t.Errorf("the host's mount table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestRunViewFastPathTaken: which view command lines the fast path runs
// (no Go runtime) and which it leaves to Go, with the same result both ways.
func TestRunViewFastPathTaken(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	root := newRootfs(t)
	for _, c := range []struct {
		args []string
		fast bool
	}{
		{append(nsboxView(root), "/bin/true"), true},
		{[]string{"run", "--clearenv", "--setenv", "A=1", "--", "/usr/bin/env"}, true},
		{[]string{"run", "--ro-root", "--wd", "/usr", "--tmpfs", "/mnt:mode=700", "--", "/bin/sh", "-c", "pwd; stat -c %a /mnt"}, true},
		{[]string{"run", "--root", root, "--ro-bind", "/usr:/usr", "--ro-bind", "/lib:/lib", "--ro-bind", "/lib64:/lib64", "--ro-bind", "/bin:/bin", "--", "/bin/true"}, true},
		// PATH looked up through the view (the read-only bind of /usr).
		{append(nsboxView(root), "true"), true},
		{append(nsboxView(root), "sh", "-c", "command -v true"), true},
		// Go's: a relative source, a path Clean would change.
		{[]string{"run", "--bind", "usr:/x", "--", "/bin/true"}, false},
		{[]string{"run", "--tmpfs", "/mnt/", "--", "/bin/true"}, false},
	} {
		cout, cerr, ccode := runNsboxEnv(t, []string{"GODEBUG=inittrace=1"}, nil, bin, c.args...)
		gout, _, gcode := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=1"}, nil, bin, c.args...)
		if fast := goInitLines(cerr) == 0; fast != c.fast || ccode != 0 {
			t.Errorf("nsbox %q: exit %d, fast path %v, want %v (stderr %q)", c.args, ccode, fast, c.fast, cerr)
		}
		cout = strings.ReplaceAll(cout, "GODEBUG=inittrace=1\n", "")
		gout = strings.ReplaceAll(gout, "NSBOX_NO_FASTPATH=1\n", "")
		if cout != gout || gcode != ccode {
			t.Errorf("nsbox %q: fast path %q (exit %d), Go %q (exit %d)", c.args, cout, ccode, gout, gcode)
		}
	}
}

// TestRunViewFastPathErrors: what the fast path cannot do (bad input, a
// failed step in the child) ends with Go's exact message and exit code, as
// with NSBOX_NO_FASTPATH=1, and leaves the host's mounts as they were.
func TestRunViewFastPathErrors(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	before := hostMounts(t)
	root := newRootfs(t)
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"run", "--rootfs", root, "--bind", "/usr:/file", "--", "/usr/bin/true"}, 125}, // the child's bind fails
		{[]string{"run", "--chdir", "/nonexistent-nsbox", "--", "/bin/true"}, 125},              // the child's chdir fails
		{[]string{"run", "--ro-root", "--tmpfs", "/nonexistent-nsbox-dir", "--", "/bin/true"}, 125},
		{[]string{"run", "--rootfs", root, "--", "/bin/true"}, 127}, // nothing to run in an empty root
		{[]string{"run", "--bind", "/nonexistent-nsbox-src", "--", "/bin/true"}, 125},
		{[]string{"run", "--rootfs", file, "--", "/bin/true"}, 125},
		{[]string{"run", "--rootfs", "rel", "--", "/bin/true"}, 125},
		{[]string{"run", "--tmpfs", "/x:size=0", "--", "/bin/true"}, 2},
		{[]string{"run", "--tmpfs", "/x:mode=8", "--", "/bin/true"}, 2},
		{[]string{"run", "--tmpfs", "/:size=1m", "--", "/bin/true"}, 2},
		{[]string{"run", "--dev", "--propagation", "shared", "--", "/bin/true"}, 2},
		{[]string{"run", "--setenv", "=x", "--", "/bin/true"}, 2},
		{[]string{"run", "--unsetenv", "A=B", "--", "/bin/true"}, 2},
		{[]string{"run", "--chdir", "rel", "--", "/bin/true"}, 2},
	} {
		cout, cerr, ccode := runNsboxEnv(t, nil, nil, bin, c.args...)
		gout, gerr, gcode := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=1"}, nil, bin, c.args...)
		lines := strings.Split(strings.TrimRight(cerr, "\n"), "\n")
		if ccode != c.code || cerr != gerr || ccode != gcode || cout != "" || gout != "" ||
			len(lines) != 1 || !strings.HasPrefix(lines[0], "nsbox: ") {
			t.Errorf("nsbox %q: exit %d stderr %q; Go alone: exit %d stderr %q; want exit %d and Go's one line", c.args, ccode, cerr, gcode, gerr, c.code)
		}
	}
	if after := hostMounts(t); after != before {
		t.Errorf("the host's mount table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
