package nsclone

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/sandbox/caps"
	"github.com/nsbox/nsbox/sandbox/cgroup"
	"github.com/nsbox/nsbox/sandbox/rlimit"
	"github.com/nsbox/nsbox/sandbox/seccomp"
)

// held starts s with a payload that waits on its stdin (cat), returns the
// process and a function that ends it and returns its status.
func held(t *testing.T, s *Spec) (*Process, func() ExitStatus) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.Path, s.Args, s.Stdin = "/bin/cat", []string{"cat"}, r
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	p, err := Start(ctx, s)
	r.Close()
	if err != nil {
		w.Close()
		cancel()
		t.Fatalf("Start: %v", err)
	}
	done := false
	end := func() ExitStatus {
		if done {
			return ExitStatus{}
		}
		done = true
		w.Close()
		st, err := p.Wait()
		cancel()
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		return st
	}
	t.Cleanup(func() { end() })
	return p, end
}

// status reads field of /proc/pid/status.
func status(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

func capHex(s caps.Set) string { return fmt.Sprintf("%016x", uint64(s)) }

// The kept capabilities are exactly what every set shows; the ambient set
// holds them only for a non-root payload.
func TestCapabilities(t *testing.T) {
	testutil.RequirePriv(t)
	keep := caps.Set(0).With(capability.CAP_NET_BIND_SERVICE).With(capability.CAP_KILL)
	nobody := uint32(65534)
	for _, c := range []struct {
		name    string
		uid     *uint32
		ambient caps.Set
	}{{"root", nil, 0}, {"nobody", &nobody, keep}} {
		t.Run(c.name, func(t *testing.T) {
			p, end := held(t, &Spec{Capabilities: &keep, UID: c.uid, GID: c.uid})
			for _, f := range []string{"CapEff", "CapPrm", "CapInh", "CapBnd"} {
				if got := status(t, p.Pid(), f); got != capHex(keep) {
					t.Errorf("%s = %s; want %s (%s)", f, got, capHex(keep), keep)
				}
			}
			if got := status(t, p.Pid(), "CapAmb"); got != capHex(c.ambient) {
				t.Errorf("CapAmb = %s; want %s", got, capHex(c.ambient))
			}
			if got := status(t, p.Pid(), "NoNewPrivs"); got != "0" {
				t.Errorf("NoNewPrivs = %s without NoNewPrivs or Seccomp", got)
			}
			if st := end(); st.Code() != 0 {
				t.Errorf("payload: %v", st)
			}
		})
	}
}

// Capabilities the caller does not hold cannot be granted.
func TestCapabilitiesNotHeld(t *testing.T) {
	testutil.RequirePriv(t)
	eff, err := caps.Effective()
	if err != nil {
		t.Fatal(err)
	}
	all, _ := caps.All()
	missing := all &^ eff
	if missing == 0 {
		t.Skip("the test process holds every capability")
	}
	_, err = Start(context.Background(), &Spec{Path: "/bin/true", Capabilities: &all})
	var se *SetupError
	if !errors.As(err, &se) || se.Stage != StageCaps || !strings.Contains(err.Error(), missing.String()) {
		t.Fatalf("Start = %v; want a capabilities error naming %s", err, missing)
	}
}

// Seccomp installs one filter and implies no_new_privs once CAP_SYS_ADMIN
// is gone; NoNewPrivs alone sets the bit and no filter.
func TestSeccompAndNoNewPrivs(t *testing.T) {
	testutil.RequirePriv(t)
	none := caps.Set(0)
	for _, c := range []struct {
		name          string
		spec          Spec
		nnp, mode, nf string
	}{
		{"nnp", Spec{NoNewPrivs: true}, "1", "0", "0"},
		{"default-dropped", Spec{Seccomp: seccomp.Default(), Capabilities: &none}, "1", "2", "1"},
		{"default-root", Spec{Seccomp: seccomp.Default()}, "0", "2", "1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.spec
			p, end := held(t, &s)
			if got := status(t, p.Pid(), "NoNewPrivs"); got != c.nnp {
				t.Errorf("NoNewPrivs = %s; want %s", got, c.nnp)
			}
			if got := status(t, p.Pid(), "Seccomp"); got != c.mode {
				t.Errorf("Seccomp = %s; want %s", got, c.mode)
			}
			if got := status(t, p.Pid(), "Seccomp_filters"); got != c.nf {
				t.Errorf("Seccomp_filters = %s; want %s", got, c.nf)
			}
			end()
		})
	}
}

