package bridge

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Error is the one error shape of this package, e.g.
// "bridge: add port v1 to br0: v1 is already a port of bridge br1".
// Err is the cause; errors.Is works on it and on the sentinels below, and
// through them on the kernel's errno (ErrNoDevice wraps unix.ENODEV).
type Error struct {
	Op     string // the operation: "add", "delete", "add port", "show", ...
	Object string // what it applied to: "br0", "v1 to br0"
	Err    error  // the cause
}

func (e *Error) Error() string {
	s := "bridge: " + e.Op
	if e.Object != "" {
		s += " " + e.Object
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Sentinel causes. The library checks these conditions itself before it asks
// the kernel, so that a refused request changes nothing.
var (
	// ErrNoDevice: the named bridge or device does not exist in the namespace.
	ErrNoDevice = &sentinel{"no such device", unix.ENODEV}
	// ErrExists: Add found a device of that name already.
	ErrExists = &sentinel{"already exists", unix.EEXIST}
	// ErrNotBridge: the named device exists but is not a bridge.
	ErrNotBridge = &sentinel{"not a bridge", unix.EINVAL}
	// ErrInUse: the device is already a port of a bridge, or enslaved to
	// another master (a bond, a VRF...).
	ErrInUse = &sentinel{"already in use", unix.EBUSY}
	// ErrNotPort: the device is not a port of the bridge.
	ErrNotPort = &sentinel{"not a port of the bridge", unix.EINVAL}
	// ErrLoop: the device is the bridge itself, or another bridge; the kernel
	// does not nest bridges.
	ErrLoop = &sentinel{"a bridge cannot be its own port or a port of another bridge", unix.ELOOP}
	// ErrNotEthernet: the device cannot be a bridge port: a loopback or a
	// device that does not carry Ethernet frames (tun, ipip...).
	ErrNotEthernet = &sentinel{"not an Ethernet device", unix.EINVAL}
	// ErrBusy: the bridge is up or still has ports and Delete was not forced.
	ErrBusy = &sentinel{"bridge is busy", unix.EBUSY}
)

// sentinel is a named cause that also matches its errno with errors.Is.
type sentinel struct {
	msg   string
	errno unix.Errno
}

func (s *sentinel) Error() string { return s.msg }

// Is lets errors.Is(err, unix.ENODEV) match ErrNoDevice.
func (s *sentinel) Is(target error) bool { return target == s.errno }

// detail is a cause with a precise message that still matches its sentinel
// with errors.Is, e.g. "v1 is already a port of bridge br1".
type detail struct {
	msg  string
	kind *sentinel
}

func (d *detail) Error() string { return d.msg }
func (d *detail) Unwrap() error { return d.kind }

func detailf(kind *sentinel, msg string) error { return &detail{msg: msg, kind: kind} }

// isErrno reports whether err is (or wraps) the errno e.
func isErrno(err error, e unix.Errno) bool { return errors.Is(err, e) }
