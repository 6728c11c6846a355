package seccomp

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/sys/capability"

	"github.com/nsbox/nsbox/sandbox/caps"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// run evaluates prog for one system call in x/net/bpf's VM. The VM loads
// words big-endian, so each 32-bit word of seccomp_data is stored that way
// at its native offset: the program sees the same values as in the kernel.
func run(t *testing.T, prog []unix.SockFilter, auditArch uint32, nr uint32, args ...uint64) uint32 {
	t.Helper()
	return vm(t, prog)(auditArch, nr, args...)
}

// vm returns a function that runs prog for one system call.
func vm(t *testing.T, prog []unix.SockFilter) func(auditArch uint32, nr uint32, args ...uint64) uint32 {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	m, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	return func(auditArch uint32, nr uint32, args ...uint64) uint32 {
		t.Helper()
		data := make([]byte, 64)
		binary.BigEndian.PutUint32(data[offNr:], nr)
		binary.BigEndian.PutUint32(data[offArch:], auditArch)
		for i, a := range args {
			lo, hi := argHalves(uint(i))
			binary.BigEndian.PutUint32(data[lo:], uint32(a))
			binary.BigEndian.PutUint32(data[hi:], uint32(a>>32))
		}
		out, err := m.Run(data)
		if err != nil {
			t.Fatal(err)
		}
		return uint32(out)
	}
}

func nr(t *testing.T, name string) uint32 {
	info, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	n, ok := info.SyscallNames[name]
	if !ok {
		t.Fatalf("no syscall %s", name)
	}
	return uint32(n)
}

const errno = unix.SECCOMP_RET_ERRNO

// The default profile, rule by rule, including the rules after the first
// conditional one (which go-seccomp-bpf v1.6.0's own compiler gets wrong).
func TestDefaultProgram(t *testing.T) {
	prog, err := Compile(Default())
	if err != nil {
		t.Fatal(err)
	}
	info, _ := arch.GetInfo("")
	id := uint32(info.ID)
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	for _, c := range []struct {
		name string
		args []uint64
		want uint32
	}{
		{"read", nil, allow},
		{"mount", nil, errno | 1},
		{"unshare", []uint64{unix.CLONE_NEWUSER}, errno | 1},
		{"clone", []uint64{uint64(unix.SIGCHLD)}, allow},
		{"clone", []uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, errno | 1},
		{"clone", []uint64{unix.CLONE_NEWNET}, errno | 1},
		{"clone", []uint64{unix.CLONE_VM | unix.CLONE_THREAD | unix.CLONE_SIGHAND}, allow},
		{"clone3", nil, errno | uint32(unix.ENOSYS)},
		{"ioctl", []uint64{1, ioctlTIOCSTI}, errno | 1},
		{"ioctl", []uint64{1, 0xdead00000000 | ioctlTIOCSTI}, errno | 1},
		{"ioctl", []uint64{1, unix.TCGETS}, allow},
		{"ioctl", []uint64{1, ioctlTIOCLINUX}, errno | 1},
		{"personality", []uint64{0xffffffff}, allow},
		{"personality", []uint64{0x0400000}, errno | 1}, // READ_IMPLIES_EXEC
		{"personality", []uint64{0}, allow},
		{"bpf", nil, errno | 1},
		{"write", nil, allow},
	} {
		if got := run(t, prog, id, nr(t, c.name), c.args...); got != c.want {
			t.Errorf("%s%x = %#x; want %#x", c.name, c.args, got, c.want)
		}
	}
	if got := run(t, prog, 0x40000003 /* AUDIT_ARCH_I386 */, 1); got != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("foreign arch = %#x; want kill", got)
	}
	if info.ID == arch.X86_64.ID {
		if got := run(t, prog, id, 0x40000000|nr(t, "read")); got != errno|uint32(unix.ENOSYS) {
			t.Errorf("x32 read = %#x; want ENOSYS", got)
		}
	}
}

// Every operator, against a 64-bit value whose halves differ.
func TestOperators(t *testing.T) {
	const v = uint64(0x0000000500000010)
	cases := []struct {
		op   specs.LinuxSeccompOperator
		v2   uint64
		hit  []uint64
		miss []uint64
	}{
		{specs.OpEqualTo, 0, []uint64{v}, []uint64{v + 1, 0x10, v | 1<<40}},
		{specs.OpNotEqual, 0, []uint64{v + 1, 0x10, 0}, []uint64{v}},
		{specs.OpGreaterThan, 0, []uint64{v + 1, 0x0000000600000000}, []uint64{v, v - 1, 0x00000004ffffffff}},
		{specs.OpGreaterEqual, 0, []uint64{v, v + 1}, []uint64{v - 1, 0x20}},
		{specs.OpLessThan, 0, []uint64{v - 1, 0x00000004ffffffff, 0}, []uint64{v, v + 1, 0x0000000600000000}},
		{specs.OpLessEqual, 0, []uint64{v, v - 1}, []uint64{v + 1}},
		{specs.OpMaskedEqual, 0x0000000100000010, []uint64{0x0000000100000010, 0xffffffffffffffff & ^uint64(0x0000000400000000)}, []uint64{0x10, 0x0000000100000000}},
	}
	info, _ := arch.GetInfo("")
	for _, c := range cases {
		p := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 2, Value: v, ValueTwo: c.v2, Op: c.op}}},
			{Names: []string{"getpid"}, Action: specs.ActKillProcess}, // reached only on a miss
		}}
		if c.op == specs.OpMaskedEqual {
			p.Syscalls[0].Args[0].Value = v | 1<<32
		}
		prog, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range c.hit {
			if got := run(t, prog, uint32(info.ID), nr(t, "getpid"), 0, 0, x); got != errno|1 {
				t.Errorf("%s %#x: arg %#x missed (%#x)", c.op, v, x, got)
			}
		}
		for _, x := range c.miss {
			if got := run(t, prog, uint32(info.ID), nr(t, "getpid"), 0, 0, x); got != unix.SECCOMP_RET_KILL_PROCESS {
				t.Errorf("%s %#x: arg %#x hit (%#x)", c.op, v, x, got)
			}
		}
	}
}

