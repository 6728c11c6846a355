package seccomp

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The kernel pays for a program twice when it loads it: once per
// instruction (classic to extended BPF, then the JIT), and once per
// instruction on the path of every syscall number of both ABIs, since it
// runs the filter for each to build its cache of constant allows
// (seccomp_cache_prepare). Measured here with bench/limits's seccomp_load.c:
// ~0.13 µs an instruction, and ~3.8 ns a step of a path, ~460 paths of
// each ABI. So the program is small (returns are shared, loads of what A
// already holds are left out, tests folded) and its paths short (a search
// tree weighted by how many numbers each branch holds).

// What the accumulator holds, besides a seccomp_data offset.
const (
	accUnknown = -1 // computed, or different on the ways in
	accDead    = -2 // nothing falls through to here (after a ret or a two-way jump)
)

// asm is a classic BPF program with symbolic jump targets. It tracks what
// the accumulator holds, so that a load of the word it holds is left out,
// and keeps pools of shared return instructions: a jump to "return k" goes
// to the one ret k at the end of the innermost open pool.
type asm struct {
	prog   []unix.SockFilter
	fix    []fixup
	labels []int // label -> instruction index, -1 until placed
	in     []int // label -> what A holds on every jump to it (accDead: none yet)
	acc    int   // what A holds here
	pools  []retPool
	err    error
}

type fixup struct {
	at     int
	jt, jf int  // labels, -1: the next instruction
	ja     bool // an unconditional jump to jt: the offset goes in K
}

// retPool is a set of return instructions placed together.
type retPool struct {
	labels map[uint32]int // return value -> label
	order  []uint32
}

func newAsm() *asm { return &asm{acc: accUnknown} }

func (a *asm) label() int {
	a.labels = append(a.labels, -1)
	a.in = append(a.in, accDead)
	return len(a.labels) - 1
}

// set places label l here: A holds what every way in agrees on.
func (a *asm) set(l int) {
	a.labels[l] = len(a.prog)
	a.acc = merge(a.acc, a.in[l])
}

// merge is what A holds where two ways meet, one holding x, the other y.
func merge(x, y int) int {
	switch {
	case x == accDead:
		return y
	case y == accDead || x == y:
		return x
	}
	return accUnknown
}

func (a *asm) emit(code uint16, k uint32) {
	a.prog = append(a.prog, unix.SockFilter{Code: code, K: k})
}

// ld loads the word at off of seccomp_data, unless A holds it already.
func (a *asm) ld(off uint32) {
	if a.acc == int(off) {
		return
	}
	a.emit(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off)
	a.acc = int(off)
}

func (a *asm) and(k uint32) {
	a.emit(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, k)
	a.acc = accUnknown
}

func (a *asm) ret(k uint32) {
	a.emit(unix.BPF_RET|unix.BPF_K, k)
	a.acc = accDead
}

// jmp adds a conditional jump to labels jt and jf (-1: the next instruction).
func (a *asm) jmp(op uint16, k uint32, jt, jf int) {
	a.fix = append(a.fix, fixup{at: len(a.prog), jt: jt, jf: jf})
	for _, l := range [2]int{jt, jf} {
		if l >= 0 {
			a.in[l] = merge(a.in[l], a.acc)
		}
	}
	a.emit(unix.BPF_JMP|op|unix.BPF_K, k)
	if jt >= 0 && jf >= 0 {
		a.acc = accDead
	}
}

// ja adds an unconditional jump to label l.
func (a *asm) ja(l int) {
	a.fix = append(a.fix, fixup{at: len(a.prog), jt: l, ja: true})
	a.in[l] = merge(a.in[l], a.acc)
	a.emit(unix.BPF_JMP|unix.BPF_JA, 0)
	a.acc = accDead
}

func (a *asm) openPool() { a.pools = append(a.pools, retPool{labels: map[uint32]int{}}) }

// exit returns the label of "return k" in the innermost open pool.
func (a *asm) exit(k uint32) int {
	p := &a.pools[len(a.pools)-1]
	l, ok := p.labels[k]
	if !ok {
		l = a.label()
		p.labels[k] = l
		p.order = append(p.order, k)
	}
	return l
}

// closePool places the innermost pool's returns here, where nothing may
// fall through.
func (a *asm) closePool() {
	p := a.pools[len(a.pools)-1]
	a.pools = a.pools[:len(a.pools)-1]
	if a.acc != accDead && a.err == nil {
		a.err = errors.New("seccomp: internal error: code falls into a pool of returns")
	}
	for _, k := range p.order {
		a.set(p.labels[k])
		a.ret(k)
	}
}

