package nsclone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/sandbox/cgroup"
	"github.com/nsbox/nsbox/sandbox/seccomp"
)

// cgroup2Mount is where a cgroup2 hierarchy is mounted ("" if none), from
// /proc/self/mountinfo, for mounts of its root only.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		for i, x := range f {
			if x == "-" && i+1 < len(f) && f[i+1] == "cgroup2" && len(f) > 4 && f[3] == "/" {
				return f[4]
			}
		}
	}
	return ""
}

// v2Group makes an empty v2 group named prefix + pid + a random suffix
// (removed in t.Cleanup) and returns its name and folder; it skips without
// a cgroup2 hierarchy or the right to make a group in it.
func v2Group(t *testing.T, prefix string) (name, dir string) {
	t.Helper()
	testutil.RequirePriv(t)
	mnt := cgroup2Mount(t)
	if mnt == "" {
		t.Skip("no cgroup2 hierarchy mounted")
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	name = prefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(rnd[:])
	dir = filepath.Join(mnt, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a v2 group: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return name, dir
}

// TestCloneIntoCgroupV2 places a child in a v2 group with
// clone3(CLONE_INTO_CGROUP): cgroup.procs, read from outside, lists it, its
// /proc/PID/cgroup names the group, and the watcher removes the group after
// Wait. On this test machine the v2 hierarchy has no controllers, so the
// group limits nothing; the placement is what is checked.
func TestCloneIntoCgroupV2(t *testing.T) {
	name, dir := v2Group(t, "nsbox-clone3-test-")
	g := &cgroup.Group{V2: true, Path: "/" + name, Dirs: []string{dir}, KillFile: filepath.Join(dir, cgroup.KillFileV2)}
	s := &Spec{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Env: []string{}, Namespaces: PID | Mnt, group: g}
	p, err := Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Wait()
	if !p.cg.placed {
		t.Errorf("clone3(CLONE_INTO_CGROUP) did not place the child (it joined instead)")
	}
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(" "+strings.Join(strings.Fields(string(procs)), " ")+" ", " "+strconv.Itoa(p.Pid())+" ") {
		t.Errorf("%s/cgroup.procs = %q, want pid %d", dir, procs, p.Pid())
	}
	own, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(own), "0::/"+name+"\n") {
		t.Errorf("/proc/%d/cgroup = %q, want 0::/%s", p.Pid(), own, name)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Wait()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("group %s left after Wait: %v", dir, err)
	}
}

// clone3Report is what clone3FallbackMain saw.
type clone3Report struct {
	Probe   string // the errno of a raw clone3 with no arguments
	Placed  bool
	Pid     int
	Cgroup  string // the child's /proc/PID/cgroup
	Procs   string // the group's cgroup.procs
	Removed bool   // the group was gone after Wait
	Err     string
}

// clone3FallbackMain runs in a copy of the test binary whose clone3 a
// seccomp filter answers with ENOSYS, as a kernel before 5.3 or a
// container runtime's profile that predates clone3 does. It starts a child
// for the v2 group NSCLONE_CLONE3_DIR and reports what it saw as JSON.
func clone3FallbackMain() int {
	rep := clone3Report{}
	defer func() { _ = json.NewEncoder(os.Stdout).Encode(rep) }()
	fail := func(err error) int { rep.Err = err.Error(); return 1 }
	prog, err := seccomp.Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOSYS))}}})
	if err != nil {
		return fail(err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("no_new_privs: %w", err))
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fail(fmt.Errorf("seccomp: %w", e))
	}
	// Without the filter this is EINVAL (a size of 0); with it, ENOSYS.
	_, _, e := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	rep.Probe = unix.ErrnoName(e)
	dir := os.Getenv("NSCLONE_CLONE3_DIR")
	name := filepath.Base(dir)
	g := &cgroup.Group{V2: true, Path: "/" + name, Dirs: []string{dir}, KillFile: filepath.Join(dir, cgroup.KillFileV2)}
	p, err := Start(context.Background(), &Spec{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Env: []string{}, Namespaces: PID | Mnt, group: g})
	if err != nil {
		return fail(err)
	}
	rep.Placed, rep.Pid = p.cg.placed, p.Pid()
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/cgroup")
	rep.Cgroup = string(b)
	b, _ = os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	rep.Procs = string(b)
	_ = p.Signal(syscall.SIGKILL)
	_, _ = p.Wait()
	_, err = os.Stat(dir)
	rep.Removed = os.IsNotExist(err)
	return 0
}

// TestCloneIntoCgroupV2Fallback: where clone3 is refused (ENOSYS), Start
// falls back to clone and joins the v2 group by writing cgroup.procs, so
// the child still runs in its group (seen from outside) and the group is
// removed after Wait. The refusal is checked, not assumed: a raw clone3 in
// the same process must fail with ENOSYS.
func TestCloneIntoCgroupV2Fallback(t *testing.T) {
	name, dir := v2Group(t, "nsbox-clone3-fallback-")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, self, "-test.run=^$")
	c.Env = append(os.Environ(), "NSCLONE_CLONE3_ENOSYS=1", "NSCLONE_CLONE3_DIR="+dir)
	c.Stderr = os.Stderr
	out, err := c.Output()
	var rep clone3Report
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		t.Fatalf("helper: %v; output %q: %v", err, out, jerr)
	}
	if rep.Err != "" || err != nil {
		t.Fatalf("helper: %v: %s", err, rep.Err)
	}
	t.Logf("helper saw: %+v", rep)
	if rep.Probe != "ENOSYS" {
		t.Fatalf("clone3 under the filter failed with %q, want ENOSYS: the fallback was not exercised", rep.Probe)
	}
	if rep.Placed {
		t.Errorf("placed = true with clone3 refused")
	}
	if !strings.Contains(rep.Cgroup, "0::/"+name+"\n") {
		t.Errorf("/proc/%d/cgroup = %q, want 0::/%s", rep.Pid, rep.Cgroup, name)
	}
	if !strings.Contains(" "+strings.Join(strings.Fields(rep.Procs), " ")+" ", " "+strconv.Itoa(rep.Pid)+" ") {
		t.Errorf("%s/cgroup.procs = %q, want pid %d", dir, rep.Procs, rep.Pid)
	}
	if !rep.Removed {
		t.Errorf("group %s left after Wait", dir)
	}
}

func uintp(v uint) *uint { return &v }
