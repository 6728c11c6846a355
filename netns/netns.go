package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/abi"
	"github.com/nsbox/nsbox/internal/names"
	"github.com/nsbox/nsbox/nsclone"
)

// RunDir is where iproute2 and nsbox keep named network namespaces.
const RunDir = abi.NetnsDir

// Error is the one error shape of this package: the operation, the object it
// was applied to (a namespace name, a path or a pid) and the cause.
type Error struct {
	Op     string // what was attempted, e.g. "add", "delete", "open"
	Object string // the namespace name, path or pid
	Err    error  // the cause, usually a unix.Errno
}

// Error renders "netns: OP OBJECT: cause".
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
// /run/netns (the rule names.Netns): it refuses "", ".", "..", names
// containing '/', NUL or any other control character (a newline would show
// as a second namespace in `ip netns list`), names that are not valid UTF-8
// and names over 255 bytes, before anything touches the file system.
func ValidateName(name string) error {
	if why := names.Netns.Check(name); why != "" {
		return &Error{Op: "validate", Object: strconv.Quote(name), Err: fmt.Errorf("%w: %s", ErrInvalidName, why)}
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

// errNoSuchNS is the cause when a named namespace does not exist. It is a
// value of a type of its own rather than a fmt.Errorf, which every nsbox
// process would run at start.
var errNoSuchNS error = noSuchNSError{}

// noSuchNSError reads "no such namespace: " and ENOENT's text and wraps
// ENOENT.
type noSuchNSError struct{}

func (noSuchNSError) Error() string { return "no such namespace: " + unix.ENOENT.Error() }
func (noSuchNSError) Unwrap() error { return unix.ENOENT }

// Add creates the named namespace, as `ip netns add NAME` does: /run/netns is
// made a shared mount point of its own (once, under a lock), the file
// /run/netns/NAME is created exclusively, and a new network namespace,
// created on a locked OS thread that is then thrown away, is bind-mounted
// onto it. On failure nothing is left behind. An existing name fails with
// an error wrapping unix.EEXIST and is left untouched.
func Add(ctx context.Context, name string) error {
	return add(ctx, name, newNSOnto)
}

func add(ctx context.Context, name string, create func(path string) error) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return &Error{Op: "add", Object: name, Err: err}
	}
	if err := prepareRunDir(); err != nil {
		return &Error{Op: "add", Object: name, Err: err}
	}
	path := filepath.Join(RunDir, name)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return &Error{Op: "add", Object: name, Err: err}
	}
	unix.Close(fd)
	if err := create(path); err != nil {
		_ = unix.Unlink(path)
		return &Error{Op: "add", Object: name, Err: err}
	}
	return nil
}

// Attach names the network namespace of process pid NAME, as
// `ip netns attach NAME PID` does: /run/netns/NAME becomes a bind mount of
// /proc/PID/ns/net, so the namespace outlives the process. An existing name
// fails with an error wrapping unix.EEXIST; on failure nothing is left.
func Attach(ctx context.Context, name string, pid int) error {
	if pid <= 0 {
		return &Error{Op: "attach", Object: name, Err: fmt.Errorf("invalid pid %d", pid)}
	}
	src := "/proc/" + strconv.Itoa(pid) + "/ns/net"
	// Check the source first, so that a missing process leaves no file.
	h, err := openPath("attach", name, src)
	if err != nil {
		return err
	}
	defer h.Close()
	return add(ctx, name, func(path string) error {
		// Bind the open handle, not the path: the process may be gone.
		from := fmt.Sprintf("/proc/self/fd/%d", h.Fd())
		if err := unix.Mount(from, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("mount --bind %s %s: %w", src, path, err)
		}
		return nil
	})
}

