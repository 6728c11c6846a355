package pool

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/flock"
	"github.com/nsbox/nsbox/internal/poolwire"
)

// A pool with a socket owns the folder poolwire.ResolvDir(NAME) (its
// namespaces' resolv.conf files and lease records) and holds an exclusive
// flock on it from its creation until its teardown has removed it. A
// folder that nobody holds locked, and whose socket nobody listens on,
// belongs to a pool that died (SIGKILL, or a crash) or to none, and any
// pool that starts removes it with the socket (pruneDirs),
// unless it keeps lease records, which only the next pool of that name can
// release (releaseLeftovers). Creating a folder and locking it, and
// pruning, happen under dirsLock so that a pruner never sees a live pool's
// folder between its creation and its lock.

// dirsLockFile serialises the creation and the pruning of pool folders.
const dirsLockFile = ".dirs.lock"

// lockDirs takes the exclusive lock of SocketDir's folders (blocking, at
// most a few filesystem calls of another pool long) and returns its unlock.
func lockDirs() (func(), error) {
	f, err := os.OpenFile(filepath.Join(SocketDir, dirsLockFile), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", SocketDir, err)
	}
	if err := flock.Exclusive(int(f.Fd())); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", SocketDir, err)
	}
	return func() { f.Close() }, nil
}

// makeDir replaces the folder dir by a new, empty one (with the lease
// folder for a DHCP pool) and returns it open and locked. dirsLock is held.
func makeDir(dir, leases string) (*os.File, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != nil {
			f.Close()
		}
	}
	if err == nil && leases != "" {
		if err = os.Mkdir(leases, 0o700); err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return f, nil
}

// pruneDirs removes the folders of dead pools (see above) other than
// keep's, with their sockets, and returns their names. dirsLock is held.
func pruneDirs(keep string) []string {
	ents, err := os.ReadDir(SocketDir)
	if err != nil {
		return nil
	}
	var pruned []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".d")
		if !ok || !e.IsDir() || name == keep || ValidateName(name) != nil {
			continue
		}
		// Both: an unlocked folder with a live socket is a running
		// pool of an nsbox from before the lock.
		dir, sock := poolwire.ResolvDir(name), SocketPath(name)
		if !deadDir(dir) || !socketDead(sock) {
			continue
		}
		if leases, _ := filepath.Glob(filepath.Join(leaseDir(name), "*.lease")); len(leases) > 0 {
			continue // for the next pool of this name to release
		}
		if err := os.RemoveAll(dir); err != nil {
			continue
		}
		os.Remove(sock)
		pruned = append(pruned, name)
	}
	return pruned
}

// deadDir reports whether nobody holds dir locked.
func deadDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// socketDead reports whether nothing listens on the socket path (refused,
// or no socket); a timeout under load is no proof.
func socketDead(path string) bool {
	c, err := net.DialTimeout("unixpacket", path, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOENT)
}
