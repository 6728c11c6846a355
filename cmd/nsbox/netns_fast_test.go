package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
)

// netnsFastNames seed the name parity checks.
var netnsFastNames = []string{
	"", ".", "..", "...", "a/b", "/", "a", "ns1", "A.b_c-9", "-x", "--", "x-",
	strings.Repeat("n", 255), strings.Repeat("n", 256), "é", "naïve", "a b", "a\tb",
	"a:b", "a\nb", "\xff", "a\\b", "*", "$x", "~", "a.", ".a",
}

// checkNetnsFastParity fails t if the C fast path takes `netns SUB NAME`
// but Go would refuse NAME or route SUB elsewhere.
func checkNetnsFastParity(t *testing.T, sub, name string) {
	t.Helper()
	op := netnsFastParse([]string{"netns", sub, name})
	if op == netnsFastGo {
		return // Go handles it: nothing to compare
	}
	if err := netns.ValidateName(name); err != nil {
		t.Fatalf("netns %s %q: C fast path takes it, netns.ValidateName refuses: %v", sub, name, err)
	}
	if _, err := nsNameArg("netns "+sub, []string{name}); err != nil {
		t.Fatalf("netns %s %q: C fast path takes it, the CLI refuses: %v", sub, name, err)
	}
	want := map[string]int{"add": netnsFastAdd, "del": netnsFastDel, "delete": netnsFastDel}[sub]
	if op != want {
		t.Fatalf("netns %s %q: C fast path does %d, Go's word means %d", sub, name, op, want)
	}
}

// TestNetnsFastParse: the C fast path takes exactly `netns add|del|delete
// NAME` with a plain name, and leaves every other command line to Go.
func TestNetnsFastParse(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"netns", "add", "ns1"}, netnsFastAdd},
		{[]string{"netns", "del", "ns1"}, netnsFastDel},
		{[]string{"netns", "delete", "A.b_c-9"}, netnsFastDel},
		{[]string{"netns", "add", strings.Repeat("n", 255)}, netnsFastAdd},
		{[]string{"netns", "add", strings.Repeat("n", 256)}, netnsFastGo},
		{[]string{"netns", "add"}, netnsFastGo},
		{[]string{"netns", "add", "a", "b"}, netnsFastGo},
		{[]string{"netns", "add", "a/b"}, netnsFastGo},
		{[]string{"netns", "add", ".."}, netnsFastGo},
		{[]string{"netns", "add", "-x"}, netnsFastGo},
		{[]string{"netns", "add", ""}, netnsFastGo},
		{[]string{"netns", "add", "é"}, netnsFastGo},
		{[]string{"netns", "list", "x"}, netnsFastGo},
		{[]string{"netns", "exec", "x"}, netnsFastGo},
		{[]string{"netns", "ad", "x"}, netnsFastGo},
		{[]string{"-n", "netns", "add", "x"}, netnsFastGo},
		{[]string{"-j", "netns", "add"}, netnsFastGo},
		{[]string{"link", "add", "x"}, netnsFastGo},
		{[]string{"netns"}, netnsFastGo},
	} {
		if got := netnsFastParse(c.args); got != c.want {
			t.Errorf("%q: C fast path does %d, want %d", c.args, got, c.want)
		}
	}
	for _, sub := range []string{"add", "del", "delete"} {
		for _, n := range netnsFastNames {
			if strings.IndexByte(n, 0) < 0 {
				checkNetnsFastParity(t, sub, n)
			}
		}
	}
}

// FuzzNetnsFastParity: whatever name the C fast path takes, Go's
// netns.ValidateName and the CLI's argument check take too.
func FuzzNetnsFastParity(f *testing.F) {
	for _, n := range netnsFastNames {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if strings.IndexByte(name, 0) >= 0 {
			return // C strings cannot hold NUL: argv never does
		}
		for _, sub := range []string{"add", "del", "delete", "list", "exec"} {
			checkNetnsFastParity(t, sub, name)
		}
	})
}