func TestProfileErrors(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read","nope","zap"],"action":"SCMP_ACT_ERRNO"}]}`, "nope, zap"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_S390X"]}`, "SCMP_ARCH_S390X"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_PDP11"]}`, "SCMP_ARCH_PDP11"},
		{`{"defaultAction":"SCMP_ACT_FLY"}`, "SCMP_ACT_FLY"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}`, "index 7"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}`, "SCMP_CMP_ABOUT"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscals":[]}`, "syscals"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_FLY"]}}]}`, "CAP_FLY"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","defaultErrno":"ENOTANERRNO"}`, "ENOTANERRNO"},
		{`{"defaultAction":`, "profile"},
	} {
		p, err := Parse([]byte(c.json))
		if err == nil {
			_, err = Compile(p)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error naming %q", c.json, err, c.want)
		}
	}
}

// Docker's own format: archMap and comments are read.
func TestParseDockerFormat(t *testing.T) {
	p, err := Parse([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
		"archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},
		           {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
		"syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW","comment":"io"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Architectures) != 5 || len(p.Syscalls) != 1 || *p.DefaultErrnoRet != 1 {
		t.Fatalf("parsed %+v", p)
	}
	if _, err := Compile(p); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":3,"op":"SCMP_CMP_GT"}]}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse([]byte(s))
		if err != nil {
			return
		}
		prog, err := Compile(p)
		if err == nil && (len(prog) == 0 || len(prog) > 4096) {
			t.Fatalf("program of %d instructions", len(prog))
		}
	})
}

// A Docker-sized allow list (every syscall but mkdir) is too big for the
// search's 8-bit jumps and gets the linear program, with the same meaning.
func TestLargeAllowList(t *testing.T) {
	var names []string
	for _, e := range syscallTable {
		if e.name != "mkdir" {
			names = append(names, e.name)
		}
	}
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := arch.GetInfo("")
	if got := run(t, prog, uint32(info.ID), nr(t, "read")); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("read = %#x", got)
	}
	if got := run(t, prog, uint32(info.ID), nr(t, "mkdir")); got != errno|1 {
		t.Errorf("mkdir = %#x", got)
	}
}

// Docker's conditions, evaluated as dockerd does, and podman's errno names.
func TestParseForConditions(t *testing.T) {
	doc := []byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":"ENOSYS","syscalls":[
		{"names":["read"],"action":"SCMP_ACT_ALLOW"},
		{"names":["chroot"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_CHROOT"]}},
		{"names":["chroot"],"action":"SCMP_ACT_ERRNO","errno":"EPERM","excludes":{"caps":["CAP_SYS_CHROOT"]}},
		{"names":["write"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["` + runtime.GOARCH + `"]}},
		{"names":["getpid"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["s390x"]}},
		{"names":["gettid"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}},
		{"names":["getppid"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"99.0"}},
		{"names":["_llseek","swapcontext"],"action":"SCMP_ACT_ALLOW"}]}`)
	chroot := caps.Set(0).With(capability.CAP_SYS_CHROOT)
	for _, c := range []struct {
		env  Env
		want map[string]uint32
	}{
		{Env{Kernel: "6.1.0"}, map[string]uint32{"read": unix.SECCOMP_RET_ALLOW, "chroot": errno | 1, "write": unix.SECCOMP_RET_ALLOW,
			"getpid": errno | uint32(unix.ENOSYS), "gettid": unix.SECCOMP_RET_ALLOW, "getppid": errno | uint32(unix.ENOSYS)}},
		{Env{Caps: chroot, Kernel: "4.4.0"}, map[string]uint32{"chroot": unix.SECCOMP_RET_ALLOW, "gettid": errno | uint32(unix.ENOSYS)}},
	} {
		p, err := ParseFor(doc, c.env)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := arch.GetInfo("")
		for name, want := range c.want {
			if got := run(t, prog, uint32(info.ID), nr(t, name)); got != want {
				t.Errorf("env %+v: %s = %#x; want %#x", c.env, name, got, want)
			}
		}
	}
}
