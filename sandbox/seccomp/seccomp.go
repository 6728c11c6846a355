package seccomp

//go:generate go test -run TestDefaultUpToDate . -update

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

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

// dockerProfile holds the fields of Docker's own profile format that the
// runtime-spec lacks: archMap instead of architectures, and conditional
// rules.
type dockerProfile struct {
	ArchMap []struct {
		Architecture     specs.Arch   `json:"architecture"`
		SubArchitectures []specs.Arch `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []struct {
		Includes json.RawMessage `json:"includes"`
		Excludes json.RawMessage `json:"excludes"`
	} `json:"syscalls"`
}

// Parse reads a profile in the runtime-spec / Docker JSON format. Unknown
// fields are errors (a misspelt key must not weaken a profile), except
// Docker's "comment" keys; Docker's archMap is turned into architectures.
// Docker's conditional rules (includes/excludes) are refused: nsbox cannot
// evaluate them the way dockerd does.
func Parse(data []byte) (*specs.LinuxSeccomp, error) {
	var d dockerProfile
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("seccomp: profile: %w", err)
	}
	for i, s := range d.Syscalls {
		if isSet(s.Includes) || isSet(s.Excludes) {
			return nil, fmt.Errorf("seccomp: profile: syscalls[%d]: Docker's includes/excludes conditions are not supported (write the rules out for your case)", i)
		}
	}
	clean, err := stripKeys(data, "comment", "archMap")
	if err != nil {
		return nil, fmt.Errorf("seccomp: profile: %w", err)
	}
	var p specs.LinuxSeccomp
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("seccomp: profile: %w", err)
	}
	if dec.More() {
		return nil, errors.New("seccomp: profile: trailing data after the JSON object")
	}
	for _, a := range d.ArchMap {
		p.Architectures = append(p.Architectures, a.Architecture)
		p.Architectures = append(p.Architectures, a.SubArchitectures...)
	}
	if p.DefaultAction == "" {
		return nil, errors.New("seccomp: profile: no defaultAction")
	}
	return &p, nil
}

func isSet(m json.RawMessage) bool {
	s := strings.TrimSpace(string(m))
	return s != "" && s != "null" && s != "{}"
}

// stripKeys removes the named keys from every object of the JSON document.
func stripKeys(data []byte, keys ...string) ([]byte, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range keys {
				delete(x, k)
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return json.Marshal(v)
}

// Load reads and parses the profile in the file at path.
func Load(path string) (*specs.LinuxSeccomp, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	p, err := Parse(data)
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
