// Package flock takes a whole-file lock with flock(2) and waits for it,
// as the state folders of nsbox (named sandboxes, pools, CNI's IPAM store)
// serialise their check-and-change steps. A blocking flock can be
// interrupted by a signal (Go preempts its threads with SIGURG), so the
// wait goes on after EINTR instead of failing.
package flock

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Exclusive blocks until it holds fd's exclusive lock. The lock goes when
// every fd of that open file is closed (or with unix.LOCK_UN).
func Exclusive(fd int) error {
	for {
		err := unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
