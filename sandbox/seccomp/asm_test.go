package seccomp

import (
	"math/rand/v2"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// want is what a profile means, read straight from its rules: another
// architecture is killed, x32 gets ENOSYS, else the first rule of the
// number whose conditions all hold decides, else the default.
func want(def uint32, rules []rule, arch, nr uint32, args []uint64) uint32 {
	if arch != auditArch {
		return unix.SECCOMP_RET_KILL_PROCESS
	}
	if x32Mask != 0 && nr&x32Mask != 0 {
		return unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	}
next:
	for _, r := range rules {
		if r.nr != nr {
			continue
		}
		for _, c := range r.conds {
			v := args[c.Index]
			var ok bool
			switch c.Op {
			case specs.OpEqualTo:
				ok = v == c.Value
			case specs.OpNotEqual:
				ok = v != c.Value
			case specs.OpGreaterThan:
				ok = v > c.Value
			case specs.OpGreaterEqual:
				ok = v >= c.Value
			case specs.OpLessThan:
				ok = v < c.Value
			case specs.OpLessEqual:
				ok = v <= c.Value
			case specs.OpMaskedEqual:
				ok = v&c.Value == c.ValueTwo
			}
			if !ok {
				continue next
			}
		}
		return r.ret
	}
	return def
}

// Random profiles, small to too big for one pool of returns, compiled and
// run in x/net/bpf's VM against their meaning, on the numbers of their
// rules, their neighbours, x32's and others, with arguments drawn from the
// values the conditions compare.
func TestCompileMatchesProfile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []uint64{0, 1, 2, 8, 0x10, 0x5412, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, 1<<32 | 8, 0x500000010, 1 << 63, ^uint64(0)}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpGreaterThan, specs.OpGreaterEqual,
		specs.OpLessThan, specs.OpLessEqual, specs.OpMaskedEqual}
	rets := []uint32{unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_ERRNO | 1, unix.SECCOMP_RET_ERRNO | 38,
		unix.SECCOMP_RET_KILL_PROCESS, unix.SECCOMP_RET_TRAP, unix.SECCOMP_RET_LOG}
	layouts := map[string]int{}
	for p := 0; p < 150; p++ {
		def := rets[rng.IntN(len(rets))]
		var rules []rule
		n := 1 + rng.IntN([]int{8, 60, 400}[p%3])
		base := rng.IntN(len(syscallTable))
		for i := 0; i < n; i++ {
			e := syscallTable[(base+rng.IntN(40+n))%len(syscallTable)]
			r := rule{nr: e.nr, ret: rets[rng.IntN(len(rets))]}
			for c := rng.IntN(4) - 1; c > 0; c-- {
				arg := specs.LinuxSeccompArg{Index: uint(rng.IntN(6)), Op: ops[rng.IntN(len(ops))], Value: values[rng.IntN(len(values))]}
				if arg.Op == specs.OpMaskedEqual {
					switch rng.IntN(3) {
					case 0: // one bit set
						arg.Value = 1 << rng.IntN(64)
						arg.ValueTwo = arg.Value
					case 1: // one bit clear
						arg.Value = 1 << rng.IntN(64)
					default:
						arg.ValueTwo = arg.Value & values[rng.IntN(len(values))]
					}
				}
				r.conds = append(r.conds, arg)
			}
			rules = append(rules, r)
		}
		prog, layout, err := layOut(def, rules)
		if err != nil {
			if len(rules) > 100 {
				continue // too big for 8-bit jumps, as the kernel's own limit
			}
			t.Fatalf("profile %d (%d rules): %v", p, len(rules), err)
		}
		layouts[layout]++
		exec := vm(t, prog)
		var nrs []uint32
		for _, r := range rules {
			nrs = append(nrs, r.nr, r.nr+1, r.nr-1, r.nr|x32Mask)
		}
		rng.Shuffle(len(nrs), func(i, j int) { nrs[i], nrs[j] = nrs[j], nrs[i] })
		nrs = append(nrs[:min(len(nrs), 200)], 0, 1<<31, ^uint32(0), uint32(rng.IntN(1000)))
		for _, nr := range nrs {
			for k := 0; k < 4; k++ {
				args := make([]uint64, 6)
				for i := range args {
					args[i] = values[rng.IntN(len(values))]
				}
				w := want(def, rules, auditArch, nr, args)
				if got := exec(auditArch, nr, args...); got != w {
					t.Fatalf("profile %d (%s, %d rules): nr %#x args %#x = %#x; want %#x", p, layout, len(rules), nr, args, got, w)
				}
			}
		}
		if got := exec(auditArch^1, 0); got != unix.SECCOMP_RET_KILL_PROCESS {
			t.Fatalf("profile %d: another arch = %#x", p, got)
		}
	}
	for _, l := range []string{"tree", "pooled tree", "linear"} {
		if layouts[l] == 0 {
			t.Errorf("no profile was laid out as %s (%v)", l, layouts)
		}
	}
}

// constAllow runs prog for one number as the kernel does when it builds its
// cache of syscalls always allowed (seccomp_is_const_allow): true when the
// program allows the number without looking at the arguments; steps is how
// many instructions that ran.
func constAllow(prog []unix.SockFilter, arch, nr uint32) (allow bool, steps int) {
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		steps++
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			switch in.K {
			case offNr:
				acc = nr
			case offArch:
				acc = arch
			default:
				return false, steps
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K == unix.SECCOMP_RET_ALLOW, steps
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			var ok bool
			switch in.Code & 0xf0 {
			case unix.BPF_JEQ:
				ok = acc == in.K
			case unix.BPF_JGE:
				ok = acc >= in.K
			case unix.BPF_JGT:
				ok = acc > in.K
			case unix.BPF_JSET:
				ok = acc&in.K != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			acc &= in.K
		default:
			return false, steps
		}
	}
	return false, steps
}

// The default program keeps the kernel's fast path: every syscall it does
// not refuse or look into is allowed on the number alone, so the kernel
// never runs the filter for it. It is small and its paths are short, since
// the kernel runs it for every number at load time.
func TestDefaultProgramShape(t *testing.T) {
	prog, err := Compile(Default())
	if err != nil {
		t.Fatal(err)
	}
	looked := map[uint32]bool{}
	for _, sc := range Default().Syscalls {
		for _, n := range sc.Names {
			if nr, ok := lookupSyscall(n); ok {
				looked[nr] = true
			}
		}
	}
	steps := 0
	for _, e := range syscallTable {
		allow, n := constAllow(prog, auditArch, e.nr)
		steps += n
		if looked[e.nr] {
			if allow {
				t.Errorf("%s is allowed on its number alone; the profile refuses it or looks at its arguments", e.name)
			}
			continue
		}
		if !allow {
			t.Errorf("%s: the kernel would run the filter at every call", e.name)
		}
	}
	avg := float64(steps) / float64(len(syscallTable))
	t.Logf("default program: %d instructions, %.1f steps a number at load", len(prog), avg)
	if len(prog) > 100 || avg > 12 {
		t.Errorf("default program: %d instructions, %.1f steps a number; the layout regressed (252 and 11.9 before the shared returns and segments)", len(prog), avg)
	}
}
