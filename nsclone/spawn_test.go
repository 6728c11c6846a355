package nsclone

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// rootlessMain runs as uid 65534 (started by TestRootless): it spawns the
// probe in a new user namespace mapping itself to root and prints the
// probe's report as JSON on stdout.
func rootlessMain() int {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s := &Spec{
		Path: os.Getenv("NSCLONE_PROBE_BIN"), Args: []string{"probe"},
		Env:        []string{"NSCLONE_PROBE=1"},
		Namespaces: User | PID | Mnt | UTS | IPC, MountProc: true, MapRoot: true, Hostname: "rootless", Init: true,
		ExtraFiles: []*os.File{w}, Stderr: os.Stderr,
	}
	st, err := Run(context.Background(), s)
	w.Close()
	if err != nil || st.Code() != 0 {
		fmt.Fprintf(os.Stderr, "rootless spawn: %v %v\n", st, err)
		return 1
	}
	data, _ := io.ReadAll(r)
	os.Stdout.Write(data)
	return 0
}

// An ordinary user (uid 65534) maps itself to root in a new user namespace
// and gets its own PID, mount and UTS namespaces, /proc and hostname.
func TestRootless(t *testing.T) {
	testutil.RequirePriv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, probeBin, "-test.run=^$")
	cmd.Env = []string{"NSCLONE_ROOTLESS=1", "NSCLONE_PROBE_BIN=" + probeBin}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rootless helper: %v: %s", err, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	if rep.UID != 0 || rep.GID != 0 {
		t.Errorf("inside: uid %d gid %d, want 0 0", rep.UID, rep.GID)
	}
	if rep.UIDMap != "0 65534 1" {
		t.Errorf("uid_map %q, want \"0 65534 1\"", rep.UIDMap)
	}
	if rep.Hostname != "rootless" || rep.PID != 2 {
		t.Errorf("hostname %q pid %d, want rootless and 2 (under the init)", rep.Hostname, rep.PID)
	}
}

