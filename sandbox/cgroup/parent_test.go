package cgroup

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// The default parent is made for the first group and goes with the last
// one: two groups share it, removing the first keeps it (the second is
// still in it), removing the second takes it along, and a later group
// makes it again. Each directory is checked on the file system.
func TestDefaultParentGoesWithLastGroup(t *testing.T) {
	testutil.RequirePriv(t)
	cfg := Config{Limits: Limits{Pids: 64, Memory: 64 << 20}, defaultParent: testutil.UniqueName("nsbcg")}
	exists := func(dirs []string) bool {
		for _, d := range dirs {
			if _, err := os.Stat(d); err != nil {
				return false
			}
		}
		return len(dirs) > 0
	}
	a, err := Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Remove() })
	b, err := Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Remove() })
	if len(a.Parents) == 0 || !exists(a.Parents) {
		t.Fatalf("default parents %v: not made", a.Parents)
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if !exists(b.Parents) || !exists(b.Dirs) {
		t.Fatalf("removing one group took the parent %v or the other group %v along", b.Parents, b.Dirs)
	}
	if err := b.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(append([]string{}, b.Dirs...), b.Parents...) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is left after the last group went: %v", d, err)
		}
	}
	c, err := Create(cfg)
	if err != nil {
		t.Fatalf("a group after the parent went: %v", err)
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range c.Parents {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is left: %v", d, err)
		}
	}
}

// A parent the caller names is never listed for removal, and stays.
func TestNamedParentStays(t *testing.T) {
	testutil.RequirePriv(t)
	// One controller, so one hierarchy: the holder's parent is a path there.
	holder, err := Create(Config{Limits: Limits{Pids: 64}, defaultParent: testutil.UniqueName("nsbcg")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Remove() })
	g, err := Create(Config{Limits: Limits{Pids: 64}, Parent: filepath.Dir(holder.Path)})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Parents) != 0 {
		t.Errorf("a named parent is listed for removal: %v", g.Parents)
	}
	if err := holder.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	// The holder's default parent could not go while g was in it, and g's
	// removal must not take it: it is still there, and this test removes it.
	for _, d := range holder.Parents {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("the named parent %s went with a group: %v", d, err)
		}
		_ = os.Remove(d)
	}
}
