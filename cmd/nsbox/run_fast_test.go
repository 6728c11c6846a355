package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/nsnet"
	"github.com/nsbox/nsbox/sandbox/caps"
	"github.com/nsbox/nsbox/sandbox/seccomp"
)

// runFastCases are command lines for the parity checks: plain ones the C
// fast path takes, and ones it must leave to Go.
var runFastCases = []string{
	"",
	"--ipc\n--pid\n--mount\n--no-init\n--uid\nnobody\n--gid\nnogroup\n--\nsh\n-c\nid -u",
	"--ipc\n--pid\n--mount\n--mount-proc\n--no-init\n/bin/true",
	"--pid\n--mount\n--no-mount-proc\ntrue",
	"--pid\n--mount-proc\nsh",
	"--mount\n--propagation\nslave\nsh",
	"--mount\n--propagation\nweird\nsh",
	"--ipc\n--propagation\nslave\nsh",
	"--hostname\nbox\nhostname",
	"--hostname\n\nhostname",
	"--uts\n--net\n--cgroup\nsh",
	"--uid\n4294967295\ntrue",
	"--uid\n12ab\ntrue",
	"--uid\nnsbox-no-user\ntrue",
	"--gid\n0\n--uid\n0\n--\ntrue\n--pid",
	"--user\n--map-root\nid",
	"--netns\nx\ntrue",
	"--init\n--no-init",
	"--ipc=true\ntrue",
	"-h",
	"--pid\n--init\nsh\n--not-a-flag-of-run",
	"--uid",
	"-\nx",
	"nsbox-no-such-command",
	"--\n--pid",
	"--uid\n\nid",
	"--gid\n\nid",
	"--propagation\n\n--mount\ntrue",
	// The limits and --sandbox.
	"--sandbox\n--\n/bin/true",
	"--sandbox\nsh",
	"--sandbox\n--cap-add\nkill\n--\ntrue",
	"--cap-add\nkill\n--sandbox\ntrue",
	"--sandbox\n--seccomp\nunconfined\n--pids\n50\ntrue",
	"--sandbox\n--setenv\nHOME=/x\n--unsetenv\nUSER\nenv",
	"--sandbox\n--clearenv\nenv",
	"--sandbox\n--gid\n0\nid",
	"--sandbox\n--tmpfs\n/tmp\n--bind\n/usr\ntrue",
	"--sandbox\n--rootfs\n/\ntrue",
	"--sandbox\n--no-mount-proc\ntrue",
	"--sandbox\n--uid\n0\ntrue",
	"--sandbox\n--memory\n64m\ntrue",
	"--sandbox\n--pool\np\ntrue",
	"--cap-drop\nALL\n--cap-add\nCAP_NET_RAW\ntrue",
	"--cap-drop\nall\n--cap-add\nAll\ntrue",
	"--cap-drop\nsys_admin\n--seccomp\ndefault\ntrue",
	"--cap-drop\nCap_Sys_Admin\ntrue",
	"--cap-add\nnot_a_cap\ntrue",
	"--cap-drop\n\ntrue",
	"--cap-drop\n sys_admin\ntrue",
	"--no-new-privs\ntrue",
	"--seccomp\ndefault\ntrue",
	"--seccomp\nunconfined\ntrue",
	"--seccomp\n/nonexistent.json\ntrue",
	"--pids\n10\ntrue",
	"--pids\n010\ntrue",
	"--pids\n0\ntrue",
	"--pids\n+5\ntrue",
	"--pids\n-1\ntrue",
	"--pids\n99999999999999999999\ntrue",
	"--net\n--pids\n5\ntrue",
	"--pids\n5\n--cgroup-parent\n/\ntrue",
	"--rlimit\nnofile=10\ntrue",
	// The view and the environment.
	"--ipc\n--pid\n--rootfs\n/\n--ro-bind\n/usr:/usr\n--ro-bind\n/lib:/lib\n--dev\n--tmpfs\n/tmp\n--\n/bin/true",
	"--root\n/tmp\n--rootfs\n/usr\n--wd\n/x\n--chdir\n/bin\n/bin/true",
	"--ro-root\n--bind\n/etc/hostname:/h\n--ro-bind\n/tmp\n--tmpfs\n/t:size=1m,mode=1777\n--tmpfs\n/u:mode=0,size=3G\n/bin/sh",
	"--tmpfs\n/t:mode=07777\n--tmpfs\n/t2:size=18446744073709551615\n--tmpfs\n/t3:\n/bin/true",
	"--tmpfs\n/t:size=16777216T\n/bin/true",
	"--tmpfs\n/t:size=17179869184g\n/bin/true",
	"--tmpfs\n/t:mode=10000\n/bin/true",
	"--tmpfs\n/t:mode=8\n/bin/true",
	"--tmpfs\n/t:size=1m,\n/bin/true",
	"--tmpfs\n/t:size=+1\n/bin/true",
	"--tmpfs\n/t:size=0\n/bin/true",
	"--tmpfs\n/t/\n/bin/true",
	"--tmpfs\n/\n/bin/true",
	"--tmpfs\nrel\n/bin/true",
	"--bind\nusr\n/bin/true",
	"--bind\n/usr:/a/../b\n/bin/true",
	"--bind\n/nonexistent-nsbox\n/bin/true",
	"--bind\n/usr:\n/bin/true",
	"--bind\n:/x\n/bin/true",
	"--dev\n--dev\n--propagation\nshared\n/bin/true",
	"--dev\n--propagation\nslave\n--net\n/bin/true",
	"--rootfs\n/etc/hostname\n/bin/true",
	"--rootfs\n/usr/\n/bin/true",
	"--chdir\nrel\n/bin/true",
	"--clearenv\n--setenv\nA=1\n--setenv\nB=x=y\n--unsetenv\nA\n--setenv\nB=2\n/usr/bin/env",
	"--setenv\nPATH=/usr/sbin:/bin\n--unsetenv\nHOME\nsh",
	"--clearenv\nsh",
	"--setenv\n=x\ntrue",
	"--setenv\nNOVALUE\ntrue",
	"--unsetenv\nA=B\ntrue",
	"--dev=true\ntrue",
	"--ro-root\nsh",
	// PATH through the view: a bind's source, under the root, nothing
	// on a fresh tmpfs.
	"--rootfs\n/\nsh",
	"--rootfs\n/tmp\n--ro-bind\n/usr:/usr\n--setenv\nPATH=/usr/bin\nsh",
	"--rootfs\n/tmp\n--ro-bind\n/usr/bin:/opt/b\n--setenv\nPATH=/x:/opt/b\nsh",
	"--rootfs\n/tmp\n--ro-bind\n/usr:/usr\n--tmpfs\n/usr/bin\n--setenv\nPATH=/usr/bin:/usr/sbin\nsh",
	"--tmpfs\n/usr\nsh",
	"--dev\n--setenv\nPATH=/dev:/bin\nsh",
	"--rootfs\n/usr\n--setenv\nPATH=bin\nsh",
	"--rootfs\n/tmp\nsh",
	// With a rootfs, a group name is the rootfs's /etc/group's (Go's).
	"--rootfs\n/tmp\n--gid\nnogroup\n/bin/true",
	"--rootfs\n/tmp\n--gid\n65534\n/bin/true",
	// --name, --status-fd, --pidfile.
	"--name\nweb-1.x_y\n--status-fd\n2\n--pidfile\n/tmp/nsbox.pid\n/bin/true",
	"--name\nA\n--pid\n--net\nsh",
	"--name\na/b\ntrue",
	"--name\n..\ntrue",
	"--name\n.x\ntrue",
	"--name\n-x\ntrue",
	"--name\n\ntrue",
	"--name\nn\u00e9\ntrue",
	"--name\n" + strings.Repeat("n", 64) + "\ntrue",
	"--name\n" + strings.Repeat("n", 65) + "\ntrue",
	"--name\nx\n--name\ny\ntrue",
	"--name\nx\necho\nh\u00e9",
	"--status-fd\n1\ntrue",
	"--status-fd\n01\ntrue",
	"--status-fd\n0x1\ntrue",
	"--status-fd\n-1\ntrue",
	"--status-fd\n-2\ntrue",
	"--status-fd\n+1\ntrue",
	"--status-fd\n1_0\ntrue",
	"--status-fd\n99999\ntrue",
	"--status-fd\n\ntrue",
	"--pidfile\n/tmp/p\n--pidfile\n/p\ntrue",
	"--pidfile\nrel\ntrue",
	"--pidfile\n/\ntrue",
	"--pidfile\n/tmp/\ntrue",
	"--pidfile\n/nonexistent-nsbox/p\ntrue",
	"--pidfile\n/etc/hostname/p\ntrue",
	"--name\nx\n--pool\np\n--net\ntrue",
}

