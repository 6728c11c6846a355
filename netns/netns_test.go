package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.MainWithLeakCheck(m)) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// addNS creates a namespace with Add and deletes it with ip at the end
// (ignoring a delete the test already did).
func addNS(t *testing.T) string {
	t.Helper()
	name := testutil.UniqueName("nsbn")
	if err := Add(ctx(t), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := os.Lstat(filepath.Join(RunDir, name)); err == nil {
			testutil.CmdErr("ip", "netns", "del", name)
		}
	})
	return name
}

func ipNetnsList(t *testing.T) string {
	return testutil.Cmd(t, "ip", "netns", "list")
}

func TestValidateName(t *testing.T) {
	for _, n := range []string{"a", "ns1", "with space", "ünï", strings.Repeat("x", 255)} {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", "a/b", "../etc", "/x", "a\x00b", strings.Repeat("x", 256),
		"a\nb", "a\rb", "a\x1bb", "a\x7fb", "a\xffb", "\xc3"} {
		if err := ValidateName(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", n, err)
		}
	}
}

func TestBadNamesTouchNothing(t *testing.T) {
	testutil.RequirePriv(t)
	before, _ := os.ReadDir("/run")
	for _, n := range []string{"..", ".", "../nsbox-evil", "a/b", ""} {
		if err := Add(ctx(t), n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Add(%q) = %v, want ErrInvalidName", n, err)
		}
		if err := Delete(ctx(t), n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidName", n, err)
		}
	}
	after, _ := os.ReadDir("/run")
	if len(before) != len(after) {
		t.Errorf("/run changed: %d -> %d entries", len(before), len(after))
	}
	if _, err := os.Lstat("/run/nsbox-evil"); err == nil {
		t.Errorf("/run/nsbox-evil was created")
	}
}

// TestAddIsSeenByIP: a namespace made by Add is listed and entered by ip,
// and is a real, separate network namespace.
func TestAddIsSeenByIP(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "ip")
	name := addNS(t)
	if !containsLine(ipNetnsList(t), name) {
		t.Fatalf("ip netns list does not show %s", name)
	}
	// ip netns exec enters it: only a loopback, down.
	out := testutil.Cmd(t, "ip", "netns", "exec", name, "ip", "-o", "link")
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "lo:") {
		t.Errorf("ip netns exec %s ip link: %q, want only lo", name, out)
	}
	// /run/netns is a mount point and the file a bind of an nsfs inode.
	mi := testutil.Cmd(t, "findmnt", "-n", "-o", "FSTYPE,PROPAGATION", filepath.Join(RunDir, name))
	if !strings.HasPrefix(strings.TrimSpace(mi), "nsfs") {
		t.Errorf("findmnt %s: %q, want nsfs", name, mi)
	}
	prop := testutil.Cmd(t, "findmnt", "-n", "-o", "PROPAGATION", RunDir)
	if !strings.Contains(prop, "shared") {
		t.Errorf("%s propagation %q, want shared", RunDir, prop)
	}
	self, _ := statNS("/proc/self/ns/net")
	id, err := statNS(filepath.Join(RunDir, name))
	if err != nil || id == self {
		t.Errorf("namespace %s is the caller's own (%v)", name, err)
	}
	// Our own thread never moved.
	if now, _ := statNS(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())); now != self {
		t.Errorf("the calling thread changed namespace")
	}

	if err := Add(ctx(t), name); !errors.Is(err, unix.EEXIST) {
		t.Errorf("Add existing = %v, want EEXIST", err)
	}
	if id2, err := statNS(filepath.Join(RunDir, name)); err != nil || id2 != id {
		t.Errorf("existing namespace replaced or removed by a second Add (%v)", err)
	}

	names, err := List()
	if err != nil || !contains(names, name) {
		t.Errorf("List() = %v, %v; want %s in it", names, err, name)
	}
	if err := Delete(ctx(t), name); err != nil {
		t.Fatal(err)
	}
	if containsLine(ipNetnsList(t), name) {
		t.Errorf("ip netns list still shows %s after Delete", name)
	}
	if err := Delete(ctx(t), name); !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "no such namespace") {
		t.Errorf("Delete missing = %v, want ENOENT with 'no such namespace'", err)
	}
}

