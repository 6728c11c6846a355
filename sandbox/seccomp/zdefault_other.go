//go:build !amd64

package seccomp

import "golang.org/x/sys/unix"

// zdefault is nil here: no program was generated for this architecture, so
// Compile builds the default profile each time.
var zdefault []unix.SockFilter