// runNetFastCases are whole command lines (the words after "nsbox") for the
// parity checks of the static network: ones the C fast path takes, and ones
// it must leave to Go.
var runNetFastCases = []string{
	"-n\nlab\nrun\n--net\n--bridge\nbr0\n--addr\n10.80.1.2/22\n--gateway\n10.80.0.1\n--\n/bin/true",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\ntrue",
	"run\n--pid\n--net\n--bridge\nbr0\n--addr\n192.168.7.9/31\n--gateway\n192.168.7.8\n--ifname\nveth-in\nsh",
	"run\n--net\n--bridge\nbr0\n--addr\n10.1.2.3/32\n--hostname\nbox\n--gid\n0\nid",
	"run\n--net\n--ifname\neth1\n--bridge\nbr0\n--addr\n172.16.0.5/12\n--gateway\n172.31.255.254",
	// Left to Go (usage errors, or unusual).
	"-n\nlab\nrun\n--net\ntrue",
	"-n\nlab\nrun\n--pid\ntrue",
	"-n\n\nrun\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24",
	"-n\na/b\nrun\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24",
	"-n\nlab\nnetns\nlist",
	"--netns\nlab\nrun\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24",
	"-nlab\nrun\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24",
	"-j\nrun\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24",
	"run\n--bridge\nbr0\n--addr\n10.0.0.2/24\ntrue",
	"run\n--net\n--bridge\nbr0\ntrue",
	"run\n--net\n--bridge\nbr0\n--dhcp\ntrue",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--dhcp-timeout\n2s",
	"run\n--net\n--addr\n10.0.0.2/24\ntrue",
	"run\n--net\n--gateway\n10.0.0.1\ntrue",
	"run\n--net\n--bridge\n\n--addr\n10.0.0.2/24",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.0/24",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/33",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/024",
	"run\n--net\n--bridge\nbr0\n--addr\n010.0.0.2/24",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/0",
	"run\n--net\n--bridge\nbr0\n--addr\n127.0.0.2/8",
	"run\n--net\n--bridge\nbr0\n--addr\n224.0.0.2/24",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.255/24",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--ifname\neth%d",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--ifname\ne\x01",
	"run\n--net\n--bridge\nbr0\n--addr\nfd00::2/64\n--gateway\nfd00::1",
	"run\n--net\n--bridge\nbr0\n--addr\n::ffff:10.0.0.2/120",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--gateway\n10.0.1.1",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--gateway\n10.0.0.2",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--gateway\n",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--ifname\n",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--ifname\neth0:1",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--ifname\neth%d",
	"run\n--net\n--bridge\nbridge-name-too-long\n--addr\n10.0.0.2/24",
	"run\n--net\n--bridge\nbr 0\n--addr\n10.0.0.2/24",
	"run\n--net\n--bridge\nbr0\n--addr=10.0.0.2/24",
	"run\n--net\n--netns\nx\n--bridge\nbr0\n--addr\n10.0.0.2/24",
}

