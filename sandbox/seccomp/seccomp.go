package seccomp

//go:generate go test -run TestDefaultUpToDate . -update

import (
	"fmt"
	"io"
	"os"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// nativeArch is the runtime-spec name of the architecture this binary runs on.
func nativeArch() (specs.Arch, error) {
	if specArch == "" {
		return "", fmt.Errorf("seccomp: architecture %s is not supported", runtime.GOARCH)
	}
	return specArch, nil
}

// knownArches are the runtime-spec architecture names; a profile may list
// any of them, but only the native one gets rules.
var knownArches = map[specs.Arch]bool{
	specs.ArchX86: true, specs.ArchX86_64: true, specs.ArchX32: true, specs.ArchARM: true,
	specs.ArchAARCH64: true, specs.ArchMIPS: true, specs.ArchMIPS64: true, specs.ArchMIPS64N32: true,
	specs.ArchMIPSEL: true, specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true, specs.ArchPPC: true,
	specs.ArchPPC64: true, specs.ArchPPC64LE: true, specs.ArchS390: true, specs.ArchS390X: true,
	specs.ArchPARISC: true, specs.ArchPARISC64: true, specs.ArchRISCV64: true,
}

// Load reads and parses the profile in the file at path (as Parse).
func Load(path string) (*specs.LinuxSeccomp, error) {
	return LoadFor(path, Env{})
}

// LoadFor reads and parses the profile in the file at path for env (as
// ParseFor).
func LoadFor(path string, env Env) (*specs.LinuxSeccomp, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	p, err := ParseFor(data, env)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return p, nil
}

// Dump writes prog as text, one instruction a line.
func Dump(w io.Writer, prog []unix.SockFilter) error {
	raw := make([]bpf.RawInstruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, _ := bpf.Disassemble(raw)
	for i, in := range insns {
		if _, err := fmt.Fprintf(w, "%d: %v\n", i, in); err != nil {
			return err
		}
	}
	return nil
}
