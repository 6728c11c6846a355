package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
)

// dhcpRunDir holds the pid files of the running DHCP clients and servers.
const dhcpRunDir = "/run/nsbox/dhcp"

// pidLock is a file held with flock(LOCK_EX) that names its holder's pid.
// The lock ends with the process (the kernel drops it on the last close),
// so a killed holder never leaves a stale lock: only a stale file, which
// the next holder takes over.
type pidLock struct {
	f    *os.File
	path string
}

// errLocked is returned by lockPid when another process holds the lock.
type errLocked struct{ pid int }

func (e *errLocked) Error() string { return fmt.Sprintf("held by pid %d", e.pid) }

// lockPid takes the lock of path (created with its directory if missing)
// and writes the caller's pid into it. When another process holds it, the
// error is an *errLocked with that process's pid.
func lockPid(path string) (*pidLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for try := 0; try < 10; try++ { // bounded: a holder unlinking the file between open and flock
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, &errLocked{pid: readPid(path)}
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		// The lock counts only if path still names the file locked (the
		// last holder removes it on release).
		var a, b unix.Stat_t
		if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(path, &b) != nil || a.Ino != b.Ino || a.Dev != b.Dev {
			f.Close()
			continue
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return &pidLock{f: f, path: path}, nil
	}
	return nil, fmt.Errorf("lock %s: the file kept changing", path)
}

// readPid returns the pid written in a pid file, or 0.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// holder returns the pid of the process holding the lock of path, or 0
// when nobody holds it.
func lockHolder(path string) int {
	l, err := lockPid(path)
	if err == nil {
		l.release()
		return 0
	}
	var el *errLocked
	if errors.As(err, &el) {
		return el.pid
	}
	return 0
}

// release removes the file and drops the lock; safe on nil.
func (l *pidLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = os.Remove(l.path)
	_ = l.f.Close()
	l.f = nil
}

// nsKey names the network namespace of h (nil: the caller's) by its inode,
// so that a namespace reached by two names or paths gets one lock.
func nsKey(h *netns.Handle) (string, error) {
	var st unix.Stat_t
	var err error
	if h == nil {
		err = unix.Stat("/proc/thread-self/ns/net", &st)
	} else {
		err = unix.Fstat(h.Fd(), &st)
	}
	if err != nil {
		return "", fmt.Errorf("identify network namespace: %w", err)
	}
	return fmt.Sprintf("net-%d", st.Ino), nil
}