func (a *asm) finish() ([]unix.SockFilter, error) {
	if a.err != nil {
		return nil, a.err
	}
	for _, f := range a.fix {
		if f.ja {
			a.prog[f.at].K = uint32(a.labels[f.jt] - f.at - 1)
			continue
		}
		for _, x := range []struct {
			label int
			dst   *uint8
		}{{f.jt, &a.prog[f.at].Jt}, {f.jf, &a.prog[f.at].Jf}} {
			if x.label < 0 {
				continue
			}
			off := a.labels[x.label] - f.at - 1
			if off < 0 || off > 255 {
				return nil, fmt.Errorf("seccomp: jump of %d instructions", off)
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

// test jumps to pass when every condition of r holds, else to fail.
func (a *asm) test(r rule, pass, fail int) {
	if r.anyBits != 0 {
		lo, hi := argHalves(r.anyArg)
		hiBits, loBits := uint32(r.anyBits>>32), uint32(r.anyBits)
		if hiBits != 0 {
			next := fail
			if loBits != 0 {
				next = -1
			}
			a.ld(hi)
			a.jmp(unix.BPF_JSET, hiBits, pass, next)
		}
		if loBits != 0 {
			a.ld(lo)
			a.jmp(unix.BPF_JSET, loBits, pass, fail)
		}
		return
	}
	for i, c := range r.conds {
		ok := pass
		if i < len(r.conds)-1 {
			ok = a.label()
		}
		a.cond(c, ok, fail)
		if ok != pass {
			a.set(ok)
		}
	}
}

// cond jumps to pass when c holds, else to fail. Arguments are 64 bits:
// the high word decides unless it is equal.
func (a *asm) cond(c specs.LinuxSeccompArg, pass, fail int) {
	lo, hi := argHalves(c.Index)
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	switch c.Op {
	case specs.OpEqualTo:
		a.ld(hi)
		a.jmp(unix.BPF_JEQ, vhi, -1, fail)
		a.ld(lo)
		a.jmp(unix.BPF_JEQ, vlo, pass, fail)
	case specs.OpNotEqual:
		a.ld(hi)
		a.jmp(unix.BPF_JEQ, vhi, -1, pass)
		a.ld(lo)
		a.jmp(unix.BPF_JEQ, vlo, fail, pass)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.ld(hi)
		a.jmp(unix.BPF_JGT, vhi, pass, -1)
		a.jmp(unix.BPF_JEQ, vhi, -1, fail)
		a.ld(lo)
		op := uint16(unix.BPF_JGT)
		if c.Op == specs.OpGreaterEqual {
			op = unix.BPF_JGE
		}
		a.jmp(op, vlo, pass, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		a.ld(hi)
		a.jmp(unix.BPF_JGT, vhi, fail, -1)
		a.jmp(unix.BPF_JEQ, vhi, -1, pass)
		a.ld(lo)
		op := uint16(unix.BPF_JGE) // lo < v: not lo >= v
		if c.Op == specs.OpLessEqual {
			op = unix.BPF_JGT
		}
		a.jmp(op, vlo, fail, pass)
	case specs.OpMaskedEqual: // (arg & value) == valueTwo
		a.masked([2]uint32{hi, lo}, [2]uint32{vhi, vlo}, [2]uint32{uint32(c.ValueTwo >> 32), uint32(c.ValueTwo)}, pass, fail)
	}
}

// masked tests (word & mask) == want for both words of an argument, high
// first. A word with an empty mask always holds (lower left out the rules
// where it cannot); a full mask needs no AND, a one-bit one is a JSET.
func (a *asm) masked(off, mask, want [2]uint32, pass, fail int) {
	var words []int
	for i := range off {
		if mask[i] != 0 {
			words = append(words, i)
		}
	}
	if len(words) == 0 {
		a.ja(pass)
		return
	}
	for n, i := range words {
		ok := -1
		if n == len(words)-1 {
			ok = pass
		}
		a.ld(off[i])
		switch m, w := mask[i], want[i]; {
		case m == 0xffffffff:
			a.jmp(unix.BPF_JEQ, w, ok, fail)
		case bits.OnesCount32(m) == 1 && w == m:
			a.jmp(unix.BPF_JSET, m, ok, fail)
		case bits.OnesCount32(m) == 1 && w == 0:
			a.jmp(unix.BPF_JSET, m, fail, ok)
		default:
			a.and(m)
			a.jmp(unix.BPF_JEQ, w, ok, fail)
		}
	}
}

// oneBit returns the argument and bit of a rule that holds when that bit
// is set: one MaskedEqual condition whose mask and value are the same bit,
// or rules already merged.
func oneBit(r rule) (uint, uint64, bool) {
	if r.anyBits != 0 {
		return r.anyArg, r.anyBits, true
	}
	if len(r.conds) != 1 {
		return 0, 0, false
	}
	c := r.conds[0]
	if c.Op != specs.OpMaskedEqual || c.Value != c.ValueTwo || bits.OnesCount64(c.Value) != 1 {
		return 0, 0, false
	}
	return c.Index, c.Value, true
}

// mergeBits joins consecutive rules of one number that return the same
// value and each hold when a bit of the same argument is set: the first
// that matches decides, so they hold together when any of the bits is set.
// It works in place: rs is the caller's own.
func mergeBits(rs []rule) []rule {
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].ret == r.ret {
			ia, ba, oka := oneBit(out[n-1])
			ib, bb, okb := oneBit(r)
			if oka && okb && ia == ib {
				out[n-1] = rule{nr: r.nr, ret: r.ret, anyArg: ia, anyBits: ba | bb}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// assemble builds the program: the architecture check (another audit arch
// is killed, as libseccomp's default bad-arch action does; on x86_64 the x32
// ABI gets ENOSYS), then a search on the syscall number (segments, below)
// down to the rules of that number, tried in the profile's order (rules of
// different numbers never both match, so the profile's first-match order
// holds), else the default. Returns are shared by the whole program when its
// jumps reach them (8 bits of offset), else by smaller subtrees; a profile
// too big for that gets a linear program.
func assemble(def uint32, rules []rule) ([]unix.SockFilter, error) {
	prog, _, err := layOut(def, rules)
	if err != nil {
		return nil, err
	}
	if len(prog) > 4096 {
		return nil, fmt.Errorf("seccomp: program of %d instructions is above the kernel's 4096", len(prog))
	}
	return prog, nil
}

// layOut assembles the program in the first layout whose jumps fit and
// names it: "tree" (one pool of returns), "pooled tree" or "linear".
func layOut(def uint32, rules []rule) ([]unix.SockFilter, string, error) {
	segs := segments(def, rules)
	st := newSearchTree(segs)
	for size := len(segs); ; size /= 2 {
		a := header(false)
		a.tree(segs, st, 0, len(segs)-1, size, false)
		if prog, err := a.finish(); err == nil {
			if size == len(segs) {
				return prog, "tree", nil
			}
			return prog, "pooled tree", nil
		}
		if size == 0 {
			break
		}
	}
	a := header(true)
	a.linear(rules, def)
	prog, err := a.finish()
	return prog, "linear", err
}

// header starts a program with the architecture check; with x32, it
// refuses the x32 ABI at once (the tree does it in its last segment).
func header(x32 bool) *asm {
	a := newAsm()
	ok := a.label()
	a.ld(offArch)
	a.jmp(unix.BPF_JEQ, auditArch, ok, -1)
	a.ret(unix.SECCOMP_RET_KILL_PROCESS)
	a.set(ok)
	if x32 && x32Mask != 0 {
		native := a.label()
		a.ld(offNr)
		a.jmp(unix.BPF_JSET, x32Mask, -1, native)
		a.ret(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
		a.set(native)
	}
	return a
}

// segment is a run of syscall numbers [lo, hi) the program treats alike:
// one return for all (a gap between rules is the default's; neighbours
// with the same return are one segment), or the rules of one number
// (rules non-nil; ret is then the default, when none matches), or the
// numbers above every rule on x86_64, where x32's are refused (x32 true).
type segment struct {
	lo, hi uint64
	ret    uint32
	rules  []rule
	x32    bool
}

// segments cuts the numbers into segments, in order, from 0 up.
func segments(def uint32, rules []rule) []segment {
	// By number, the profile's order kept within a number: sorting keys
	// of number and index is several times cheaper than a stable sort of
	// the rules.
	keys := make([]uint64, len(rules))
	for i, r := range rules {
		keys[i] = uint64(r.nr)<<32 | uint64(i)
	}
	slices.Sort(keys)
	sorted := make([]rule, len(rules))
	for i, k := range keys {
		sorted[i] = rules[uint32(k)]
	}
	segs := make([]segment, 0, 2*len(sorted)+1)
	add := func(s segment) {
		if n := len(segs); n > 0 && s.rules == nil && !s.x32 && segs[n-1].rules == nil && !segs[n-1].x32 && segs[n-1].ret == s.ret {
			segs[n-1].hi = s.hi
			return
		}
		segs = append(segs, s)
	}
	next := uint64(0)
	for i := 0; i < len(sorted); {
		nr := sorted[i].nr
		j := i + 1
		for j < len(sorted) && sorted[j].nr == nr {
			j++
		}
		if uint64(nr) > next {
			add(segment{lo: next, hi: uint64(nr), ret: def})
		}
		rs := mergeBits(sorted[i:j:j])
		if rs[0].unconditional() {
			add(segment{lo: uint64(nr), hi: uint64(nr) + 1, ret: rs[0].ret})
		} else {
			add(segment{lo: uint64(nr), hi: uint64(nr) + 1, ret: def, rules: rs})
		}
		next, i = uint64(nr)+1, j
	}
	add(segment{lo: next, hi: 1 << 32, ret: def, x32: x32Mask != 0})
	return segs
}

// searchTree chooses the search's shape: each subtree splits its segments
// where the numbers they hold weigh the same on both sides (the kernel runs
// the filter for every syscall number of the table when it loads it, so a
// big run of numbers deserves a short path). This weight-balanced tree is
// within a step of the optimal alphabetic one (9.2 against 9.1 steps a
// number for the default profile) at a fraction of its cost: a profile
// FILE is compiled at every run.
type searchTree struct {
	sum []uint64 // sum[i]: weight of the segments before i
}

func newSearchTree(segs []segment) searchTree {
	top := uint64(0)
	for _, e := range syscallTable {
		top = max(top, uint64(e.nr)+1)
	}
	sum := make([]uint64, len(segs)+1)
	for i, s := range segs {
		w := uint64(1) // every segment has a way to it
		if s.lo < top {
			w = min(s.hi, top) - s.lo
		}
		sum[i+1] = sum[i] + w
	}
	return searchTree{sum}
}

// split returns the first segment of the right subtree of the one over
// segments i..j (i < j): the one where the weights on either side are the
// most even.
func (t searchTree) split(i, j int) int {
	sum := t.sum
	half := (sum[i] + sum[j+1] + 1) / 2
	// The first k in (i, j] whose left side holds at least half...
	k := i + 1 + sort.Search(j-i, func(x int) bool { return sum[i+1+x] >= half })
	// ...or the one before, if that is more even.
	if k > i+1 && sum[k]-half > half-sum[k-1] {
		k--
	}
	return min(k, j)
}

// tree emits the search over segments i..j, each comparison a BPF_JGE on
// the number; a segment with one return is reached by a jump straight to
// it. A subtree of at most poolSize segments not yet in a pool keeps its
// returns at its end.
func (a *asm) tree(segs []segment, st searchTree, i, j, poolSize int, pooled bool) {
	if !pooled && (j-i+1 <= poolSize || i == j) {
		a.openPool()
		defer a.closePool()
		pooled = true
	}
	if i == j {
		a.segment(segs[i])
		return
	}
	k := st.split(i, j)
	left, right := a.direct(segs, i, k-1), a.direct(segs, k, j)
	fresh := right < 0
	if fresh {
		right = a.label()
	}
	a.ld(offNr)
	a.jmp(unix.BPF_JGE, uint32(segs[k].lo), right, left)
	if left < 0 {
		a.tree(segs, st, i, k-1, poolSize, pooled)
	}
	if fresh {
		a.set(right)
		a.tree(segs, st, k, j, poolSize, pooled)
	}
}

// direct returns the return a jump to segments i..j can go to straight,
// when they are one segment with one return, else -1.
func (a *asm) direct(segs []segment, i, j int) int {
	if i != j || segs[i].rules != nil || segs[i].x32 || len(a.pools) == 0 {
		return -1
	}
	return a.exit(segs[i].ret)
}

// segment emits the code of one segment reached on its own.
func (a *asm) segment(s segment) {
	switch {
	case s.rules != nil:
		a.block(s.rules, s.ret)
	case s.x32:
		a.ld(offNr)
		a.jmp(unix.BPF_JSET, x32Mask, a.exit(unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)), a.exit(s.ret))
	default:
		a.ret(s.ret)
	}
}

// block emits the rules of one number, in order: the first whose
// conditions hold decides; when none does, the default.
func (a *asm) block(rs []rule, def uint32) {
	for i, r := range rs {
		if r.unconditional() {
			a.ret(r.ret)
			return
		}
		fail := a.exit(def)
		if i < len(rs)-1 {
			fail = a.label()
		}
		a.test(r, a.exit(r.ret), fail)
		if i < len(rs)-1 {
			a.set(fail)
		}
	}
}

// linear emits each rule in the profile's order, each testing the number
// and keeping its return beside it.
func (a *asm) linear(rules []rule, def uint32) {
	for _, r := range rules {
		next := a.label()
		a.ld(offNr)
		a.jmp(unix.BPF_JEQ, r.nr, -1, next)
		if r.unconditional() {
			a.ret(r.ret)
		} else {
			a.openPool()
			a.test(r, a.exit(r.ret), next)
			a.closePool()
		}
		a.set(next)
	}
	a.ret(def)
}