// TestIPNamespacesWork: nsbox lists, opens, identifies and deletes a
// namespace that ip made.
func TestIPNamespacesWork(t *testing.T) {
	testutil.RequirePriv(t)
	name := testutil.UniqueName("nsbi")
	testutil.Cmd(t, "ip", "netns", "add", name)
	t.Cleanup(func() { testutil.CmdErr("ip", "netns", "del", name) })
	names, err := List()
	if err != nil || !contains(names, name) {
		t.Fatalf("List() = %v, %v", names, err)
	}
	h, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()

	// A process inside it, started by ip.
	ctx := ctx(t)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", name, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	var got string
	for i := 0; i < 100; i++ { // ip execs sleep after setns; wait for it
		if got, err = Identify(pid); err == nil && got == name {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got != name {
		t.Fatalf("Identify(%d) = %q, %v; want %s", pid, got, err, name)
	}
	ipSays := strings.TrimSpace(testutil.Cmd(t, "ip", "netns", "identify", fmt.Sprint(pid)))
	if ipSays != name {
		t.Errorf("ip netns identify says %q", ipSays)
	}
	pids, err := Pids(name)
	if err != nil || !containsInt(pids, pid) {
		t.Errorf("Pids(%s) = %v, %v; want %d in it", name, pids, err, pid)
	}
	ipPids := strings.Fields(testutil.Cmd(t, "ip", "netns", "pids", name))
	if len(ipPids) != len(pids) {
		t.Errorf("Pids = %v, ip netns pids = %v", pids, ipPids)
	}
	if me, err := Identify(0); err != nil || me == name {
		t.Errorf("Identify(0) = %q, %v", me, err)
	}

	cmd.Process.Kill()
	cmd.Wait()
	if err := Delete(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	if containsLine(ipNetnsList(t), name) {
		t.Errorf("ip still lists %s after Delete", name)
	}
}

func TestDo(t *testing.T) {
	testutil.RequirePriv(t)
	name := addNS(t)
	h, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	want, _ := statNS(filepath.Join(RunDir, name))
	self, _ := statNS("/proc/self/ns/net")
	for i := 0; i < 20; i++ {
		var inside nsID
		err := Do(h, func() error {
			var err error
			inside, err = statNS(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
			return err
		})
		if err != nil || inside != want {
			t.Fatalf("Do: inside %v (want %v), %v", inside, want, err)
		}
	}
	// No thread of the process is left in a foreign namespace.
	if foreign := foreignThreads(self); len(foreign) != 0 {
		t.Errorf("threads left in a foreign namespace: %v", foreign)
	}
	sentinel := errors.New("x")
	if err := Do(h, func() error { return sentinel }); err != sentinel {
		t.Errorf("Do did not return fn's error: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("nsbox-no-such-ns"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Open missing = %v", err)
	}
	if _, err := Open("/etc/hostname"); err == nil {
		t.Errorf("Open of a plain file succeeded")
	}
	h, err := OpenPid(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	h, err = Current()
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func containsInt(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func containsLine(out, name string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

// TestExec: the command runs inside the namespace (its interfaces are the
// namespace's), sees /etc/netns/NAME/hosts as /etc/hosts, gets a sysfs of
// the namespace, and its exit code comes back.
func TestExec(t *testing.T) {
	testutil.RequirePriv(t)
	name := addNS(t)
	etc := filepath.Join(EtcDir, name)
	if _, err := os.Stat(EtcDir); errors.Is(err, os.ErrNotExist) {
		t.Cleanup(func() { os.Remove(EtcDir) }) // only if we made it (and it is empty)
	}
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	hosts := "10.99.0.1 nsbox-exec-test\n"
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	// An entry with no /etc counterpart is skipped, not fatal.
	if err := os.WriteFile(filepath.Join(etc, "nsbox-no-such-file.conf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostHosts, _ := os.ReadFile("/etc/hosts")
	testutil.Cmd(t, "ip", "-n", name, "link", "add", "exv0", "type", "veth", "peer", "name", "exv1")

	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	code, err := Exec(ctx(t), name, []string{"/bin/sh", "-c", "cat /etc/hosts; ls /sys/class/net; exit 7"}, [3]*os.File{nil, out, out})
	if err != nil || code != 7 {
		t.Fatalf("Exec = %d, %v; want 7, nil", code, err)
	}
	b, _ := os.ReadFile(out.Name())
	got := string(b)
	if !strings.HasPrefix(got, hosts) {
		t.Errorf("/etc/hosts inside: %q, want %q", got, hosts)
	}
	if !strings.Contains(got, "exv0") || !strings.Contains(got, "exv1") || strings.Contains(got, "eth0") {
		t.Errorf("/sys/class/net inside does not show the namespace's links: %q", got)
	}
	// The host's /etc/hosts is untouched and nothing leaked onto the host.
	if now, _ := os.ReadFile("/etc/hosts"); string(now) != string(hostHosts) {
		t.Errorf("host /etc/hosts changed")
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), etc) {
		t.Errorf("a bind of %s is visible on the host", etc)
	}
	// ip netns exec agrees on what the namespace holds.
	ipOut := testutil.Cmd(t, "ip", "netns", "exec", name, "cat", "/etc/hosts")
	if ipOut != hosts {
		t.Errorf("ip netns exec cat /etc/hosts = %q", ipOut)
	}

	if _, err := Exec(ctx(t), name, []string{"/nonexistent/nsbox-cmd"}, [3]*os.File{}); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Exec of a missing command = %v, want ENOENT", err)
	}
	if _, err := Exec(ctx(t), "nsbox-no-such-ns", []string{"/bin/true"}, [3]*os.File{}); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Exec in a missing namespace = %v, want ENOENT", err)
	}
}

// TestCreator: namespaces made on the Creator's thread are distinct, real
// and seen by ip; once the Creator is closed no thread of the process is in
// a foreign namespace.
func TestCreator(t *testing.T) {
	testutil.RequirePriv(t)
	self, _ := statNS("/proc/self/ns/net")
	c := NewCreator()
	defer c.Close()
	seen := map[nsID]string{}
	for i := 0; i < 5; i++ {
		name := testutil.UniqueName("nsbcr")
		if err := c.Add(ctx(t), name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Delete(context.Background(), name) })
		id, err := statNS(filepath.Join(RunDir, name))
		if err != nil || id == self {
			t.Fatalf("%s: %v, %v", name, id, err)
		}
		if other, dup := seen[id]; dup {
			t.Fatalf("%s and %s are the same namespace", name, other)
		}
		seen[id] = name
		if out := testutil.Cmd(t, "ip", "netns", "exec", name, "ip", "-o", "link"); !strings.Contains(out, "lo:") {
			t.Errorf("ip netns exec %s: %q", name, out)
		}
		if err := c.Add(ctx(t), name); !errors.Is(err, unix.EEXIST) {
			t.Errorf("second Add of %s = %v", name, err)
		}
	}
	c.Close()
	if err := c.Add(ctx(t), testutil.UniqueName("nsbcr")); err == nil {
		t.Errorf("Add after Close succeeded")
	}
	if foreign := foreignThreads(self); len(foreign) != 0 {
		t.Errorf("threads left in a foreign namespace after Close: %v", foreign)
	}
}

// foreignThreads returns the threads of this process whose network
// namespace is not self, waiting (bounded, 1 s) for them to go: threads
// thrown away by Add exit asynchronously.
func foreignThreads(self nsID) []string {
	var foreign []string
	for try := 0; try < 100; try++ {
		foreign = foreign[:0]
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			id, err := statNS("/proc/self/task/" + task.Name() + "/ns/net")
			if err == nil && id != self {
				foreign = append(foreign, task.Name())
			}
		}
		if len(foreign) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return foreign
}