// The default profile refuses unshare with EPERM inside, and the payload
// still runs ordinary commands.
func TestSeccompDefaultRefuses(t *testing.T) {
	testutil.RequirePriv(t)
	none := caps.Set(0)
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	s := &Spec{Path: "/bin/sh", Args: []string{"sh", "-c", "unshare -U true; echo unshare=$?; ls / >/dev/null; echo ls=$?"},
		Seccomp: seccomp.Default(), Capabilities: &none, Stdout: out, Stderr: out}
	st, err := Run(context.Background(), s)
	if err != nil || st.Code() != 0 {
		t.Fatalf("Run = %v, %v", st, err)
	}
	b, _ := os.ReadFile(out.Name())
	if !strings.Contains(string(b), "unshare=1") || !strings.Contains(string(b), "Operation not permitted") || !strings.Contains(string(b), "ls=0") {
		t.Fatalf("output %q: want unshare refused with EPERM and ls working", b)
	}
}

// Rlimits show in /proc/PID/limits; one above the caller's hard limit is
// refused before anything is spawned, naming both.
func TestRlimits(t *testing.T) {
	testutil.RequirePriv(t)
	p, end := held(t, &Spec{Rlimits: []rlimit.Limit{{Resource: unix.RLIMIT_NOFILE, Soft: 64, Hard: 128},
		{Resource: unix.RLIMIT_CORE, Soft: 0, Hard: 0}}})
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"Max open files": {"64", "128"}, "Max core file size": {"0", "0"}}
	for _, l := range strings.Split(string(b), "\n") {
		for k, v := range want {
			if strings.HasPrefix(l, k) {
				f := strings.Fields(strings.TrimPrefix(l, k))
				if len(f) < 2 || f[0] != v[0] || f[1] != v[1] {
					t.Errorf("%q: want %s %v", l, k, v)
				}
				delete(want, k)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("not in /proc/PID/limits: %v", want)
	}
	end()

	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	if cur.Max == rlimit.Unlimited {
		return
	}
	_, err = Start(context.Background(), &Spec{Path: "/bin/true",
		Rlimits: []rlimit.Limit{{Resource: unix.RLIMIT_NOFILE, Soft: 10, Hard: cur.Max + 1}}})
	if err == nil || !strings.Contains(err.Error(), strconv.FormatUint(cur.Max, 10)) ||
		!strings.Contains(err.Error(), strconv.FormatUint(cur.Max+1, 10)) {
		t.Fatalf("Start above the hard limit = %v; want an error naming both limits", err)
	}
}

// cgroupParent is a parent group of the test's own, removed at the end.
func cgroupParent(t *testing.T) string { return testutil.CgroupParent(t) }

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func gone(dirs []string) error {
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			return fmt.Errorf("cgroup %s still exists", d)
		}
	}
	return nil
}

// The payload runs in a group with the limits written, seen from outside;
// the group is gone once Wait returns.
func TestCgroupLimits(t *testing.T) {
	testutil.RequirePriv(t)
	parent := cgroupParent(t)
	p, end := held(t, &Spec{Cgroup: &cgroup.Config{Parent: parent,
		Limits: cgroup.Limits{Memory: 64 << 20, Pids: 20, CPUs: 0.5}}})
	g := p.Cgroup()
	if g == nil || len(g.Dirs) == 0 {
		t.Fatal("no cgroup")
	}
	dirs := append([]string(nil), g.Dirs...)
	for _, d := range dirs {
		procs := readTrim(t, filepath.Join(d, "cgroup.procs"))
		if procs != strconv.Itoa(p.Pid()) {
			t.Errorf("%s/cgroup.procs = %q; want the payload %d", d, procs, p.Pid())
		}
		check := func(file, want string) {
			if _, err := os.Stat(filepath.Join(d, file)); err == nil {
				if got := readTrim(t, filepath.Join(d, file)); got != want {
					t.Errorf("%s/%s = %s; want %s", d, file, got, want)
				}
			}
		}
		check("memory.limit_in_bytes", strconv.Itoa(64<<20))
		check("memory.max", strconv.Itoa(64<<20))
		check("pids.max", "20")
		check("cpu.cfs_quota_us", "50000")
		check("cpu.max", "50000 100000")
	}
	if !strings.Contains(readTrim(t, fmt.Sprintf("/proc/%d/cgroup", p.Pid())), g.Path) {
		t.Errorf("/proc/%d/cgroup does not show %s", p.Pid(), g.Path)
	}
	if st := end(); st.Code() != 0 || st.OOMKilled() {
		t.Errorf("payload: %v oom=%v", st, st.OOMKilled())
	}
	if err := gone(dirs); err != nil {
		t.Fatal(err)
	}
}

