package seccomp

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The program is assembled here, from go-seccomp-bpf's syscall and
// architecture tables (copied into zsyscalls_GOARCH.go), rather than by that
// module's Policy compiler: v1.6.0 leaves an argument in the accumulator
// after a rule with conditions and compares the next rule's syscall number
// against it, so every rule after the first conditional one never matches.
// Each rule here starts by loading the syscall number again.

// seccomp_data offsets.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

const errnoDefault = uint(unix.EPERM)

// action maps a runtime-spec action to a seccomp return value.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	e := errnoDefault
	if errnoRet != nil {
		e = *errnoRet
	}
	if e > 0xffff {
		return 0, fmt.Errorf("errnoRet %d is out of range", e)
	}
	switch a {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | uint32(e), nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | uint32(e), nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("action %s needs a listener, which nsbox does not provide", a)
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// rule is one syscall with its conditions (all must hold) and its return.
// A rule with anyBits set instead holds when argument anyArg has any of
// those bits: the union of consecutive one-bit MaskedEqual rules (clone with
// any CLONE_NEW* flag), which one BPF_JSET tests.
type rule struct {
	nr      uint32
	conds   []specs.LinuxSeccompArg
	ret     uint32
	anyArg  uint
	anyBits uint64
}

// unconditional reports whether r always decides.
func (r rule) unconditional() bool { return len(r.conds) == 0 && r.anyBits == 0 }

// neverMatches reports whether a condition can never hold: a MaskedEqual
// whose value has bits outside its mask. Such a rule is left out.
func neverMatches(conds []specs.LinuxSeccompArg) bool {
	for _, c := range conds {
		if c.Op == specs.OpMaskedEqual && c.ValueTwo&^c.Value != 0 {
			return true
		}
	}
	return false
}

var knownOps = map[specs.LinuxSeccompOperator]bool{
	specs.OpNotEqual: true, specs.OpLessThan: true, specs.OpLessEqual: true, specs.OpEqualTo: true,
	specs.OpGreaterEqual: true, specs.OpGreaterThan: true, specs.OpMaskedEqual: true,
}

// lower checks p and turns it into the default return and the rules, in
// the profile's order, for the running architecture.
func lower(p *specs.LinuxSeccomp) (uint32, []rule, error) {
	if p == nil {
		return 0, nil, errors.New("seccomp: nil profile")
	}
	native, err := nativeArch()
	if err != nil {
		return 0, nil, err
	}
	if len(p.Flags) > 0 {
		return 0, nil, fmt.Errorf("seccomp: profile flags %v are not supported", p.Flags)
	}
	if p.ListenerPath != "" {
		return 0, nil, errors.New("seccomp: profile: listenerPath is not supported")
	}
	covered := len(p.Architectures) == 0
	for _, a := range p.Architectures {
		if !knownArches[a] {
			return 0, nil, fmt.Errorf("seccomp: profile: unknown architecture %q", a)
		}
		if a == native {
			covered = true
		}
	}
	if !covered {
		return 0, nil, fmt.Errorf("seccomp: profile: architectures %v do not include this machine's %s", p.Architectures, native)
	}
	def, err := action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return 0, nil, fmt.Errorf("seccomp: profile: defaultAction: %w", err)
	}
	var unknown []string
	var rules []rule
	for i, sc := range p.Syscalls {
		ret, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			return 0, nil, fmt.Errorf("seccomp: profile: syscalls[%d] %v: %w", i, sc.Names, err)
		}
		for _, a := range sc.Args {
			if a.Index > 5 {
				return 0, nil, fmt.Errorf("seccomp: profile: syscalls[%d] %v: argument index %d is above 5", i, sc.Names, a.Index)
			}
			if !knownOps[a.Op] {
				return 0, nil, fmt.Errorf("seccomp: profile: syscalls[%d] %v: unknown operator %q", i, sc.Names, a.Op)
			}
		}
		for _, n := range sc.Names {
			nr, ok := lookupSyscall(n)
			if !ok {
				// A name of another architecture (a profile for
				// several, as Docker's) has no rule here: calls
				// through that ABI are killed by the arch check.
				if !otherArch(n) {
					unknown = append(unknown, n)
				}
				continue
			}
			if neverMatches(sc.Args) {
				continue
			}
			rules = append(rules, rule{nr: nr, conds: sc.Args, ret: ret})
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return 0, nil, fmt.Errorf("seccomp: profile: unknown syscalls for %s: %s", archName, strings.Join(unknown, ", "))
	}
	return def, rules, nil
}

func compile(p *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	def, rules, err := lower(p)
	if err != nil {
		return nil, err
	}
	return assemble(def, rules)
}

// Compile compiles p for the running architecture. The program starts with
// the architecture check (another audit arch is killed, x32 gets ENOSYS);
// rules are tried in the profile's order and the first that matches
// decides, else the default action. Compile of the profile Default returned
// is a lookup of its program built ahead of time.
func Compile(p *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if p == defaultProfile() {
		if prog := prebuiltDefault(); prog != nil {
			return prog, nil
		}
	}
	return compile(p)
}