// prepareRunDir makes /run/netns exist and be a shared mount point of its
// own, as iproute2 does, so that a namespace bind-mounted there is visible
// in every mount namespace that shares it. A lock on the directory keeps two
// nsbox processes from binding it twice.
func prepareRunDir() error {
	if err := unix.Mkdir(RunDir, 0o755); err != nil && err != unix.EEXIST {
		return fmt.Errorf("mkdir %s: %w", RunDir, err)
	}
	// Fast path: already a mount point, make sure it is shared.
	err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if err != unix.EINVAL {
		return fmt.Errorf("mount --make-rshared %s: %w", RunDir, err)
	}
	dfd, err := unix.Open(RunDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", RunDir, err)
	}
	defer unix.Close(dfd)
	if err := unix.Flock(dfd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", RunDir, err)
	}
	defer unix.Flock(dfd, unix.LOCK_UN)
	// Someone else may have done it while we waited for the lock.
	if err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err == nil {
		return nil
	}
	if err := unix.Mount(RunDir, RunDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount --bind %s %s: %w", RunDir, RunDir, err)
	}
	if err := unix.Mount("", RunDir, "none", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount --make-rprivate %s: %w", RunDir, err)
	}
	if err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount --make-rshared %s: %w", RunDir, err)
	}
	return nil
}

// newNSOnto creates a network namespace on a goroutine locked to its OS
// thread and bind-mounts it onto path. The goroutine never unlocks the
// thread, so the Go runtime terminates the thread when it returns: no other
// goroutine ever runs in the new namespace.
func newNSOnto(path string) error {
	return onThrowawayThread(func() error { return createOnThisThread(path) })
}

// createOnThisThread moves the calling (locked, dedicated) thread into a
// new network namespace and bind-mounts that namespace onto path.
func createOnThisThread(path string) error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare net: %w", err)
	}
	src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mount --bind %s %s: %w", src, path, err)
	}
	return nil
}

// Creator adds many named namespaces on one dedicated OS thread: a
// goroutine locked to it for its whole life, that runs nothing else and is
// never unlocked, so the thread is thrown away when the Creator is closed.
// It saves Add's thread creation per namespace (a batch of adds). The
// namespace made last stays referenced by that thread until the next Add
// or Close, so a namespace deleted meanwhile is freed only then. A Creator
// is safe for use by several goroutines; Close it when done.
type Creator struct {
	reqs chan creatorReq
	quit chan struct{}
	once sync.Once
}

type creatorReq struct {
	path  string
	reply chan error
}

// NewCreator starts a Creator's thread.
func NewCreator() *Creator {
	c := &Creator{reqs: make(chan creatorReq), quit: make(chan struct{})}
	// Holding the caller's thread (often the main one) keeps the server
	// off it while it starts.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	started := make(chan struct{})
	go c.serve(started)
	<-started
	return c
}

func (c *Creator) serve(started chan struct{}) {
	runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
	if unix.Gettid() == unix.Getpid() {
		// The main thread would be parked, not thrown away: move to a
		// goroutine on another thread while we hold this one, then free it.
		inner := make(chan struct{})
		go c.serve(inner)
		<-inner
		runtime.UnlockOSThread()
		close(started)
		return
	}
	close(started)
	for {
		select {
		case r := <-c.reqs:
			r.reply <- createOnThisThread(r.path)
		case <-c.quit:
			return
		}
	}
}

// Add creates the named namespace as the package-level Add does, on the
// Creator's thread.
func (c *Creator) Add(ctx context.Context, name string) error {
	return add(ctx, name, func(path string) error {
		r := creatorReq{path: path, reply: make(chan error, 1)}
		select {
		case c.reqs <- r:
		case <-c.quit:
			return errors.New("creator closed")
		}
		return <-r.reply
	})
}

// Close ends the Creator; its thread is terminated.
func (c *Creator) Close() error {
	c.once.Do(func() { close(c.quit) })
	return nil
}