// threadNetns identifies the network namespace of the calling thread.
func threadNetns(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestNetnsFastBindFailureRestores: when the bind mount fails after
// unshare, the C step returns the thread to its original namespace.
func TestNetnsFastBindFailureRestores(t *testing.T) {
	testutil.RequirePriv(t)
	target := filepath.Join(t.TempDir(), "missing", "ns") // mount fails: ENOENT
	type result struct {
		before, after uint64
		rc            int
		err           error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		r.before = threadNetns(t)
		r.rc, r.err = netnsFastBindNew(target)
		r.after = threadNetns(t)
		if r.rc == -1 && r.after == r.before {
			runtime.UnlockOSThread() // back home: safe to reuse
		} // else the thread dies with this goroutine
		done <- r
	}()
	r := <-done
	if r.rc != -1 || !errors.Is(r.err, unix.ENOENT) {
		t.Errorf("bind onto %s: rc %d, err %v; want -1, ENOENT", target, r.rc, r.err)
	}
	if r.after != r.before {
		t.Errorf("thread left in netns %d, was in %d", r.after, r.before)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after the failure: %v", target, err)
	}
}

// netnsFastRun runs the built nsbox with args and extra environment under a
// 30 s limit; it returns stdout, stderr and the exit code.
func netnsFastRun(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("nsbox %q: %v", args, err)
	}
	return stdout.String(), stderr.String(), 0
}

// goStarted says whether the Go runtime started in a run made with
// GODEBUG=inittrace=1 (it prints "init runtime @..." on stderr).
func goStarted(stderr string) bool {
	return strings.Contains(stderr, "init runtime @")
}

// netnsMounted says whether /run/netns/NAME is a mount point of ours.
func netnsMounted(t *testing.T, name string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == filepath.Join(netns.RunDir, name) {
			return true
		}
	}
	return false
}

// ipNetnsNames lists the namespaces ip sees.
func ipNetnsNames(t *testing.T) map[string]bool {
	t.Helper()
	var list []struct {
		Name string `json:"name"`
	}
	testutil.IPJSON(t, &list, "netns", "list")
	names := map[string]bool{}
	for _, n := range list {
		names[n.Name] = true
	}
	return names
}

var (
	fastOn    = []string{"NSBOX_NO_FASTPATH=0", "GODEBUG=inittrace=1"}
	fastOff   = []string{"NSBOX_NO_FASTPATH=1", "GODEBUG=inittrace=1"}
	traceLine = regexp.MustCompile(`(?m)^init \S+ @.*\n`)
)

// nsboxLine is stderr without the inittrace lines: what nsbox printed.
func nsboxLine(stderr string) string { return traceLine.ReplaceAllString(stderr, "") }

