package flock_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nsbox/nsbox/internal/flock"
)

// A folder's lock, held around a check-and-change of its files.
func ExampleExclusive() {
	dir, err := os.MkdirTemp("", "flock-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	f, err := os.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close() // releases the lock
	if err := flock.Exclusive(int(f.Fd())); err != nil {
		fmt.Println("lock:", err)
		return
	}
	fmt.Println("locked", filepath.Base(dir) != "")
	// Output: locked true
}
