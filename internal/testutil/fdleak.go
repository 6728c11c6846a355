package testutil

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// openFDs returns the fd numbers open in this process with their targets.
func openFDs() (map[string]string, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	fds := make(map[string]string, len(ents))
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the fd used by ReadDir itself is gone by now
		}
		fds[e.Name()] = target
	}
	return fds, nil
}

// MainWithLeakCheck runs the tests of m and fails the run if file descriptors
// that were not open before the tests are still open after them. Use it from
// a package's TestMain: os.Exit(testutil.MainWithLeakCheck(m)).
func MainWithLeakCheck(m *testing.M) int {
	before, err := openFDs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testutil: list fds: %v\n", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		return code
	}
	// Finalizers close some descriptors (os.File); give them a moment.
	var leaked []string
	for i := 0; i < 20; i++ {
		after, err := openFDs()
		if err != nil {
			fmt.Fprintf(os.Stderr, "testutil: list fds: %v\n", err)
			return 1
		}
		leaked = leaked[:0]
		for fd, target := range after {
			if runtimeFD(target) {
				continue
			}
			if _, ok := before[fd]; !ok {
				leaked = append(leaked, fd+" -> "+target)
			}
		}
		if len(leaked) == 0 {
			return 0
		}
		time.Sleep(50 * time.Millisecond)
	}
	sort.Strings(leaked)
	fmt.Fprintf(os.Stderr, "FAIL: leaked file descriptors after the tests:\n  %s\n", strings.Join(leaked, "\n  "))
	return 1
}

// runtimeFD reports descriptors that the Go runtime opens lazily and keeps for
// the life of the process (the netpoller's epoll and its wake-up eventfd).
func runtimeFD(target string) bool {
	return target == "anon_inode:[eventpoll]" || target == "anon_inode:[eventfd]"
}
