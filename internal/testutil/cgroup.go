package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// cgroupRoots are the hierarchies a sandbox's group may land in: on a
// cgroup v2 machine the one unified mount at /sys/fs/cgroup, else the v1
// memory, pids, cpu and freezer hierarchies.
func cgroupRoots() (roots []string, v2 bool) {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.subtree_control"); err == nil {
		return []string{"/sys/fs/cgroup"}, true
	}
	for _, h := range []string{"memory", "pids", "cpu", "freezer"} {
		root := filepath.Join("/sys/fs/cgroup", h)
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err == nil {
			roots = append(roots, root)
		}
	}
	return roots, false
}

// CgroupParent makes a parent group with a unique name in every hierarchy
// a sandbox's group may use (on v2 with the memory, pids and cpu
// controllers enabled for its children) and returns its path inside the
// hierarchy ("/nsbtXXXX"). The test fails at the end if it cannot be
// removed, that is if a sandbox's group was left in it.
func CgroupParent(t testing.TB) string {
	t.Helper()
	roots, v2 := cgroupRoots()
	if len(roots) == 0 {
		t.Skip("no cgroup hierarchy mounted at /sys/fs/cgroup")
	}
	name := "/" + UniqueName("nsbt")
	var made []string
	t.Cleanup(func() {
		for _, d := range made {
			if err := unix.Rmdir(d); err != nil {
				t.Errorf("remove test parent group %s: %v (a sandbox's group left in it?)", d, err)
			}
		}
	})
	for _, root := range roots {
		if err := os.Mkdir(root+name, 0o755); err != nil {
			t.Fatal(err)
		}
		made = append(made, root+name)
		if v2 {
			for _, c := range []string{"+memory", "+pids", "+cpu"} {
				for _, d := range []string{root, root + name} {
					if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte(c), 0); err != nil {
						t.Fatalf("enable %s in %s: %v", c, d, err)
					}
				}
			}
		}
	}
	return name
}

// CgroupChildren lists the groups below parent in every hierarchy, as
// paths below /sys/fs/cgroup ("pids/nsbtXXXX/nsbox-1-ab").
func CgroupChildren(parent string) []string {
	roots, _ := cgroupRoots()
	var out []string
	for _, root := range roots {
		ents, _ := os.ReadDir(root + parent)
		for _, e := range ents {
			if e.IsDir() {
				rel := strings.TrimPrefix(strings.TrimPrefix(root, "/sys/fs/cgroup"), "/")
				out = append(out, filepath.Join(rel, parent, e.Name()))
			}
		}
	}
	return out
}
