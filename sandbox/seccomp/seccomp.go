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
	"sort"
	"strings"

	libseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// nativeArch is the runtime-spec name of the architecture this binary runs on.
func nativeArch() (specs.Arch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return specs.ArchX86_64, nil
	case "arm64":
		return specs.ArchAARCH64, nil
	}
	return "", fmt.Errorf("seccomp: architecture %s is not supported", runtime.GOARCH)
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

const errnoDefault = uint(unix.EPERM)

// action maps a runtime-spec action to a seccomp return value.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.Action, error) {
	e := errnoDefault
	if errnoRet != nil {
		e = *errnoRet
	}
	if e > 0xffff {
		return 0, fmt.Errorf("errnoRet %d is out of range", e)
	}
	switch a {
	case specs.ActAllow:
		return libseccomp.ActionAllow, nil
	case specs.ActErrno:
		return libseccomp.ActionErrno | libseccomp.Action(e), nil
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActionKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActionKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActionTrap, nil
	case specs.ActTrace:
		return libseccomp.ActionTrace | libseccomp.Action(e), nil
	case specs.ActLog:
		return libseccomp.ActionLog, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("action %s needs a listener, which nsbox does not provide", a)
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// condition maps one runtime-spec argument comparison.
func condition(a specs.LinuxSeccompArg) (libseccomp.Condition, error) {
	if a.Index > 5 {
		return libseccomp.Condition{}, fmt.Errorf("argument index %d is above 5", a.Index)
	}
	c := libseccomp.Condition{Argument: uint32(a.Index), Value: a.Value}
	switch a.Op {
	case specs.OpEqualTo:
		c.Operation = libseccomp.Equal
	case specs.OpNotEqual:
		c.Operation = libseccomp.NotEqual
	case specs.OpLessThan:
		c.Operation = libseccomp.LessThan
	case specs.OpLessEqual:
		c.Operation = libseccomp.LessOrEqual
	case specs.OpGreaterThan:
		c.Operation = libseccomp.GreaterThan
	case specs.OpGreaterEqual:
		c.Operation = libseccomp.GreaterOrEqual
	case specs.OpMaskedEqual:
		// (arg & value) == valueTwo: the compiler has "no bit of value
		// set" and, for one bit, "that bit set".
		switch {
		case a.ValueTwo == 0:
			c.Operation = libseccomp.BitsNotSet
		case a.ValueTwo == a.Value && a.Value&(a.Value-1) == 0:
			c.Operation = libseccomp.BitsSet
		default:
			return libseccomp.Condition{}, fmt.Errorf("SCMP_CMP_MASKED_EQ with value %#x and valueTwo %#x is not supported (only valueTwo 0, or one bit equal to value)", a.Value, a.ValueTwo)
		}
	default:
		return libseccomp.Condition{}, fmt.Errorf("unknown operator %q", a.Op)
	}
	return c, nil
}

// policy turns p into the compiler's policy for the running architecture.
func policy(p *specs.LinuxSeccomp) (*libseccomp.Policy, error) {
	if p == nil {
		return nil, errors.New("seccomp: nil profile")
	}
	native, err := nativeArch()
	if err != nil {
		return nil, err
	}
	if len(p.Flags) > 0 {
		return nil, fmt.Errorf("seccomp: profile flags %v are not supported", p.Flags)
	}
	if p.ListenerPath != "" {
		return nil, errors.New("seccomp: profile: listenerPath is not supported")
	}
	covered := len(p.Architectures) == 0
	for _, a := range p.Architectures {
		if !knownArches[a] {
			return nil, fmt.Errorf("seccomp: profile: unknown architecture %q", a)
		}
		if a == native {
			covered = true
		}
	}
	if !covered {
		return nil, fmt.Errorf("seccomp: profile: architectures %v do not include this machine's %s", p.Architectures, native)
	}
	def, err := action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp: profile: defaultAction: %w", err)
	}
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	var unknown []string
	pol := &libseccomp.Policy{DefaultAction: def}
	for i, sc := range p.Syscalls {
		act, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp: profile: syscalls[%d] %v: %w", i, sc.Names, err)
		}
		var conds []libseccomp.Condition
		for _, a := range sc.Args {
			c, err := condition(a)
			if err != nil {
				return nil, fmt.Errorf("seccomp: profile: syscalls[%d] %v: %w", i, sc.Names, err)
			}
			conds = append(conds, c)
		}
		g := libseccomp.SyscallGroup{Action: act}
		for _, n := range sc.Names {
			if _, ok := info.SyscallNames[n]; !ok {
				unknown = append(unknown, n)
				continue
			}
			if len(conds) == 0 {
				g.Names = append(g.Names, n)
			} else {
				g.NamesWithCondtions = append(g.NamesWithCondtions, libseccomp.NameWithConditions{Name: n, Conditions: conds})
			}
		}
		pol.Syscalls = append(pol.Syscalls, g)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("seccomp: profile: unknown syscalls for %s: %s", info.Name, strings.Join(unknown, ", "))
	}
	return pol, nil
}

// Compile compiles p for the running architecture. The result starts with
// the architecture check (foreign ABIs are killed, x32 gets ENOSYS); rules
// are tried in the profile's order and the first match decides. Compile of
// the profile Default returned is a lookup of its pre-built program.
func Compile(p *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if p == defaultProfile {
		if prog := prebuiltDefault(); prog != nil {
			return prog, nil
		}
	}
	return compile(p)
}

func compile(p *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	pol, err := policy(p)
	if err != nil {
		return nil, err
	}
	def := pol.DefaultAction
	// The compiler accepts only bare actions as the default; the errno is
	// patched into the final return below.
	if def&0xffff0000 == libseccomp.ActionErrno || def&0xffff0000 == libseccomp.ActionTrace {
		pol.DefaultAction = def & 0xffff0000
	}
	if len(pol.Syscalls) == 0 {
		// The compiler wants at least one group; an empty one emits nothing.
		pol.Syscalls = []libseccomp.SyscallGroup{{Action: def}}
	}
	insns, err := pol.Assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: compile: %w", err)
	}
	last, ok := insns[len(insns)-1].(bpf.RetConstant)
	if !ok {
		return nil, errors.New("seccomp: compile: program does not end in a return")
	}
	last.Val = uint32(def)
	insns[len(insns)-1] = last
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	// The compiler sends a foreign architecture to the default action;
	// nsbox kills it instead (libseccomp's bad-arch action), so a
	// deny-list profile cannot be bypassed through another ABI.
	guard := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: uint32(libseccomp.ActionKillProcess)},
	}
	raw, err := bpf.Assemble(append(guard, insns...))
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble: %w", err)
	}
	if len(raw) > 4096 {
		return nil, fmt.Errorf("seccomp: program of %d instructions is above the kernel's 4096", len(raw))
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
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
