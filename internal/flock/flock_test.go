package flock

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A second open file description of a locked file cannot take the lock
// until the first is closed: the lock Exclusive returns is real.
func TestExclusiveExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	a, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Exclusive(int(a.Fd())); err != nil {
		t.Fatal(err)
	}
	b, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := unix.Flock(int(b.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != unix.EWOULDBLOCK {
		t.Fatalf("second lock while held: %v, want EWOULDBLOCK", err)
	}
	a.Close()
	if err := Exclusive(int(b.Fd())); err != nil {
		t.Fatalf("lock after the holder closed: %v", err)
	}
}

func TestExclusiveBadFD(t *testing.T) {
	if err := Exclusive(-1); err != unix.EBADF {
		t.Fatalf("Exclusive(-1) = %v, want EBADF", err)
	}
}
