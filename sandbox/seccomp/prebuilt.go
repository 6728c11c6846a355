package seccomp

import "golang.org/x/sys/unix"

// prebuiltDefault returns the default profile's program built ahead of time
// for this architecture (zdefault_GOARCH.go), or nil where none was built.
func prebuiltDefault() []unix.SockFilter { return zdefault }