// A memory hog is killed by the OOM killer, and Wait says so.
func TestCgroupOOM(t *testing.T) {
	testutil.RequirePriv(t)
	parent := cgroupParent(t)
	s := &Spec{Path: "/usr/bin/perl", Args: []string{"perl", "-e", `my @a; push @a, "x" x (1<<20) for 1..512; exit 0`},
		Cgroup: &cgroup.Config{Parent: parent, Limits: cgroup.Limits{Memory: 32 << 20, MemorySwap: 32 << 20}}}
	// No swap either, so the hog cannot escape the limit by swapping: v1
	// needs swap accounting (memsw), v2 has memory.swap.max.
	_, v1swap := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	_, v2 := os.Stat("/sys/fs/cgroup/cgroup.subtree_control")
	if v1swap != nil && v2 != nil {
		s.Cgroup.MemorySwap = 0
	}
	st, err := Run(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if !st.OOMKilled() || st.Code() != 137 {
		t.Fatalf("hog ended %v (oom=%v); want SIGKILL by the OOM killer", st, st.OOMKilled())
	}
}

// A fork bomb under a pids limit gets EAGAIN and the host is not harmed.
func TestCgroupPidsForkBomb(t *testing.T) {
	testutil.RequirePriv(t)
	parent := cgroupParent(t)
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// Children sleep so they stay counted; the parent forks until fork
	// fails and prints the errno name.
	bomb := `use POSIX; my $n=0; for (1..200) { my $p = fork(); if (!defined $p) { print "$n ", ($!{EAGAIN} ? "EAGAIN" : "$!"), "\n"; exit 0 } if ($p == 0) { sleep 30; exit 0 } $n++ } print "$n none\n"`
	s := &Spec{Path: "/usr/bin/perl", Args: []string{"perl", "-e", bomb}, Stdout: out,
		Cgroup: &cgroup.Config{Parent: parent, Limits: cgroup.Limits{Pids: 10}}}
	p, err := Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	dirs := append([]string(nil), p.Cgroup().Dirs...)
	st, err := p.Wait()
	if err != nil || st.Code() != 0 {
		t.Fatalf("Wait = %v, %v", st, err)
	}
	b, _ := os.ReadFile(out.Name())
	if strings.TrimSpace(string(b)) != "9 EAGAIN" {
		t.Fatalf("fork bomb printed %q; want 9 forks then EAGAIN", b)
	}
	// The sleeping children were left in the group: Wait killed them
	// and removed it.
	if err := gone(dirs); err != nil {
		t.Fatal(err)
	}
}

// cgKillMain starts a sandbox with a cgroup in the parent given by
// NSCLONE_CGPARENT, prints its pid and group dirs as JSON and waits to be
// killed.
func cgKillMain() int {
	p, err := Start(context.Background(), &Spec{Path: "/bin/sleep", Args: []string{"sleep", "60"},
		Cgroup: &cgroup.Config{Parent: os.Getenv("NSCLONE_CGPARENT"), Limits: cgroup.Limits{Pids: 50}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, _ := json.Marshal(map[string]any{"pid": p.Pid(), "dirs": p.Cgroup().Dirs})
	fmt.Println(string(b))
	time.Sleep(60 * time.Second)
	return 0
}

// When the caller dies of SIGKILL, its watcher kills the sandbox and
// removes the group.
func TestCgroupCallerKilled(t *testing.T) {
	testutil.RequirePriv(t)
	parent := cgroupParent(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, self, "-test.run=^$")
	c.Env = append(os.Environ(), "NSCLONE_CGKILL=1", "NSCLONE_CGPARENT="+parent)
	c.Stderr = os.Stderr
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read the sandbox: %v", err)
	}
	var rep struct {
		Pid  int
		Dirs []string
	}
	if err := json.Unmarshal([]byte(line), &rep); err != nil || len(rep.Dirs) == 0 {
		t.Fatalf("report %q: %v", line, err)
	}
	if err := gone(rep.Dirs); err == nil {
		t.Fatal("the group does not exist while the sandbox runs")
	}
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.Wait()
	for i := 0; i < 250 && (alive(rep.Pid) || gone(rep.Dirs) != nil); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(rep.Pid) {
		_ = unix.Kill(rep.Pid, unix.SIGKILL)
		t.Fatalf("sandbox %d outlived its killed caller", rep.Pid)
	}
	if err := gone(rep.Dirs); err != nil {
		t.Fatal(err)
	}
}

// A cgroup parent that does not exist fails before anything runs.
func TestCgroupBadParent(t *testing.T) {
	testutil.RequirePriv(t)
	_, err := Start(context.Background(), &Spec{Path: "/bin/true",
		Cgroup: &cgroup.Config{Parent: "/nsbox-no-such-parent", Limits: cgroup.Limits{Pids: 5}}})
	var se *SetupError
	if !errors.As(err, &se) || se.Stage != StageCgroup || !strings.Contains(err.Error(), "/nsbox-no-such-parent") {
		t.Fatalf("Start = %v; want a cgroup error naming the parent", err)
	}
}