// checkFastParity fails t if the C fast path accepts the command line words
// (after "nsbox") but Go's parsers do not, or build a different spec or
// network.
func checkFastParity(t *testing.T, words []string) {
	t.Helper()
	env := os.Environ()
	fs, ok := fastParseArgv(words, env)
	if !ok {
		return // Go handles it: nothing to compare
	}
	e := newEnv(nil, io.Discard, io.Discard)
	rest, batch, help, err := e.globalFlags(words)
	if err != nil || batch != "" || help || e.json || len(rest) == 0 || rest[0] != "run" {
		t.Fatalf("%q: C fast path accepts, Go's global flags give %q, %v", words, rest, err)
	}
	args := rest[1:]
	o, err := parseRunArgs(args)
	if err != nil {
		t.Fatalf("%q: C fast path accepts, Go refuses: %v", args, err)
	}
	if o.help || o.user || o.netns != "" || o.dhcp || o.mapRoot || (e.netns != "" && o.bridge == "") {
		t.Fatalf("%q: C fast path accepts what it must leave to Go", words)
	}
	checkFastNetParity(t, words, fs, e.netns, o)
	if fs.pool != o.pool || (o.pool != "" && (o.poolTimeout != defaultPoolTimeout || len(o.publish) > 0 || o.nat)) {
		t.Errorf("%q: pool C %q, Go %q (timeout %s, publish %q, nat %v)", words, fs.pool, o.pool, o.poolTimeout, o.publish, o.nat)
	}
	// --publish (csrc/nft_fast.c): what C took, Go's parsePublish takes
	// alike, with --bridge and without a port twice.
	if len(fs.publish) != len(o.publish) || (len(o.publish) > 0 && o.bridge == "") {
		t.Errorf("%q: C took %d --publish, Go has %q (bridge %q)", words, len(fs.publish), o.publish, o.bridge)
	}
	seen := map[string]bool{}
	for i := range fs.publish {
		if i >= len(o.publish) {
			break
		}
		p, err := parsePublish(o.publish[i])
		if err != nil || p != fs.publish[i] {
			t.Errorf("%q: --publish %q: C %+v, Go %+v, %v", words, o.publish[i], fs.publish[i], p, err)
		}
		k := fmt.Sprintf("%s/%d", p.proto, p.hostPort)
		if seen[k] || p.hostIP.IsLoopback() {
			t.Errorf("%q: C took --publish %q, which Go refuses or treats apart", words, o.publish[i])
		}
		seen[k] = true
	}
	s, err := o.spec()
	if err != nil {
		t.Fatalf("%q: C fast path accepts, Go's spec fails: %v", args, err)
	}
	if uint64(s.Namespaces) != fs.ns {
		t.Errorf("%q: namespaces C %#x, Go %#x", args, fs.ns, uint64(s.Namespaces))
	}
	wantProp := map[string]uint64{"": unix.MS_REC | unix.MS_PRIVATE, "private": unix.MS_REC | unix.MS_PRIVATE,
		"slave": unix.MS_REC | unix.MS_SLAVE, "shared": unix.MS_REC | unix.MS_SHARED, "unchanged": 0}[s.Propagation]
	if s.Namespaces&nsclone.Mnt == 0 {
		wantProp = 0
	}
	if fs.propagation != wantProp || fs.propagationOK != (s.Propagation != "") {
		t.Errorf("%q: propagation C %#x (given %v), Go %q", args, fs.propagation, fs.propagationOK, s.Propagation)
	}
	if fs.mountProc != s.MountProc || fs.init != s.Init || fs.hostname != s.Hostname {
		t.Errorf("%q: C proc %v init %v hostname %q; Go %v %v %q", args, fs.mountProc, fs.init, fs.hostname, s.MountProc, s.Init, s.Hostname)
	}
	same := func(a, b *uint32) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	if !same(fs.uid, s.UID) || !same(fs.gid, s.GID) {
		t.Errorf("%q: ids differ between C and Go", args)
	}
	goArgs := s.Args
	var cArgs []string
	if fs.cmdIndex < len(args) {
		cArgs = args[fs.cmdIndex:]
	} else {
		cArgs = []string{fs.path}
	}
	if strings.Join(cArgs, "\x00") != strings.Join(goArgs, "\x00") {
		t.Errorf("%q: command C %q, Go %q", args, cArgs, goArgs)
	}
	checkFastViewParity(t, args, fs, s)
	if fs.name != o.name || fs.statusFD != o.statusFD || fs.pidfile != o.pidfile {
		t.Errorf("%q: C name %q status-fd %d pidfile %q; Go %q %d %q", args, fs.name, fs.statusFD, fs.pidfile, o.name, o.statusFD, o.pidfile)
	}
	checkFastLimitsParity(t, args, fs, s)
	wantPath := s.Path
	if p, err := s.LookPath(); err == nil {
		wantPath = p // through the view, as Start finds it
	}
	if fs.path != wantPath {
		t.Errorf("%q: path C %q, Go %q", args, fs.path, wantPath)
	}
}

