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
type rule struct {
	nr    uint32
	conds []specs.LinuxSeccompArg
	ret   uint32
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
			rules = append(rules, rule{nr: nr, conds: sc.Args, ret: ret})
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return 0, nil, fmt.Errorf("seccomp: profile: unknown syscalls for %s: %s", archName, strings.Join(unknown, ", "))
	}
	return def, rules, nil
}

// asm is a classic BPF program with symbolic jump targets.
type asm struct {
	prog   []unix.SockFilter
	fix    []fixup
	labels []int // label -> instruction index
}

type fixup struct{ at, jt, jf int } // labels, -1: fall through

func (a *asm) label() int { a.labels = append(a.labels, -1); return len(a.labels) - 1 }
func (a *asm) set(l int)  { a.labels[l] = len(a.prog) }

func (a *asm) stmt(code uint16, k uint32) {
	a.prog = append(a.prog, unix.SockFilter{Code: code, K: k})
}

// jmp adds a conditional jump to labels jt and jf (-1: the next instruction).
func (a *asm) jmp(op uint16, k uint32, jt, jf int) {
	a.fix = append(a.fix, fixup{at: len(a.prog), jt: jt, jf: jf})
	a.stmt(unix.BPF_JMP|op|unix.BPF_K, k)
}

func (a *asm) ld(off uint32) { a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }
func (a *asm) ret(k uint32)  { a.stmt(unix.BPF_RET|unix.BPF_K, k) }

func (a *asm) finish() ([]unix.SockFilter, error) {
	for _, f := range a.fix {
		for _, x := range []struct {
			label int
			dst   *uint8
		}{{f.jt, &a.prog[f.at].Jt}, {f.jf, &a.prog[f.at].Jf}} {
			if x.label < 0 {
				continue
			}
			off := a.labels[x.label] - f.at - 1
			if off < 0 || off > 255 {
				return nil, fmt.Errorf("seccomp: jump of %d instructions in one rule", off)
			}
			*x.dst = uint8(off)
		}
	}
	return a.prog, nil
}

// argHalves returns the offsets of the low and high words of argument i.
func argHalves(i uint) (lo, hi uint32) {
	lo = offArgs + 8*uint32(i)
	if !littleEndian {
		return lo + 4, lo
	}
	return lo, lo + 4
}

// cond adds the test of one argument condition: it falls through when the
// condition holds and jumps to fail when not.
func (a *asm) cond(c specs.LinuxSeccompArg, fail int) {
	lo, hi := argHalves(c.Index)
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	pass := a.label()
	switch c.Op {
	case specs.OpEqualTo:
		a.ld(hi)
		a.jmp(unix.BPF_JEQ, vhi, -1, fail)
		a.ld(lo)
		a.jmp(unix.BPF_JEQ, vlo, -1, fail)
	case specs.OpNotEqual:
		a.ld(hi)
		a.jmp(unix.BPF_JEQ, vhi, -1, pass)
		a.ld(lo)
		a.jmp(unix.BPF_JEQ, vlo, fail, -1)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		low := a.label()
		a.ld(hi)
		a.jmp(unix.BPF_JGT, vhi, pass, -1)
		a.jmp(unix.BPF_JEQ, vhi, low, fail)
		a.set(low)
		a.ld(lo)
		op := uint16(unix.BPF_JGT)
		if c.Op == specs.OpGreaterEqual {
			op = unix.BPF_JGE
		}
		a.jmp(op, vlo, -1, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		low := a.label()
		a.ld(hi)
		a.jmp(unix.BPF_JGT, vhi, fail, -1)
		a.jmp(unix.BPF_JEQ, vhi, low, pass)
		a.set(low)
		a.ld(lo)
		op := uint16(unix.BPF_JGE) // lo < v: not lo >= v
		if c.Op == specs.OpLessEqual {
			op = unix.BPF_JGT
		}
		a.jmp(op, vlo, fail, -1)
	case specs.OpMaskedEqual: // (arg & value) == valueTwo
		a.ld(hi)
		a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, vhi)
		a.jmp(unix.BPF_JEQ, uint32(c.ValueTwo>>32), -1, fail)
		a.ld(lo)
		a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, vlo)
		a.jmp(unix.BPF_JEQ, uint32(c.ValueTwo), -1, fail)
	}
	a.set(pass)
}

