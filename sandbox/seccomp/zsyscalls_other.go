//go:build !amd64 && !arm64

package seccomp

import specs "github.com/opencontainers/runtime-spec/specs-go"

// No table for this architecture: nativeArch refuses it.
const (
	auditArch = 0
	x32Mask   = 0
	archName  = "unsupported"
	specArch  = specs.Arch("")
)

var syscallTable = [...]sysent{}
