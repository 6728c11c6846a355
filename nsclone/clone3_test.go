package nsclone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/sandbox/cgroup"
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

// TestCloneIntoCgroupV2 places a child in a v2 group with
// clone3(CLONE_INTO_CGROUP): cgroup.procs, read from outside, lists it, its
// /proc/PID/cgroup names the group, and the watcher removes the group after
// Wait. On this test machine the v2 hierarchy has no controllers, so the
// group limits nothing; the placement is what is checked.
func TestCloneIntoCgroupV2(t *testing.T) {
	testutil.RequirePriv(t)
	mnt := cgroup2Mount(t)
	if mnt == "" {
		t.Skip("no cgroup2 hierarchy mounted")
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	name := "nsbox-clone3-test-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(rnd[:])
	dir := filepath.Join(mnt, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a v2 group: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
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