// checkFastViewParity compares the C parser's view and environment with
// Go's spec.
func checkFastViewParity(t *testing.T, args []string, fs fastSpec, s *nsclone.Spec) {
	t.Helper()
	if fs.root != s.Root || fs.roRoot != s.ReadOnlyRoot || fs.chdir != s.Dir {
		t.Errorf("%q: C root %q ro %v dir %q; Go %q %v %q", args, fs.root, fs.roRoot, fs.chdir, s.Root, s.ReadOnlyRoot, s.Dir)
	}
	if !reflect.DeepEqual(fs.fs, s.FS) {
		t.Errorf("%q: C view %+v; Go %+v", args, fs.fs, s.FS)
	}
	if strings.Join(fs.env, "\x00") != strings.Join(s.Env, "\x00") || len(fs.env) != len(s.Env) {
		t.Errorf("%q: C environment %q; Go %q", args, fs.env, s.Env)
	}
}

// checkFastLimitsParity compares the C parser's limits and groups with Go's
// spec, and what the child applies with what nsclone's planLimits makes of
// the spec (ambient capabilities, no_new_privs implied by seccomp).
func checkFastLimitsParity(t *testing.T, args []string, fs fastSpec, s *nsclone.Spec) {
	t.Helper()
	if (s.Capabilities != nil) != fs.capsSet || (fs.capsSet && uint64(*s.Capabilities) != fs.keep) {
		t.Errorf("%q: capabilities C set %v keep %#x; Go %v", args, fs.capsSet, fs.keep, s.Capabilities)
	}
	if fs.seccompDef != (s.Seccomp != nil) || (s.Seccomp != nil && s.Seccomp != seccomp.Default()) {
		t.Errorf("%q: seccomp C default %v; Go %p", args, fs.seccompDef, s.Seccomp)
	}
	finalUID := uint32(os.Geteuid())
	if s.UID != nil {
		finalUID = *s.UID
	}
	sysAdmin := false
	if s.Capabilities != nil {
		sysAdmin = s.Capabilities.Has(capability.CAP_SYS_ADMIN)
		if want := finalUID != 0 && *s.Capabilities != 0; fs.ambient != want {
			t.Errorf("%q: ambient C %v, Go %v", args, fs.ambient, want)
		}
	} else if finalUID == 0 || s.UID == nil {
		eff, err := caps.Effective()
		sysAdmin = err == nil && eff.Has(capability.CAP_SYS_ADMIN)
	}
	if want := s.NoNewPrivs || (s.Seccomp != nil && !sysAdmin); fs.noNewPrivs != want {
		t.Errorf("%q: no_new_privs C %v, Go %v", args, fs.noNewPrivs, want)
	}
	var pids int64
	if s.Cgroup != nil {
		if s.Cgroup.Memory != 0 || s.Cgroup.MemorySwap != 0 || s.Cgroup.CPUs != 0 || s.Cgroup.Parent != "" {
			t.Errorf("%q: C takes a cgroup it does not make: %+v", args, *s.Cgroup)
		}
		pids = s.Cgroup.Pids
	}
	if fs.pids != pids || fs.loopbackUp != s.LoopbackUp || len(s.Rlimits) != 0 {
		t.Errorf("%q: C pids %d lo %v; Go %d %v (rlimits %v)", args, fs.pids, fs.loopbackUp, pids, s.LoopbackUp, s.Rlimits)
	}
	if fmt.Sprint(fs.groups) != fmt.Sprint(s.Groups) {
		t.Errorf("%q: groups C %v, Go %v", args, fs.groups, s.Groups)
	}
}

