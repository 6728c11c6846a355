package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// RunDir is where iproute2 and nsbox keep named network namespaces.
const RunDir = "/run/netns"

// Error is the one error shape of this package: the operation, the object it
// was applied to (a namespace name, a path or a pid) and the cause.
type Error struct {
	Op     string // what was attempted, e.g. "add", "delete", "open"
	Object string // the namespace name, path or pid
	Err    error  // the cause, usually a unix.Errno
}

func (e *Error) Error() string {
	if e.Object == "" {
		return "netns: " + e.Op + ": " + e.Err.Error()
	}
	return "netns: " + e.Op + " " + e.Object + ": " + e.Err.Error()
}

// Unwrap returns the cause, so errors.Is(err, unix.ENOENT) works.
func (e *Error) Unwrap() error { return e.Err }

// ErrInvalidName is wrapped by the errors of ValidateName.
var ErrInvalidName = errors.New("invalid namespace name")

// ErrNotImplemented is returned by functions that are not implemented yet.
var ErrNotImplemented = errors.New("not implemented")

// Handle is an open network namespace: a file descriptor that keeps it alive
// while the handle is open. The zero value is not usable; get one from Open,
// OpenPid or Current and Close it when done.
type Handle struct {
	f    *os.File
	name string // what it was opened as, for errors
}

// Open returns a handle to the named namespace /run/netns/NAME, or, when
// name contains a '/', to the namespace file at that path.
func Open(name string) (*Handle, error) {
	path := name
	if !strings.Contains(name, "/") {
		if err := ValidateName(name); err != nil {
			return nil, err
		}
		path = filepath.Join(RunDir, name)
	}
	return openPath("open", name, path)
}

// OpenPid returns a handle to the network namespace of process pid.
func OpenPid(pid int) (*Handle, error) {
	if pid <= 0 {
		return nil, &Error{Op: "open pid", Object: strconv.Itoa(pid), Err: errors.New("pid must be positive")}
	}
	return openPath("open pid", strconv.Itoa(pid), "/proc/"+strconv.Itoa(pid)+"/ns/net")
}

// Current returns a handle to the network namespace of the calling thread.
func Current() (*Handle, error) {
	return openPath("open", "current", fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
}

func openPath(op, object, path string) (*Handle, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &Error{Op: op, Object: object, Err: err}
	}
	// A named namespace is a bind mount of an nsfs inode; a bare file left
	// behind by a failed add is not one.
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &Error{Op: op, Object: object, Err: err}
	}
	if st.Type != unix.NSFS_MAGIC {
		unix.Close(fd)
		return nil, &Error{Op: op, Object: object, Err: errors.New("not a network namespace")}
	}
	return &Handle{f: os.NewFile(uintptr(fd), path), name: object}, nil
}

// Fd returns the namespace's file descriptor; it is valid until Close.
func (h *Handle) Fd() int { return int(h.f.Fd()) }

// Name returns what the handle was opened as (a name, a path, a pid or
// "current"), for messages.
func (h *Handle) Name() string { return h.name }

// Close releases the handle.
func (h *Handle) Close() error {
	if h == nil || h.f == nil {
		return nil
	}
	return h.f.Close()
}

// ValidateName checks a namespace name the way it is used as a file name in
// /run/netns: it refuses "", ".", "..", names containing '/' or NUL and names
// over 255 bytes, before anything touches the file system.
func ValidateName(name string) error {
	bad := func(why string) error {
		return &Error{Op: "validate", Object: strconv.Quote(name), Err: fmt.Errorf("%w: %s", ErrInvalidName, why)}
	}
	switch {
	case name == "":
		return bad("empty")
	case name == "." || name == "..":
		return bad("not a file name")
	case strings.ContainsRune(name, '/'):
		return bad("contains '/'")
	case strings.ContainsRune(name, 0):
		return bad("contains NUL")
	case len(name) > 255:
		return bad("longer than 255 bytes")
	}
	return nil
}

// List returns the names of the namespaces in /run/netns, sorted. A missing
// /run/netns means no namespaces.
func List() ([]string, error) {
	ents, err := os.ReadDir(RunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{Op: "list", Object: RunDir, Err: err}
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// Add creates the named namespace, as `ip netns add NAME` does.
func Add(ctx context.Context, name string) error {
	return &Error{Op: "add", Object: name, Err: ErrNotImplemented}
}

// Delete removes the named namespace, as `ip netns del NAME` does.
func Delete(ctx context.Context, name string) error {
	return &Error{Op: "delete", Object: name, Err: ErrNotImplemented}
}

// Identify returns the name under /run/netns of the network namespace of
// process pid, or "" when it has none.
func Identify(pid int) (string, error) {
	return "", &Error{Op: "identify", Object: strconv.Itoa(pid), Err: ErrNotImplemented}
}

// Pids returns the processes whose network namespace is the named one.
func Pids(name string) ([]int, error) {
	return nil, &Error{Op: "pids", Object: name, Err: ErrNotImplemented}
}

// Do runs fn on a goroutine locked to a fresh OS thread that has entered the
// namespace h, and waits for it. If switching back fails, the thread is
// never unlocked, so it dies with the goroutine instead of serving others.
func Do(h *Handle, fn func() error) error {
	return &Error{Op: "do", Object: h.name, Err: ErrNotImplemented}
}

// Exec runs args[0] with args inside the named namespace, in a new mount
// namespace with /sys remounted and the files of /etc/netns/NAME bound over
// /etc (as `ip netns exec` does), and returns its exit code.
func Exec(ctx context.Context, name string, args []string, stdio [3]*os.File) (int, error) {
	return -1, &Error{Op: "exec", Object: name, Err: ErrNotImplemented}
}
