package main

// csrc/nsbox_gen.h holds what the C fast paths must know of Go's rules
// (run's flag table, the name rules, the defaults, the forwarded signals,
// the shim's stage numbers); TestGeneratedHeader writes it here and fails
// when it is stale.
//go:generate sh -c "NSBOX_GENERATE=1 go test -count=1 -run ^TestGeneratedHeader$ ."

// The C fast path of nsbox run (csrc/run_fast.c, with csrc/net_fast.c for
// `-n NS run --net --bridge BR --addr CIDR [--gateway IP] [--ifname NAME]`)
// runs from an ELF constructor before the Go runtime starts. It handles plain
// invocations only and leaves everything else to runMain; this file exposes
// its parser to the parity tests, which check that it agrees with the global
// flags, parseRunArgs and nsnet.Config.Validate.

/*
#cgo CFLAGS: -Wall -Wextra -Werror -O2 -I${SRCDIR}/../../csrc
#define _GNU_SOURCE
#include "run_fast.c"

// nsb_name_ok_rule: nsb_name_ok with the generated rule k (0 netns, 1 link,
// 2 sandbox, 3 pool; the rules are static, so Go cannot name them).
static int nsb_name_ok_rule(int k, const char *s)
{
	static const struct nsb_name_rule *const r[] = {&nsb_rule_netns, &nsb_rule_link, &nsb_rule_sandbox, &nsb_rule_pool};
	return nsb_name_ok(r[k], s);
}
*/
import "C"

import (
	"net/netip"
	"os"
	"unsafe"

	"github.com/nsbox/nsbox/internal/sbstate"
	"github.com/nsbox/nsbox/nsclone"
)

// fastSpec is what the C parser made of a command line.
type fastSpec struct {
	ns            uint64
	propagation   uint64
	propagationOK bool // --propagation was given
	mountProc     bool
	init          bool
	hostname      string
	uid, gid      *uint32
	path          string
	cmdIndex      int // index in run's arguments of the command, their count if none

	pool    string        // --pool NAME, "" without it
	publish []publishSpec // the --publish values C took (csrc/nft_fast.c)

	// The static network (--bridge); net is false without it.
	net      bool
	bridgeNS string // -n NAME before run; "" for nsbox's own namespace
	bridge   string
	ifname   string // with its default, eth0
	addr     netip.Prefix
	gateway  netip.Addr // the zero Addr without --gateway

	// The view and the environment.
	root   string
	roRoot bool
	chdir  string
	fs     []nsclone.FSMount
	env    []string // the payload's environment

	// --name, --status-fd (-1 without), --pidfile.
	name     string
	statusFD int
	pidfile  string

	// The limits (limits_fast.c) and --sandbox's user's groups.
	groups     []uint32
	capsSet    bool
	keep       uint64
	ambient    bool
	noNewPrivs bool // after --seccomp's implication
	seccompDef bool // the default program
	pids       int64
	loopbackUp bool
}

// fastParse runs the C fast path's parser over the arguments of run (the
// words after "run") with env; ok is false when it leaves them to Go.
func fastParse(args, env []string) (fastSpec, bool) {
	return fastParseArgv(append([]string{"run"}, args...), env)
}