// assemble builds the program: the architecture check (another audit arch
// is killed, as libseccomp's default bad-arch action does; on x86_64 the x32
// ABI gets ENOSYS), then a binary search on the syscall number down to the
// rules of that number, tried in the profile's order (rules of different
// numbers never both match, so the profile's first-match order holds), else
// the default. The search keeps the program short on every path, which
// matters at load time too: the kernel runs the filter once for every
// syscall number to build its cache (seccomp_cache_prepare). A profile too
// big for classic BPF's 8-bit jumps in that layout gets a linear program.
func assemble(def uint32, rules []rule) ([]unix.SockFilter, error) {
	byNr := map[uint32][]rule{}
	var nrs []uint32
	for _, r := range rules {
		if _, ok := byNr[r.nr]; !ok {
			nrs = append(nrs, r.nr)
		}
		byNr[r.nr] = append(byNr[r.nr], r)
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })
	a := header()
	a.tree(nrs, byNr, def)
	prog, err := a.finish()
	if err != nil {
		a = header()
		a.linear(rules, def)
		if prog, err = a.finish(); err != nil {
			return nil, err
		}
	}
	if len(prog) > 4096 {
		return nil, fmt.Errorf("seccomp: program of %d instructions is above the kernel's 4096", len(prog))
	}
	return prog, nil
}

// header starts a program with the architecture checks; it leaves the
// syscall number in A.
func header() *asm {
	a := &asm{}
	ok := a.label()
	a.ld(offArch)
	a.jmp(unix.BPF_JEQ, auditArch, ok, -1)
	a.ret(unix.SECCOMP_RET_KILL_PROCESS)
	a.set(ok)
	a.ld(offNr)
	if x32Mask != 0 {
		native := a.label()
		a.jmp(unix.BPF_JSET, x32Mask, -1, native)
		a.ret(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
		a.set(native)
	}
	return a
}

// tree emits the search over the sorted numbers nrs (A holds the number).
func (a *asm) tree(nrs []uint32, byNr map[uint32][]rule, def uint32) {
	if len(nrs) <= 3 {
		for _, nr := range nrs {
			next := a.label()
			a.jmp(unix.BPF_JEQ, nr, -1, next)
			a.block(byNr[nr], def)
			a.set(next)
		}
		a.ret(def)
		return
	}
	mid := len(nrs) / 2
	right := a.label()
	a.jmp(unix.BPF_JGE, nrs[mid], right, -1)
	a.tree(nrs[:mid], byNr, def)
	a.set(right)
	a.tree(nrs[mid:], byNr, def)
}

// block emits the rules of one syscall number, in order, ending in the
// default when the last one has conditions that fail.
func (a *asm) block(rs []rule, def uint32) {
	loaded := true
	for _, r := range rs {
		if !loaded {
			a.ld(offNr) // a failed condition left an argument in A
		}
		next := a.label()
		for _, c := range r.conds {
			a.cond(c, next)
		}
		a.ret(r.ret)
		a.set(next)
		loaded = len(r.conds) == 0
		if loaded {
			return // an unconditional rule always decides
		}
	}
	a.ret(def)
}

// linear emits each rule in the profile's order, each testing the number.
func (a *asm) linear(rules []rule, def uint32) {
	loaded := true
	for _, r := range rules {
		next := a.label()
		if !loaded {
			a.ld(offNr)
		}
		a.jmp(unix.BPF_JEQ, r.nr, -1, next)
		for _, c := range r.conds {
			a.cond(c, next)
		}
		a.ret(r.ret)
		a.set(next)
		loaded = len(r.conds) == 0
	}
	a.ret(def)
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