// TestPropagation runs TestPropagationInner in a mount namespace of its own
// (unshare --mount, private from the host), where / is made rshared.
func TestPropagation(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "unshare")
	out, err := testutil.CmdErr("unshare", "--mount", "--propagation", "private", "--",
		"env", "NSCLONE_PROPAGATION_INNER=1", "NSCLONE_OUTER_MNT="+readLink("/proc/self/ns/mnt"), probeBin, "-test.run=^TestPropagationInner$", "-test.v", "-test.count=1")
	if err != nil || !strings.Contains(out, "--- PASS: TestPropagationInner") {
		t.Fatalf("inner test: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(out))
}

// TestPropagationInner is TestPropagation's body; it runs only in the
// namespace that TestPropagation made.
func TestPropagationInner(t *testing.T) {
	if os.Getenv("NSCLONE_PROPAGATION_INNER") != "1" {
		t.Skip("runs inside TestPropagation's mount namespace only")
	}
	if outer := os.Getenv("NSCLONE_OUTER_MNT"); outer == "" || mustReadlink(t, "/proc/self/ns/mnt") == outer {
		t.Fatal("not in a private mount namespace: refusing to make / shared")
	}
	if err := unix.Mount("", "/", "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatalf("make / rshared: %v", err)
	}
	// Our own mountinfo is read through a handle on our /proc/self taken
	// now, since a leaked /proc would cover /proc.
	self, err := os.Open("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	readMountinfo := func(t *testing.T) string {
		t.Helper()
		fd, err := unix.Openat(int(self.Fd()), "mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "mountinfo")
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// The payload stays alive (reading stdin) while we look at our own
	// mountinfo: a /proc mount that propagated would show up now.
	spawn := func(propagation string) (before, during []string) {
		stdinR, stdinW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer stdinR.Close()
		s, read := probeSpec(t, "NSCLONE_PROBE_WAIT=1")
		s.Stdin = stdinR
		s.Namespaces, s.MountProc, s.Propagation = IPC|PID|Mnt, true, propagation
		before = procMounts(readMountinfo(t))
		p, err := Start(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		rep := read() // the payload mounted /proc and reported
		during = procMounts(readMountinfo(t))
		stdinW.Close()
		if st, err := p.Wait(); err != nil || st.Code() != 0 {
			t.Fatalf("probe: %v %v", st, err)
		}
		if len(procMounts(rep.Mountinfo)) == 0 {
			t.Fatalf("the payload has no /proc mount")
		}
		return before, during
	}
	// Every propagation value: no /proc mount reaches the outer namespace
	// while the payload runs, and the outer /proc/self still resolves to
	// this process after it ended (a leaked /proc would belong to the dead
	// PID namespace). "shared" and "unchanged" leaked before /proc's mount
	// point was made private first.
	for _, prop := range []string{"", "private", "slave", "shared", "unchanged"} {
		before, during := spawn(prop)
		if len(during) != len(before) {
			t.Errorf("propagation %q: a /proc mount reached the outer namespace:\nbefore %q\nduring %q", prop, before, during)
		}
		if got, err := os.Readlink("/proc/self"); err != nil || got != strconv.Itoa(os.Getpid()) {
			t.Errorf("propagation %q: after the sandbox ended the outer /proc/self reads %q, %v; want %d", prop, got, err, os.Getpid())
		}
		// Take a leaked /proc off again (in this private namespace only)
		// so that the next value is checked on its own.
		for i := len(before); i < len(during); i++ {
			if err := unix.Unmount("/proc", unix.MNT_DETACH); err != nil {
				t.Fatalf("unmount leaked /proc: %v", err)
			}
		}
	}
}

func mustReadlink(t *testing.T, p string) string {
	t.Helper()
	s, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A double-forked orphan is reparented to the init and reaped: no zombie is
// left in the PID namespace.
func TestZombiesReaped(t *testing.T) {
	testutil.RequirePriv(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	script := `sh -c 'sleep 0.2 & echo $!'; sleep 1; for f in /proc/[0-9]*/stat; do read -r l < "$f" && echo "$l"; done`
	s := &Spec{Path: "/bin/sh", Args: []string{"sh", "-c", script}, Stdout: w, Namespaces: IPC | PID | Mnt, MountProc: true, Init: true}
	st := run(t, s)
	w.Close()
	out, _ := io.ReadAll(r)
	if st.Code() != 0 {
		t.Fatalf("script: %v", st)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	orphan := strings.TrimSpace(lines[0])
	if _, err := strconv.Atoi(orphan); err != nil || len(lines) < 2 {
		t.Fatalf("unexpected output %q", out)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		// pid (comm) state ...: comm has no spaces here.
		if len(f) < 3 {
			continue
		}
		if f[2] == "Z" {
			t.Errorf("zombie in the namespace: %s", l)
		}
		if f[0] == orphan {
			t.Errorf("orphan %s still listed: %s", orphan, l)
		}
	}
}

// 64 spawns at once from goroutines, some with a BeforeExec hook: each gets
// its own exit status.
func TestConcurrentSpawns(t *testing.T) {
	testutil.RequirePriv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := &Spec{Path: "/bin/sh", Args: []string{"sh", "-c", "exit " + strconv.Itoa(i)},
				Namespaces: IPC | PID | Mnt, MountProc: true, Init: i%4 == 1}
			hooked := 0
			if i%2 == 0 {
				s.BeforeExec = func(pid int) error { hooked = pid; return nil }
			}
			st, err := Run(ctx, s)
			switch {
			case err != nil:
				errs <- fmt.Errorf("spawn %d: %w", i, err)
			case st.Code() != i:
				errs <- fmt.Errorf("spawn %d exited %v", i, st)
			case i%2 == 0 && hooked <= 0:
				errs <- fmt.Errorf("spawn %d: hook not run", i)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BeforeExec runs while the child waits: what it does is visible to the
// payload, and its error kills the child and comes back from Start.
func TestBeforeExec(t *testing.T) {
	testutil.RequirePriv(t)
	dir := t.TempDir()
	flag := dir + "/hook-ran"
	var sawNetns string
	s := &Spec{Path: "/bin/cat", Args: []string{"cat", flag}, Namespaces: Net | Mnt,
		BeforeExec: func(pid int) error {
			sawNetns = readLink("/proc/" + strconv.Itoa(pid) + "/ns/net")
			return os.WriteFile(flag, []byte("x"), 0o644)
		}}
	if st := run(t, s); st.Code() != 0 {
		t.Fatalf("the payload did not see the hook's file: %v", st)
	}
	if sawNetns == "" || sawNetns == readLink("/proc/self/ns/net") {
		t.Errorf("hook saw net namespace %q, want the child's new one", sawNetns)
	}

	var pid int
	boom := errors.New("boom")
	s = &Spec{Path: "/bin/sleep", Args: []string{"sleep", "100"}, Namespaces: PID | Mnt, MountProc: true, Init: true,
		BeforeExec: func(p int) error { pid = p; return boom }}
	_, err := Start(context.Background(), s)
	var se *SetupError
	if !errors.Is(err, boom) || !errors.As(err, &se) || se.Stage != StageBeforeExec {
		t.Fatalf("Start = %v, want a before exec error wrapping boom", err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("child %d still exists after the hook failed", pid)
	}
}

// Only the fds asked for reach the payload: stdio, and fd 4 of ExtraFiles
// (fd 3 is nil, so closed). None of the parent's other fds leak.
func TestFDs(t *testing.T) {
	testutil.RequirePriv(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	extra, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	for _, init := range []bool{false, true} {
		s := &Spec{Path: "/bin/sh", Args: []string{"sh", "-c", "ls /proc/$$/fd"}, Stdout: w,
			ExtraFiles: []*os.File{nil, extra}, Namespaces: PID | Mnt, MountProc: true, Init: init}
		if st := run(t, s); st.Code() != 0 {
			t.Fatalf("sh: %v", st)
		}
	}
	w.Close()
	out, _ := io.ReadAll(r)
	if got := strings.Join(strings.Fields(string(out)), " "); got != "0 1 2 4 0 1 2 4" {
		t.Errorf("payload fds %q, want 0 1 2 4 (twice)", got)
	}
}

func readLink(p string) string {
	s, _ := os.Readlink(p)
	return s
}

// Join enters a named network namespace made by ip; Mounts put a sysfs of it
// on /sys.
func TestJoinNetns(t *testing.T) {
	name := testutil.NewNetns(t)
	var want unix.Stat_t
	if err := unix.Stat("/run/netns/"+name, &want); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := &Spec{Path: "/bin/sh", Args: []string{"sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net"},
		Stdout: w, Namespaces: Mnt, Propagation: "slave",
		Join:   map[Namespace]string{Net: "/run/netns/" + name},
		Mounts: []Mount{{Source: name, Target: "/sys", FSType: "sysfs"}}}
	st := run(t, s)
	w.Close()
	out, _ := io.ReadAll(r)
	if st.Code() != 0 {
		t.Fatalf("sh: %v", st)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 || lines[0] != fmt.Sprintf("net:[%d]", want.Ino) || lines[1] != "lo" {
		t.Errorf("got %q, want net:[%d] and only lo in /sys/class/net", lines, want.Ino)
	}
}

// Cancelling the context kills the whole PID namespace, init, payload and
// orphans.
func TestContextCancelKillsNamespace(t *testing.T) {
	testutil.RequirePriv(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Spec{Path: "/bin/sh", Args: []string{"sh", "-c", "sh -c 'sleep 100 &'; sleep 100"},
		Namespaces: IPC | PID | Mnt, MountProc: true, Init: true}
	p, err := Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	pidns := readLink(fmt.Sprintf("/proc/%d/ns/pid", p.Pid()))
	// Wait (bounded) until both sleeps run: the orphan reparented to the
	// init and the payload's own. Counting all processes would race with
	// the inner shell, which exists for a moment and then exits.
	for i := 0; i < 250 && sleepsIn(pidns) < 2; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if n := sleepsIn(pidns); n < 2 {
		t.Fatalf("only %d sleep processes in the namespace (all: %v)", n, pidsIn(pidns))
	}
	cancel()
	st, err := p.Wait()
	if err != nil || !st.Signaled() || st.Signal() != unix.SIGKILL {
		t.Fatalf("Wait = %v, %v; want killed by SIGKILL", st, err)
	}
	for i := 0; i < 100 && len(pidsIn(pidns)) > 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if left := pidsIn(pidns); len(left) > 0 {
		t.Errorf("processes left in the namespace: %v", left)
	}
	if err := p.Signal(unix.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after Wait = %v, want ErrProcessDone", err)
	}
	if _, err := p.Wait(); err == nil {
		t.Error("second Wait succeeded")
	}
	if _, err := Run(ctx, s); err == nil {
		t.Error("Run with a cancelled context succeeded")
	}
}

// sleepsIn counts the processes named sleep in PID namespace ns.
func sleepsIn(ns string) int {
	n := 0
	for _, pid := range pidsIn(ns) {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(comm)) == "sleep" {
			n++
		}
	}
	return n
}

// pidsIn lists host pids whose PID namespace is ns.
func pidsIn(ns string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err == nil && readLink("/proc/"+e.Name()+"/ns/pid") == ns {
			out = append(out, n)
		}
	}
	return out
}

// Signal reaches the payload through the init.
func TestSignalForwardedByInit(t *testing.T) {
	testutil.RequirePriv(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := &Spec{Path: "/bin/sh", Args: []string{"sh", "-c", "trap 'echo got-usr1; exit 5' USR1; echo ready; while :; do sleep 0.05; done"},
		Stdout: w, Namespaces: PID | Mnt, MountProc: true, Init: true}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read ready: %q %v", buf, err)
	}
	if err := p.Signal(unix.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	rest, _ := io.ReadAll(r)
	if err != nil || st.Code() != 5 || !strings.Contains(string(rest), "got-usr1") {
		t.Errorf("Wait = %v, %v, output %q; want exit 5 after got-usr1", st, err, rest)
	}
}

// The init is nsinit exec'd from a sealed memfd: it shares no memory with
// the caller and is no nsbox binary.
func TestInitIsSealedMemfd(t *testing.T) {
	testutil.RequirePriv(t)
	if len(initELF()) == 0 {
		t.Skip("no prebuilt nsinit for this architecture: the init is cloned without CLONE_VM")
	}
	stdin, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	p, err := Start(context.Background(), &Spec{Path: "/bin/cat", Stdin: stdin, Namespaces: PID | Mnt, MountProc: true, Init: true})
	if err != nil {
		t.Fatal(err)
	}
	exe := readLink(fmt.Sprintf("/proc/%d/exe", p.Pid()))
	comm := readFile(fmt.Sprintf("/proc/%d/comm", p.Pid()))
	w.Close()
	if st, err := p.Wait(); err != nil || st.Code() != 0 {
		t.Fatalf("cat: %v %v", st, err)
	}
	if !strings.HasPrefix(exe, "/memfd:nsbox-init") || comm != "nsbox-init" {
		t.Errorf("init exe %q comm %q, want the nsbox-init memfd", exe, comm)
	}
}

// csrc/nsinit_elf.h must be built from the current csrc/nsinit.c.
func TestInitBlobUpToDate(t *testing.T) {
	want := initSourceHash()
	var src []byte
	for _, f := range []string{"../csrc/nsinit.c", "../csrc/nsc_syscall.h", "../csrc/nsc_init_loop.h"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	// The nsinit part of the generated header (stage numbers, signals).
	gen, err := os.ReadFile("../csrc/nsbox_gen.h")
	if err != nil {
		t.Fatal(err)
	}
	g := string(gen)
	begin, end := strings.Index(g, "/* begin nsinit */\n"), strings.Index(g, "/* end nsinit */\n")
	if begin < 0 || end < begin {
		t.Fatal("csrc/nsbox_gen.h has no nsinit part")
	}
	src = append(src, g[begin:end+len("/* end nsinit */\n")]...)
	if got := fmt.Sprintf("%x", sha256.Sum256(src)); got != want {
		t.Errorf("csrc/nsinit_elf.h is stale (sources %s, blob built from %s): run csrc/gen_init.sh", got, want)
	}
}

// The fallback init, cloned without CLONE_VM, reaps and reports like nsinit.
func TestForkInit(t *testing.T) {
	testutil.RequirePriv(t)
	s := &Spec{Path: "/bin/sh", Args: []string{"sh", "-c", `test "$(cat /proc/1/comm)" = nsbox-init && exit 9`},
		Namespaces: PID | Mnt, MountProc: true, Init: true}
	waited := make(chan struct{})
	res, err := spawn(s, "/bin/sh", s.Args, os.Environ(), true, waited, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{pid: int(res.pid), pidfd: int(res.pidfd), waited: waited}
	if st, err := p.Wait(); err != nil || st.Code() != 9 {
		t.Errorf("fork init: %v %v, want exit 9 (the payload saw nsbox-init as PID 1)", st, err)
	}
}