// fastParseArgv runs the C fast path's parser over a whole command line (the
// words after "nsbox", such as "-n", "lab", "run", ...) with env; ok is
// false when it leaves it to Go.
func fastParseArgv(words, env []string) (fastSpec, bool) {
	argv := append([]string{"nsbox"}, words...)
	cargv := make([]*C.char, len(argv)+1)
	cenv := make([]*C.char, len(env)+1)
	for i, a := range argv {
		cargv[i] = C.CString(a)
	}
	for i, e := range env {
		cenv[i] = C.CString(e)
	}
	defer func() {
		for _, p := range append(cargv, cenv...) {
			if p != nil {
				C.free(unsafe.Pointer(p))
			}
		}
	}()
	// The C arrays of pointers live in C memory (cgo forbids passing Go
	// memory that holds Go pointers; these hold C pointers only, but keep
	// the rule simple).
	pv := (**C.char)(C.malloc(C.size_t(len(cargv)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	pe := (**C.char)(C.malloc(C.size_t(len(cenv)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(pv))
	defer C.free(unsafe.Pointer(pe))
	copy(unsafe.Slice(pv, len(cargv)), cargv)
	copy(unsafe.Slice(pe, len(cenv)), cenv)
	f := (*C.struct_nsb_fast)(C.malloc(C.size_t(unsafe.Sizeof(C.struct_nsb_fast{}))))
	defer C.free(unsafe.Pointer(f))
	if C.nsb_fast_parse_for_test(C.int(len(argv)), pv, pe, f) != 0 {
		return fastSpec{}, false
	}
	defer C.nsb_fast_free(f)
	s := fastSpec{
		ns:            uint64(f.ns_flags),
		propagation:   uint64(f.propagation),
		propagationOK: f.propagation_set != 0,
		mountProc:     f.mount_proc != 0,
		init:          f.init != 0,
		path:          C.GoString(f.path),
		cmdIndex:      int(f.cmd_index - f.args_start),
	}
	if f.has_net != 0 {
		n := &f.net
		s.net = true
		if n.bridge_ns != nil {
			s.bridgeNS = C.GoString(n.bridge_ns)
		}
		s.bridge = C.GoString(n.bridge)
		s.ifname = C.GoString(n.ifname)
		s.addr = netip.PrefixFrom(ipv4(uint32(n.addr)), int(n.prefix))
		if n.has_gw != 0 {
			s.gateway = ipv4(uint32(n.gw))
		}
	}
	if f.has_pool != 0 {
		s.pool = C.GoString(f.pool.name)
	}
	for _, p := range f.nft.pub[:f.nft.npub] {
		ps := publishSpec{proto: "tcp", hostPort: uint16(p.hostport), port: uint16(p.port)}
		if p.udp != 0 {
			ps.proto = "udp"
		}
		if p.has_hostip != 0 {
			ps.hostIP = ipv4(uint32(p.hostip))
		}
		s.publish = append(s.publish, ps)
	}
	if f.hostname != nil {
		s.hostname = C.GoString(f.hostname)
	}
	if f.root != nil {
		s.root = C.GoString(f.root)
	}
	s.roRoot = f.ro_root != 0
	if f.chdir != nil {
		s.chdir = C.GoString(f.chdir)
	}
	for _, m := range f.fs[:f.nfs] {
		fm := nsclone.FSMount{Dest: C.GoString(m.dest), Size: uint64(m.size), Mode: modeOf(uint32(m.mode))}
		switch m.kind {
		case C.NSB_F_BIND:
			fm.Kind = nsclone.Bind
		case C.NSB_F_RO_BIND:
			fm.Kind = nsclone.ROBind
		case C.NSB_F_TMPFS:
			fm.Kind = nsclone.Tmpfs
		case C.NSB_F_DEV:
			fm.Kind = nsclone.Dev
		}
		if m.source != nil {
			fm.Source = C.GoString(m.source)
		}
		s.fs = append(s.fs, fm)
	}
	s.env = []string{}
	for _, p := range unsafe.Slice(f.env, 1<<20) {
		if p == nil {
			break
		}
		s.env = append(s.env, C.GoString(p))
	}
	s.statusFD = int(f.watch.status_fd)
	if f.watch.name != nil {
		s.name = C.GoString(f.watch.name)
	}
	if f.watch.pidfile != nil {
		s.pidfile = C.GoString(f.watch.pidfile)
	}
	if f.set_uid != 0 {
		v := uint32(f.uid)
		s.uid = &v
	}
	if f.set_gid != 0 {
		v := uint32(f.gid)
		s.gid = &v
	}
	for _, g := range f.groups[:f.ngroups] {
		s.groups = append(s.groups, uint32(g))
	}
	l := &f.lim
	s.capsSet, s.keep, s.ambient = l.caps_set != 0, uint64(l.keep), l.ambient != 0
	s.noNewPrivs, s.seccompDef = l.nnp != 0, l.seccomp_default != 0
	s.pids, s.loopbackUp = int64(l.pids), l.loopback_up != 0
	return s, true
}

// modeOf turns chmod's octal into Go's mode bits.
func modeOf(v uint32) os.FileMode {
	m := os.FileMode(v & 0o777)
	if v&0o1000 != 0 {
		m |= os.ModeSticky
	}
	if v&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if v&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	return m
}

// ipv4 turns an address in host byte order (as the C parser keeps it) into
// an Addr.
func ipv4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// forwardInstall makes the C fast path's handler (nsb_forward, which reads
// si_code) the handler of internal/abi.ForwardedSignals, replacing Go's
// until forwardRestore; signals that come before forwardTo are kept.
func forwardInstall() { C.nsb_forward_install() }

// forwardTo sends the kept signals, and every later one, to pid.
func forwardTo(pid int) { C.nsb_forward_to(C.pid_t(pid)) }

// forwardRestore puts Go's handlers back; kept signals are dropped (the
// child never existed).
func forwardRestore() { C.nsb_forward_restore() }

// fastNameOK applies the fast paths' one name check (csrc/nsb_name.h's
// nsb_name_ok) with the generated rule of kind: "netns", "link", "sandbox"
// or "pool".
func fastNameOK(kind, name string) bool {
	k := map[string]C.int{"netns": 0, "link": 1, "sandbox": 2, "pool": 3}[kind]
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return C.nsb_name_ok_rule(k, cs) != 0
}

// ctorJoinedNetns returns the namespace file the constructor joined for a
// read-only word (netns_join.go), or "".
func ctorJoinedNetns() string {
	return C.GoString(&C.nsb_joined_netns[0])
}

// fastRecord renders r with the C fast path's record writer
// (csrc/state_fast.c); ok is false when the C leaves it to Go (a byte that
// is not ASCII). Limits and Cgroup are not the C's (their flags are Go's).
func fastRecord(r *sbstate.Record) (out []byte, ok bool) {
	var cr C.struct_nsb_rec
	var strs []*C.char
	cstr := func(s string) *C.char {
		p := C.CString(s)
		strs = append(strs, p)
		return p
	}
	defer func() {
		for _, p := range strs {
			C.free(unsafe.Pointer(p))
		}
	}()
	cr.name = cstr(r.Name)
	cr.pid = C.long(r.Pid)
	cr.init_pid = C.long(r.InitPid)
	cr.nsbox_pid = C.long(r.NsboxPid)
	cr.sec = C.longlong(r.Started.Unix())
	cr.nsec = C.long(r.Started.Nanosecond())
	cr.ticks = C.ulonglong(r.StartTicks)
	for k := 0; k < C.NSB_REC_NNS; k++ {
		if v, ok := r.Namespaces[C.GoString(C.nsb_rec_ns_kind(C.int(k)))]; ok {
			cr.has_ns[k] = 1
			cr.ns[k] = C.ulonglong(v)
		}
	}
	if r.Bridge != "" {
		cr.bridge = cstr(r.Bridge)
	}
	if r.Interface != "" {
		cr.iface = cstr(r.Interface)
	}
	if len(r.Addresses) > 0 {
		cr.addr = cstr(r.Addresses[0])
	}
	argv := (**C.char)(C.calloc(C.size_t(len(r.Command)+1), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(argv))
	av := unsafe.Slice(argv, len(r.Command)+1)
	for i, a := range r.Command {
		av[i] = cstr(a)
	}
	cr.cmd = argv
	buf := (*C.char)(C.malloc(65536))
	defer C.free(unsafe.Pointer(buf))
	b := C.struct_nsb_buf{p: buf, cap: 65536}
	if C.nsb_rec_render(&cr, &b) < 0 {
		return nil, false
	}
	return C.GoBytes(unsafe.Pointer(buf), C.int(b.n)), true
}

// fastStatusLines renders the first and the last status line with the C
// fast path's writer: pid, the namespaces of the kinds in nsBits (from ns,
// by kind), with ifname (non-empty) the interface and addr ("" for none).
func fastStatusLines(pid int, ns map[string]uint64, nsBits uint64, ifname, addr string, code int) (start, end string) {
	var cr C.struct_nsb_rec
	for k := 0; k < C.NSB_REC_NNS; k++ {
		if v, ok := ns[C.GoString(C.nsb_rec_ns_kind(C.int(k)))]; ok {
			cr.has_ns[k] = 1
			cr.ns[k] = C.ulonglong(v)
		}
	}
	var iface *C.char
	if ifname != "" {
		iface = C.CString(ifname)
		defer C.free(unsafe.Pointer(iface))
	}
	if addr != "" {
		cr.addr = C.CString(addr)
		defer C.free(unsafe.Pointer(cr.addr))
	}
	buf := (*C.char)(C.malloc(4096))
	defer C.free(unsafe.Pointer(buf))
	b := C.struct_nsb_buf{p: buf, cap: 4096}
	C.nsb_status_start(&b, C.long(pid), &cr, C.ulong(nsBits), iface)
	start = C.GoStringN(buf, C.int(b.n))
	b = C.struct_nsb_buf{p: buf, cap: 4096}
	C.nsb_status_end(&b, C.int(code))
	return start, C.GoStringN(buf, C.int(b.n))
}