// onThrowawayThread runs fn on a goroutine locked to an OS thread that is
// never unlocked, so the Go runtime terminates the thread afterwards. The
// main thread is never used: the runtime does not terminate it but parks it
// for good, which would keep whatever fn did to it (a namespace) alive and
// visible as /proc/self.
func onThrowawayThread(fn func() error) error {
	// Holding the caller's thread (often the main one) while we wait keeps
	// the worker off it, so it usually needs no second hop below.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// We hold the main thread, so this goroutine gets another one.
			inner := make(chan error, 1)
			go func() {
				runtime.LockOSThread()
				inner <- fn()
				// No UnlockOSThread: this thread dies with the goroutine.
			}()
			err := <-inner
			runtime.UnlockOSThread()
			done <- err
			return
		}
		done <- fn()
		// No UnlockOSThread: this thread dies with the goroutine.
	}()
	return <-done
}

// Delete removes the named namespace, as `ip netns del NAME` does: the bind
// mount is detached and the file unlinked. The namespace itself goes away
// when no process, socket or handle uses it any more. A missing name fails
// with an error wrapping unix.ENOENT; a busy one (EBUSY) is left as it was.
func Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return &Error{Op: "delete", Object: name, Err: err}
	}
	path := filepath.Join(RunDir, name)
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if err == unix.ENOENT {
			return &Error{Op: "delete", Object: name, Err: errNoSuchNS}
		}
		return &Error{Op: "delete", Object: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &Error{Op: "delete", Object: name, Err: fmt.Errorf("%s is not a namespace file", path)}
	}
	// EINVAL: not mounted (a file left by a failed add); unlink it anyway.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		return &Error{Op: "delete", Object: name, Err: fmt.Errorf("umount: %w", err)}
	}
	if err := unix.Unlink(path); err != nil {
		if err == unix.EBUSY {
			return &Error{Op: "delete", Object: name, Err: fmt.Errorf("unlink: %w (still mounted in another mount namespace?)", err)}
		}
		return &Error{Op: "delete", Object: name, Err: fmt.Errorf("unlink: %w", err)}
	}
	return nil
}

// nsID identifies a namespace inode.
type nsID struct{ dev, ino uint64 }

func statNS(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{uint64(st.Dev), st.Ino}, nil
}

// Identify returns the name under /run/netns of the network namespace of
// process pid (0: the caller), or "" when it has none. When several names
// refer to the namespace, the first in sorted order is returned.
func Identify(pid int) (string, error) {
	obj := strconv.Itoa(pid)
	path := "/proc/" + obj + "/ns/net"
	if pid == 0 {
		obj, path = "self", "/proc/self/ns/net"
	} else if pid < 0 {
		return "", &Error{Op: "identify", Object: obj, Err: errors.New("pid must not be negative")}
	}
	want, err := statNS(path)
	if err != nil {
		return "", &Error{Op: "identify", Object: obj, Err: err}
	}
	names, err := List()
	if err != nil {
		return "", err
	}
	for _, n := range names {
		id, err := statNS(filepath.Join(RunDir, n))
		if err == nil && id == want {
			return n, nil
		}
	}
	return "", nil
}