// TestNetnsFastCLI drives the built binary: the fast path makes namespaces
// that ip lists and enters and deletes them without starting Go; every
// failure prints exactly what the Go path prints.
func TestNetnsFastCLI(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "ip")
	bin := runBuildNsbox(t)
	name, other := testutil.UniqueName("nsbfa"), testutil.UniqueName("nsbfb")
	for _, n := range []string{name, other} {
		n := n
		t.Cleanup(func() {
			if _, err := os.Lstat(filepath.Join(netns.RunDir, n)); err == nil {
				testutil.CmdErr("ip", "netns", "del", n)
			}
		})
	}

	// add: done in C (Go never started), seen and entered by ip.
	out, errs, code := netnsFastRun(t, bin, fastOn, "netns", "add", name)
	if code != 0 || out != "" || errs != "" {
		t.Fatalf("fast add %s: exit %d, stdout %q, stderr %q; want 0 and nothing", name, code, out, errs)
	}
	if !ipNetnsNames(t)[name] {
		t.Fatalf("ip netns list does not show %s", name)
	}
	var links []struct {
		Name string `json:"ifname"`
		Type string `json:"link_type"`
	}
	testutil.IPJSON(t, &links, "netns", "exec", name, "ip", "-j", "link")
	if len(links) != 1 || links[0].Name != "lo" || links[0].Type != "loopback" {
		t.Errorf("ip netns exec %s ip -j link: %+v; want only lo", name, links)
	}
	if !netnsMounted(t, name) {
		t.Errorf("/run/netns/%s is not a mount point", name)
	}
	// The observable itself: the Go path does start the runtime.
	if _, errs, code := netnsFastRun(t, bin, fastOff, "netns", "add", other); code != 0 || !goStarted(errs) {
		t.Fatalf("Go add %s: exit %d, stderr %q; want 0 and Go's init trace", other, code, errs)
	}
	if _, errs, code := netnsFastRun(t, bin, fastOff, "netns", "del", other); code != 0 || nsboxLine(errs) != "" {
		t.Fatalf("Go del %s: exit %d, stderr %q", other, code, errs)
	}

	// add of an existing name: Go's line and code, the namespace untouched.
	testutil.Cmd(t, "ip", "-n", name, "addr", "add", "10.254.0.1/32", "dev", "lo") // a mark
	var before unix.Stat_t
	if err := unix.Stat(filepath.Join(netns.RunDir, name), &before); err != nil {
		t.Fatal(err)
	}
	_, goErr, goCode := netnsFastRun(t, bin, fastOff, "netns", "add", name)
	_, fastErr, fastCode := netnsFastRun(t, bin, fastOn, "netns", "add", name)
	if want := "nsbox: netns add " + name + ": namespace already exists\n"; goCode != 1 || nsboxLine(goErr) != want {
		t.Errorf("Go add of existing %s: exit %d %q; want 1 %q", name, goCode, nsboxLine(goErr), want)
	}
	if fastCode != goCode || nsboxLine(fastErr) != nsboxLine(goErr) {
		t.Errorf("add of existing %s: fast path exit %d %q, Go path exit %d %q", name, fastCode, nsboxLine(fastErr), goCode, nsboxLine(goErr))
	}
	var after unix.Stat_t
	if err := unix.Stat(filepath.Join(netns.RunDir, name), &after); err != nil {
		t.Fatal(err)
	}
	if after.Dev != before.Dev || after.Ino != before.Ino {
		t.Errorf("add of existing %s replaced the namespace (inode %d -> %d)", name, before.Ino, after.Ino)
	}
	if out := testutil.Cmd(t, "ip", "-n", name, "-o", "addr", "show", "dev", "lo"); !strings.Contains(out, " 10.254.0.1/32 ") {
		t.Errorf("the existing namespace lost its address: %q", out)
	}

	// del: done in C, gone for ip and from the mount table.
	out, errs, code = netnsFastRun(t, bin, fastOn, "netns", "del", name)
	if code != 0 || out != "" || errs != "" {
		t.Fatalf("fast del %s: exit %d, stdout %q, stderr %q; want 0 and nothing", name, code, out, errs)
	}
	if ipNetnsNames(t)[name] {
		t.Errorf("ip netns list still shows %s", name)
	}
	if netnsMounted(t, name) {
		t.Errorf("/run/netns/%s is still mounted", name)
	}
	if _, err := os.Lstat(filepath.Join(netns.RunDir, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/run/netns/%s still exists: %v", name, err)
	}

	// Failures and refusals print what the Go path prints.
	for _, args := range [][]string{
		{"netns", "del", name},          // missing: C leaves it to Go
		{"netns", "delete", name},       // same, the other word
		{"netns", "add", "a/b"},         // refused by C's check, usage from Go
		{"netns", "del", ".."},          // idem
		{"netns", "add", name, "extra"}, // not the plain form
	} {
		_, goErr, goCode := netnsFastRun(t, bin, fastOff, args...)
		_, fastErr, fastCode := netnsFastRun(t, bin, fastOn, args...)
		if goCode == 0 || nsboxLine(goErr) == "" {
			t.Errorf("%q: Go path exit %d %q; want a failure", args, goCode, goErr)
		}
		if fastCode != goCode || nsboxLine(fastErr) != nsboxLine(goErr) {
			t.Errorf("%q: fast path exit %d %q, Go path exit %d %q", args, fastCode, nsboxLine(fastErr), goCode, nsboxLine(goErr))
		}
		if args[1] == "add" && len(args) == 3 {
			if _, err := os.Lstat(filepath.Join(netns.RunDir, args[2])); err == nil {
				t.Errorf("%q left /run/netns/%s", args, args[2])
			}
		}
	}
	if _, errs, _ := netnsFastRun(t, bin, fastOn, "netns", "del", name); !strings.Contains(errs, "no such namespace") {
		t.Errorf("del of missing %s: %q", name, errs)
	}

	// A bare file left by a crashed add (not a mount point): C deletes it.
	bare := filepath.Join(netns.RunDir, other)
	if err := os.WriteFile(bare, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := netnsFastRun(t, bin, fastOn, "netns", "del", other); code != 0 || errs != "" {
		t.Errorf("fast del of bare file %s: exit %d %q", other, code, errs)
	}
	if _, err := os.Lstat(bare); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists: %v", bare, err)
	}
}

