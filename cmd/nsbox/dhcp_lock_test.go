package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// pruneStale removes the pid files of dead processes whose lock is free,
// and nothing else.
func TestPruneStale(t *testing.T) {
	dir := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := strconv.Itoa(gone.Process.Pid) + "\n"
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := write("net-1-eth0.pid", dead)
	keep := write("net-2-eth0.pid", dead)
	other := write("notes.txt", dead)
	held := write("net-3-eth0.pid", dead) // a dead pid, but its lock is held
	f, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	live, err := lockPid(filepath.Join(dir, "net-4-eth0.pid"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.release()

	pruneStale(dir, keep)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("%s (pid %s gone, lock free) is still there: %v", stale, dead, err)
	}
	for _, p := range []string{keep, other, held, live.path} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