// checkFastNetParity compares the C parser's network with what runMain's
// networkConfig builds from the same options (short of opening anything).
func checkFastNetParity(t *testing.T, words []string, fs fastSpec, bridgeNS string, o *runOptions) {
	t.Helper()
	if fs.net != (o.bridge != "") {
		t.Fatalf("%q: network C %v, Go bridge %q", words, fs.net, o.bridge)
	}
	if !fs.net {
		return
	}
	cfg := nsnet.Config{Bridge: o.bridge, IfName: o.ifname}
	var err error
	if cfg.Addr, err = netip.ParsePrefix(o.addr); err != nil {
		t.Fatalf("%q: C takes --addr %q, Go: %v", words, o.addr, err)
	}
	if o.gateway != "" {
		if cfg.Gateway, err = netip.ParseAddr(o.gateway); err != nil {
			t.Fatalf("%q: C takes --gateway %q, Go: %v", words, o.gateway, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%q: C takes the network, Go's Validate refuses: %v", words, err)
	}
	if bridgeNS != "" {
		if err := netns.ValidateName(bridgeNS); err != nil || strings.Contains(bridgeNS, "/") {
			t.Fatalf("%q: C takes -n %q, netns.Open would not: %v", words, bridgeNS, err)
		}
	}
	wantIf := o.ifname
	if wantIf == "" {
		wantIf = "eth0"
	}
	if !o.net || fs.ns&unix.CLONE_NEWNET == 0 {
		t.Errorf("%q: --bridge without a new network namespace", words)
	}
	if fs.bridgeNS != bridgeNS || fs.bridge != cfg.Bridge || fs.ifname != wantIf {
		t.Errorf("%q: C -n %q bridge %q ifname %q; Go %q %q %q", words, fs.bridgeNS, fs.bridge, fs.ifname,
			bridgeNS, cfg.Bridge, wantIf)
	}
	if fs.addr != cfg.Addr || fs.gateway != cfg.Gateway {
		t.Errorf("%q: C addr %v gateway %v; Go %v %v", words, fs.addr, fs.gateway, cfg.Addr, cfg.Gateway)
	}
}

func splitArgs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestRunFastParity(t *testing.T) {
	accepted := 0
	for _, c := range runFastCases {
		checkFastParity(t, append([]string{"run"}, splitArgs(c)...))
		if _, ok := fastParse(splitArgs(c), os.Environ()); ok {
			accepted++
		}
	}
	for _, c := range runNetFastCases {
		checkFastParity(t, splitArgs(c))
		if _, ok := fastParseArgv(splitArgs(c), os.Environ()); ok {
			accepted++
		}
	}
	// The fast path must really take the plain cases (else it is dead code).
	for _, c := range []string{"", "--ipc\n--pid\n--mount\n--mount-proc\n--no-init\n/bin/true",
		"--ipc\n--pid\n--mount\n--no-init\n--gid\nnogroup\n--\nsh\n-c\nid -g",
		// The view and the environment (issue 10's benchmark line).
		"--ipc\n--pid\n--rootfs\n/\n--ro-bind\n/usr:/usr\n--ro-bind\n/lib:/lib\n--dev\n--tmpfs\n/tmp\n--\n/bin/true",
		"--ro-root\n--bind\n/etc/hostname:/h\n--tmpfs\n/t:size=1m,mode=1777\n--clearenv\n--setenv\nA=1\n/usr/bin/env",
		// A numeric --uid: its user's group, groups and HOME, USER, LOGNAME
		// from the host's /etc (nsb_user), with or without a view.
		"--uid\n0\n--gid\n0\ntrue", "--sandbox\n--uid\n0\n--gid\n0\ntrue", "--ro-root\n--dev\n--uid\n65534\ntrue"} {
		if _, ok := fastParse(splitArgs(c), os.Environ()); !ok {
			t.Errorf("%q: the C fast path does not take this plain command line", splitArgs(c))
		}
	}
	for _, c := range []string{"--user\n--map-root\nid", "--netns\nx\ntrue", "--bogus", "-h", "--uid\nnsbox-no-user\ntrue",
		// A user's name, or a numeric --uid with a rootfs (its /etc): Go.
		"--uid\nnobody\ntrue", "--rootfs\n/\n--uid\n0\ntrue",
		// Relative paths, paths Clean would change, a view's PATH lookup.
		"--bind\nusr\ntrue", "--tmpfs\n/t/\ntrue", "--rootfs\n/usr/\ntrue"} {
		if _, ok := fastParse(splitArgs(c), os.Environ()); ok {
			t.Errorf("%q: the C fast path takes what Go must handle", splitArgs(c))
		}
	}
	t.Logf("C fast path takes %d of %d command lines", accepted, len(runFastCases)+len(runNetFastCases))
}

// TestRunNetFastTakes: the C fast path takes the static networks (else the
// networking fast path is dead code) with the values given, and leaves the
// rest to Go.
func TestRunNetFastTakes(t *testing.T) {
	fs, ok := fastParseArgv(splitArgs(runNetFastCases[0]), os.Environ())
	if !ok {
		t.Fatalf("%q: the C fast path does not take it", splitArgs(runNetFastCases[0]))
	}
	if !fs.net || fs.bridgeNS != "lab" || fs.bridge != "br0" || fs.ifname != "eth0" ||
		fs.addr != netip.MustParsePrefix("10.80.1.2/22") || fs.gateway != netip.MustParseAddr("10.80.0.1") ||
		fs.ns != unix.CLONE_NEWNET || fs.path != "/bin/true" {
		t.Errorf("C parsed %+v", fs)
	}
	for _, c := range runNetFastCases[1:5] {
		if _, ok := fastParseArgv(splitArgs(c), os.Environ()); !ok {
			t.Errorf("%q: the C fast path does not take this static network", splitArgs(c))
		}
	}
	for _, c := range runNetFastCases[5:] {
		if _, ok := fastParseArgv(splitArgs(c), os.Environ()); ok {
			t.Errorf("%q: the C fast path takes what Go must handle", splitArgs(c))
		}
	}
}

// runPoolFastCases are whole command lines with --pool (pool_fast.c): the
// first five are the fast path's (the last two with a new mount namespace,
// which gets the slot's resolv.conf), the rest Go's.
// runPublishFastCases are command lines with --publish: C takes those with
// --bridge --addr and values it parses exactly as Go.
var runPublishFastCases = []string{
	"-n\nlab\nrun\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--publish\n8080:80\n--publish\n10.1.2.3:53:53/udp\ntrue",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--publish\n65535:1/tcp\ntrue",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--publish\n080:80\ntrue",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--publish\n127.0.0.1:80:80\ntrue",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--publish\n80:80\n--publish\n80:81\ntrue",
	"run\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--publish\n80:80/sctp\ntrue",
	"run\n--net\n--publish\n80:80\ntrue",
	"run\n--net\n--bridge\nbr0\n--dhcp\n--publish\n80:80\ntrue",
}

var runPoolFastCases = []string{
	"run\n--pool\np1\n--net\n--\ntrue",
	"run\n--pool\na.b_c-9\n--pid\n--ipc\nid",
	"run\n--pool\np1\n--pid\n--no-init\n--uts\n--hostname\nbox\ntrue",
	"run\n--pool\np1\ntrue",
	"run\n--pool\np1\n--pid\n--mount\ntrue",
	"run\n--pool\np1\n--root\n/\ntrue",
	"run\n--pool\n.p\n--net\ntrue",
	"run\n--pool\np/1\n--net\ntrue",
	"run\n--pool\np1\n--net\n--bridge\nbr0\n--addr\n10.0.0.2/24",
	"run\n--pool\np1\n--pool-timeout\n1s\n--net\ntrue",
	"run\n--pool\np1\n--net\n--publish\n80:80\ntrue",
	"-n\nlab\nrun\n--pool\np1\n--net\ntrue",
}

// TestRunPoolFastTakes: the C fast path takes --pool, with or without a new
// mount namespace (else it is dead code), with the name given, and leaves
// the rest (a view, other network flags, bad names) to Go.
func TestRunPoolFastTakes(t *testing.T) {
	for i, c := range runPoolFastCases {
		checkFastParity(t, splitArgs(c))
		fs, ok := fastParseArgv(splitArgs(c), os.Environ())
		if ok != (i < 5) {
			t.Errorf("%q: C fast path takes it: %v, want %v", splitArgs(c), ok, i < 5)
		}
		if ok && (fs.pool != splitArgs(c)[2] || fs.net || (fs.ns&unix.CLONE_NEWNS != 0) != (i >= 3)) {
			t.Errorf("%q: C parsed %+v", splitArgs(c), fs)
		}
	}
}

// FuzzRunFastParity: whatever the C fast path accepts, Go accepts with the
// same spec and network. Go's parser is the one source of truth for run's
// flags. The input is the command line after "nsbox", one word a line.
func FuzzRunFastParity(f *testing.F) {
	for _, c := range runFastCases {
		f.Add("run\n" + c)
	}
	for _, c := range append(append(runNetFastCases, runPoolFastCases...), runPublishFastCases...) {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return // C strings cannot hold NUL: argv never does
		}
		checkFastParity(t, splitArgs(s))
	})
}