// mountBindFilter is a seccomp filter that fails mount(2) with EPERM when
// its flags are exactly MS_BIND (the namespace bind of an add; /run/netns's
// own bind has MS_REC too) and, when setnsToo, every setns(2).
func mountBindFilter(setnsToo bool) []unix.SockFilter {
	const (
		ldAbs  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret    = unix.BPF_RET | unix.BPF_K
		allow  = unix.SECCOMP_RET_ALLOW
		eperm  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		offNr  = 0
		offArc = 4
		offA3  = 16 + 3*8 // args[3] (flags), low half on little endian
	)
	arch := map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]
	setnsNr := uint32(0xffffffff) // no syscall has it
	if setnsToo {
		setnsNr = unix.SYS_SETNS
	}
	return []unix.SockFilter{
		/* 0 */ {Code: ldAbs, K: offArc},
		/* 1 */ {Code: jeq, Jt: 0, Jf: 5, K: arch}, // other arch: 7
		/* 2 */ {Code: ldAbs, K: offNr},
		/* 3 */ {Code: jeq, Jt: 4, Jf: 0, K: setnsNr}, // setns: 8
		/* 4 */ {Code: jeq, Jt: 0, Jf: 2, K: unix.SYS_MOUNT}, // other: 7
		/* 5 */ {Code: ldAbs, K: offA3},
		/* 6 */ {Code: jeq, Jt: 1, Jf: 0, K: unix.MS_BIND}, // bind: 8
		/* 7 */ {Code: ret, K: allow},
		/* 8 */ {Code: ret, K: eperm},
	}
}

// TestNetnsFastSeccompHelper is not a test: run by TestNetnsFastFailure
// with NSBOX_TEST_SECCOMP_EXEC set, it installs mountBindFilter on its
// thread and execs nsbox with the arguments after "--".
func TestNetnsFastSeccompHelper(t *testing.T) {
	bin := os.Getenv("NSBOX_TEST_SECCOMP_EXEC")
	if bin == "" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	runtime.LockOSThread() // the filter is per thread: exec from this one
	filter := mountBindFilter(os.Getenv("NSBOX_TEST_SECCOMP_SETNS") == "1")
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		os.Exit(201)
	}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
		os.Exit(202)
	}
	env := []string{}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "NSBOX_TEST_SECCOMP") {
			env = append(env, e)
		}
	}
	_ = syscall.Exec(bin, append([]string{bin}, args...), env) // returns only on failure
	os.Exit(203)
}

// TestNetnsFastFailure: a bind mount that fails after unshare (a seccomp
// filter refuses it to both paths) leaves no file and prints Go's line;
// with setns refused too, the C path cannot go back and says so itself
// (which shows the C path did reach unshare, the bind and the setns).
func TestNetnsFastFailure(t *testing.T) {
	testutil.RequirePriv(t)
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("no seccomp filter for %s", runtime.GOARCH)
	}
	bin := runBuildNsbox(t)
	name := testutil.UniqueName("nsbff")
	path := filepath.Join(netns.RunDir, name)
	t.Cleanup(func() {
		if _, err := os.Lstat(path); err == nil {
			testutil.CmdErr("ip", "netns", "del", name)
		}
	})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tid := regexp.MustCompile(`/task/[0-9]+/`)
	runFiltered := func(fast string, setnsToo bool) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, self, "-test.run=^TestNetnsFastSeccompHelper$", "--", "netns", "add", name)
		cmd.Env = append(os.Environ(), "NSBOX_TEST_SECCOMP_EXEC="+bin, "NSBOX_NO_FASTPATH="+fast)
		if setnsToo {
			cmd.Env = append(cmd.Env, "NSBOX_TEST_SECCOMP_SETNS=1")
		}
		_, stderr, code := runCaptured(t, cmd)
		if _, err := os.Lstat(path); err == nil {
			t.Errorf("fast=%s setns=%v: %s left behind", fast, setnsToo, path)
		}
		return tid.ReplaceAllString(stderr, "/task/N/"), code
	}

	goErr, goCode := runFiltered("1", false)
	if goCode != 1 || !strings.HasPrefix(goErr, "nsbox: netns add "+name+": mount --bind") || !strings.Contains(goErr, "operation not permitted") {
		t.Fatalf("Go path with mount refused: exit %d %q", goCode, goErr)
	}
	fastErr, fastCode := runFiltered("0", false)
	if fastCode != goCode || fastErr != goErr {
		t.Errorf("fast path with mount refused: exit %d %q; Go path: exit %d %q", fastCode, fastErr, goCode, goErr)
	}
	stuckErr, stuckCode := runFiltered("0", true)
	if want := "nsbox: netns: add " + name + ": setns back to the original namespace: operation not permitted\n"; stuckCode != 1 || stuckErr != want {
		t.Errorf("fast path with mount and setns refused: exit %d %q; want 1 %q", stuckCode, stuckErr, want)
	}
	if ipNetnsNames(t)[name] {
		t.Errorf("ip lists %s after failed adds", name)
	}
}
