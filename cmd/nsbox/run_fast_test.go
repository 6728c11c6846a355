package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/nsclone"
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
}

// checkFastParity fails t if the C fast path accepts args but Go's parser
// does not, or builds a different spec.
func checkFastParity(t *testing.T, args []string) {
	t.Helper()
	env := os.Environ()
	fs, ok := fastParse(args, env)
	if !ok {
		return // Go handles it: nothing to compare
	}
	o, err := parseRunArgs(args)
	if err != nil {
		t.Fatalf("%q: C fast path accepts, Go refuses: %v", args, err)
	}
	if o.help || o.user || o.netns != "" || o.bridge != "" || o.mapRoot {
		t.Fatalf("%q: C fast path accepts what it must leave to Go", args)
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
	wantPath := s.Path
	if !strings.Contains(wantPath, "/") {
		if p, err := exec.LookPath(wantPath); err == nil {
			wantPath = p
		}
	}
	if fs.path != wantPath {
		t.Errorf("%q: path C %q, Go %q", args, fs.path, wantPath)
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
		checkFastParity(t, splitArgs(c))
		if _, ok := fastParse(splitArgs(c), os.Environ()); ok {
			accepted++
		}
	}
	// The fast path must really take the plain cases (else it is dead code).
	for _, c := range []string{"", "--ipc\n--pid\n--mount\n--mount-proc\n--no-init\n/bin/true",
		"--ipc\n--pid\n--mount\n--no-init\n--uid\nnobody\n--gid\nnogroup\n--\nsh\n-c\nid -u"} {
		if _, ok := fastParse(splitArgs(c), os.Environ()); !ok {
			t.Errorf("%q: the C fast path does not take this plain command line", splitArgs(c))
		}
	}
	for _, c := range []string{"--user\n--map-root\nid", "--netns\nx\ntrue", "--bogus", "-h", "--uid\nnsbox-no-user\ntrue"} {
		if _, ok := fastParse(splitArgs(c), os.Environ()); ok {
			t.Errorf("%q: the C fast path takes what Go must handle", splitArgs(c))
		}
	}
	t.Logf("C fast path takes %d of %d command lines", accepted, len(runFastCases))
}

// FuzzRunFastParity: whatever the C fast path accepts, Go accepts with the
// same spec. Go's parser is the one source of truth for run's flags.
func FuzzRunFastParity(f *testing.F) {
	for _, c := range runFastCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return // C strings cannot hold NUL: argv never does
		}
		checkFastParity(t, splitArgs(s))
	})
}
