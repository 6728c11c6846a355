package cni_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// podman is a throwaway podman 4 (CNI backend) whose storage, run root,
// containers.conf and CNI folders are the test's, run under nsenter --net
// into the lab's runtime namespace so that the bridge lives there.
type podman struct {
	l     *lab
	args  []string
	conf  string
	image string
	// cgroupParent holds every group podman makes for the test's
	// containers and their conmon (by default podman makes /libpod_parent
	// and leaves it); the test removes it.
	cgroupParent string
}

func newPodman(t *testing.T, l *lab) *podman {
	t.Helper()
	testutil.RequireTool(t, "podman")
	testutil.RequireTool(t, "runc")
	bb := testutil.RequireTool(t, "busybox")
	dir := t.TempDir()
	p := &podman{l: l, conf: filepath.Join(dir, "containers.conf"), image: "localhost/nsbox-cni-" + strings.ToLower(testutil.UniqueName("")),
		cgroupParent: "/" + testutil.UniqueName("nsbpod")}
	conf := fmt.Sprintf(`[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
[network]
network_backend = "cni"
cni_plugin_dirs = [%q]
network_config_dir = %q
`, l.CNIPath, l.NetDir)
	if err := os.WriteFile(p.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.args = []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"),
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"}
	// The image: busybox-static and its links, imported offline.
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, bb, filepath.Join(rootfs, "bin", "busybox"))
	for _, x := range []string{"sh", "ip", "sleep", "cat"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", x)); err != nil {
			t.Fatal(err)
		}
	}
	tar := filepath.Join(dir, "rootfs.tar")
	testutil.Cmd(t, "tar", "-C", rootfs, "-cf", tar, ".")
	p.must(t, "import", tar, p.image)
	t.Cleanup(func() {
		// Containers first (their DEL runs through the plugin), then the
		// storage, whose vfs layers t.TempDir removes.
		_, _ = p.run("rm", "-a", "-f", "-t", "0")
		_, _ = p.run("rmi", "-a", "-f")
		removeCgroupTree(t, p.cgroupParent)
	})
	return p
}

func (p *podman) run(args ...string) (string, error) {
	c := exec.Command("nsenter", append([]string{"--net=/run/netns/" + p.l.RT, "--", "podman"}, append(append([]string{}, p.args...), args...)...)...)
	c.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	out, err := c.CombinedOutput()
	return string(out), err
}

func (p *podman) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.run(args...)
	if err != nil {
		t.Fatalf("podman %s: %v\n%s\nplugin log:\n%s", strings.Join(args, " "), err, out, p.l.logText())
	}
	return out
}

// runArgs are what this machine needs for podman run (see LAB.md).
func (p *podman) runArgs(name string) []string {
	return []string{"run", "-d", "--name", name, "--runtime", "runc", "--cgroup-parent", p.cgroupParent, "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", p.l.Net, p.image, "sleep", "60"}
}

// containerAddrs returns what `ip -4 addr` prints inside the container.
func (p *podman) containerAddrs(t *testing.T, name string) string {
	return p.must(t, "exec", name, "ip", "-4", "addr", "show", "eth0")
}

// TestPodmanRange: podman attaches a container through nsbox; the address
// inside is the one nsbox allocated; podman rm releases it.
func TestPodmanRange(t *testing.T) {
	l := newLab(t)
	l.writeConflist("1.0.0", l.nsboxConf(l.rangeIPAM(), map[string]any{"isDefaultGateway": true}))
	p := newPodman(t, l)
	name := testutil.UniqueName("ctr")
	p.must(t, p.runArgs(name)...)
	allocs := l.allocations()
	if len(allocs) != 1 {
		t.Fatalf("allocations %v, want one", allocs)
	}
	var addr string
	for a, owner := range allocs {
		addr = a
		if !strings.HasSuffix(owner, "\r\neth0") {
			t.Errorf("allocation %s held by %q", a, owner)
		}
	}
	if out := p.containerAddrs(t, name); !strings.Contains(out, "inet "+addr+"/24") {
		t.Errorf("ip -4 addr in the container:\n%s\nwant %s/24 (nsbox's allocation)", out, addr)
	}
	if out := p.must(t, "exec", name, "ip", "-4", "route"); !strings.Contains(out, "default via "+l.Subnet+".1") {
		t.Errorf("routes in the container:\n%s", out)
	}
	if len(ports(t, l.RT, l.Bridge)) != 1 {
		t.Errorf("bridge ports %v, want the container's veth", ports(t, l.RT, l.Bridge))
	}
	p.must(t, "rm", "-f", "-t", "0", name)
	if a := l.allocations(); len(a) != 0 {
		t.Errorf("allocations after podman rm: %v", a)
	}
	if pp := ports(t, l.RT, l.Bridge); len(pp) != 0 {
		t.Errorf("veths after podman rm: %v", pp)
	}
}