// Pids returns the processes whose network namespace is the named one (or,
// when name contains a '/', the one of the namespace file at that path, such
// as /proc/PID/ns/net), sorted. Processes that vanish or cannot be inspected
// are skipped.
func Pids(name string) ([]int, error) {
	path := name
	if !strings.Contains(name, "/") {
		if err := ValidateName(name); err != nil {
			return nil, err
		}
		path = filepath.Join(RunDir, name)
	}
	want, err := statNS(path)
	if err != nil {
		if err == unix.ENOENT {
			err = errNoSuchNS
		}
		return nil, &Error{Op: "pids", Object: name, Err: err}
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, &Error{Op: "pids", Object: name, Err: err}
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		id, err := statNS("/proc/" + e.Name() + "/ns/net")
		if err == nil && id == want {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// Do runs fn on a goroutine locked to its own OS thread that has entered
// the namespace h, and waits for it. The thread goes back to its original
// namespace afterwards; if that fails, the thread is never unlocked, so it
// dies with the goroutine instead of serving other goroutines in the wrong
// namespace. Use it only for what needs a thread inside the namespace (for
// example a packet socket); netlink sockets take a descriptor instead.
func Do(h *Handle, fn func() error) error {
	if h == nil {
		return &Error{Op: "do", Err: errors.New("nil handle")}
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- &Error{Op: "do", Object: h.name, Err: fmt.Errorf("open current netns: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(h.Fd(), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- &Error{Op: "do", Object: h.name, Err: fmt.Errorf("setns: %w", err)}
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread exits with this goroutine.
			done <- &Error{Op: "do", Object: h.name, Err: fmt.Errorf("setns back: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// EtcDir holds per-namespace configuration files: each file of
// /etc/netns/NAME is bound over /etc/FILE by Exec, as by `ip netns exec`.
const EtcDir = abi.NetnsEtcDir

// Exec runs args[0] with args inside the named namespace and returns its
// exit code (128+N when it died of signal N), as `ip netns exec` does: the
// child (spawned by nsclone, which joins the namespace with setns in the
// child only) gets a new mount namespace whose tree is a slave of the
// caller's, a sysfs of the namespace mounted on /sys, and each file of
// /etc/netns/NAME bind-mounted over the file of the same name in /etc (an
// entry whose /etc counterpart does not exist is skipped). stdio are the
// child's stdin, stdout and stderr (nil: /dev/null). The error is non-nil
// only when the command could not be started; it is then an *Error wrapping
// the nsclone failure (errors.Is(err, unix.ENOENT) for a missing command).
func Exec(ctx context.Context, name string, args []string, stdio [3]*os.File) (int, error) {
	spec, err := ExecSpec(name, args, stdio)
	if err != nil {
		return -1, err
	}
	st, err := nsclone.Run(ctx, spec)
	if err != nil {
		return -1, &Error{Op: "exec", Object: name, Err: err}
	}
	return st.Code(), nil
}

// ExecSpec checks the namespace and returns the nsclone.Spec that Exec
// runs, for callers that start the process themselves (to forward signals
// to it, for example). A name that contains a '/' is the path of a
// namespace file (/proc/PID/ns/net, a bind mount), joined as nsenter
// --net=PATH does: /sys is mounted as for a name, but there is no
// /etc/netns directory to bind.
func ExecSpec(name string, args []string, stdio [3]*os.File) (*nsclone.Spec, error) {
	path := name
	if !strings.Contains(name, "/") {
		if err := ValidateName(name); err != nil {
			return nil, err
		}
		path = filepath.Join(RunDir, name)
	}
	if len(args) == 0 || args[0] == "" {
		return nil, &Error{Op: "exec", Object: name, Err: errors.New("no command")}
	}
	h, err := Open(name)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, &Error{Op: "exec", Object: name, Err: errNoSuchNS}
		}
		return nil, &Error{Op: "exec", Object: name, Err: errors.Unwrap(err)}
	}
	h.Close()
	return &nsclone.Spec{
		Path:        args[0],
		Args:        args,
		Namespaces:  nsclone.Mnt,
		Propagation: "slave",
		Join:        map[nsclone.Namespace]string{nsclone.Net: path},
		Mounts:      execMounts(name),
		Stdin:       stdio[0],
		Stdout:      stdio[1],
		Stderr:      stdio[2],
	}, nil
}

// execMounts lists the mounts of Exec: sysfs on /sys, then the binds of
// /etc/netns/NAME/* over /etc/*.
func execMounts(name string) []nsclone.Mount {
	ms := []nsclone.Mount{{Source: filepath.Base(name), Target: "/sys", FSType: "sysfs"}}
	if strings.Contains(name, "/") {
		return ms // a path: no /etc/netns/NAME
	}
	dir := filepath.Join(EtcDir, name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ms
	}
	for _, e := range ents {
		target := filepath.Join("/etc", e.Name())
		if _, err := os.Stat(target); err != nil {
			continue // nothing to bind over (ip warns and goes on)
		}
		ms = append(ms, nsclone.Mount{
			Source: filepath.Join(dir, e.Name()),
			Target: target,
			Flags:  unix.MS_BIND,
		})
	}
	return ms
}
