package seccomp

import "golang.org/x/sys/unix"

// prebuiltDefault returns the default profile's program built ahead of time
// for this architecture (zdefault_GOARCH.go), or nil where none was built.
func prebuiltDefault() []unix.SockFilter { return zdefault }

// DefaultProgram returns the default profile's program built ahead of time
// for goarch (a GOARCH name), or nil where none was built (every
// architecture but amd64 today). cmd/nsbox renders it into the C fast path's
// generated header, whatever the architecture go generate runs on.
func DefaultProgram(goarch string) []unix.SockFilter {
	if goarch == "amd64" {
		return zdefaultAMD64
	}
	return nil
}