// TestPodmanDHCP: a podman container leases from dnsmasq through the
// keeper, keeps its address across a SIGKILL of the keeper, and podman rm
// releases the lease.
func TestPodmanDHCP(t *testing.T) {
	l := newLab(t)
	testutil.RequireTool(t, "dnsmasq")
	leaseFile, logFile := dhcpLab(t, l)
	l.writeConflist("1.0.0", l.nsboxConf(l.dhcpIPAM(), nil))
	p := newPodman(t, l)
	name := testutil.UniqueName("ctr")
	p.must(t, p.runArgs(name)...)
	held := testutil.DnsmasqLeases(leaseFile)
	if len(held) != 1 {
		t.Fatalf("dnsmasq leases %v, want one", held)
	}
	addr := mapValues(held)[0]
	if out := p.containerAddrs(t, name); !strings.Contains(out, "inet "+addr+"/24") {
		t.Fatalf("ip -4 addr in the container:\n%s\nwant dnsmasq's %s/24", out, addr)
	}
	pid := l.keeperPid()
	if pid <= 0 {
		t.Fatal("no keeper")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	off := len(readFrom(logFile, 0))
	// Any plugin call brings the keeper back; STATUS is the cheapest.
	if out, code := l.plugin("STATUS", []byte(fmt.Sprintf(`{"cniVersion":"1.1.0","name":%q,"type":"nsbox","bridge":%q,"ipam":{"type":"nsbox-dhcp","dataDir":%q,"socketDir":%q}}`, l.Net, l.Bridge, l.DataDir, l.SockDir)), "", "", ""); code != 0 {
		t.Fatalf("STATUS: %d %s", code, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(readFrom(logFile, off), "DHCPACK("+l.Bridge+") "+addr+" ") {
		if time.Now().After(deadline) {
			t.Fatalf("no renewal of %s after the keeper restart:\n%s", addr, readFrom(logFile, off))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if log := readFrom(logFile, off); strings.Contains(log, "DHCPDISCOVER") || !strings.Contains(log, "DHCPREQUEST("+l.Bridge+") "+addr+" ") {
		t.Errorf("after the restart want a REQUEST for %s and no DISCOVER:\n%s", addr, log)
	}
	if out := p.containerAddrs(t, name); !strings.Contains(out, "inet "+addr+"/24") {
		t.Errorf("the container lost %s across the keeper restart:\n%s", addr, out)
	}
	off = len(readFrom(logFile, 0))
	p.must(t, "rm", "-f", "-t", "0", name)
	waitReleased(t, logFile, off, leaseFile, []string{"DHCPRELEASE(" + l.Bridge + ") " + addr + " "}, l.logText)
}

// removeCgroupTree removes the group parent and the groups below it in
// every hierarchy, deepest first; it fails t if one is left (a process
// still in it).
func removeCgroupTree(t *testing.T, parent string) {
	t.Helper()
	tops, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
	for _, top := range tops {
		var dirs []string
		_ = filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		t.Logf("removing podman's groups %v", dirs)
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil {
				t.Errorf("remove podman's cgroup %s: %v", dirs[i], err)
			}
		}
	}
}
