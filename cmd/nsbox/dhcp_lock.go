package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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
				pid := readPid(path)
				if pid != 0 && !alive(pid) {
					// pruneStale holds a dead client's file for a moment
					// before it removes it: try again.
					time.Sleep(time.Millisecond)
					continue
				}
				return nil, &errLocked{pid: pid}
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

// pruneStale removes the pid files in dir, other than keep, of clients or
// servers that are gone: one killed with SIGKILL cannot remove its own, and
// its name (a namespace's inode) may never come again. A file goes only
// while its lock is free and its pid is dead, and under that lock, so a
// holder or a process taking the file over right now keeps it.
func pruneStale(dir, keep string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range ents {
		path := filepath.Join(dir, ent.Name())
		if path == keep || !strings.HasSuffix(ent.Name(), ".pid") {
			continue
		}
		pid := readPid(path)
		if pid == 0 || alive(pid) {
			continue
		}
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			continue
		}
		var a, b unix.Stat_t
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil && readPid(path) == pid &&
			unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(path, &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev {
			_ = os.Remove(path)
		}
		f.Close()
	}
}

// alive tells whether process pid exists.
func alive(pid int) bool {
	return unix.Kill(pid, 0) != unix.ESRCH
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
