package nsclone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// The test binary doubles as a probe: with NSCLONE_PROBE=1 it reports what
// it sees as JSON on fd 3 and exits with NSCLONE_PROBE_EXIT. With
// NSCLONE_ROOTLESS=1 it runs the rootless check (it is started as uid 65534).
func TestMain(m *testing.M) {
	switch {
	case os.Getenv("NSCLONE_PROBE") == "1":
		os.Exit(probeMain())
	case os.Getenv("NSCLONE_ROOTLESS") == "1":
		os.Exit(rootlessMain())
	case os.Getenv("NSCLONE_CGKILL") == "1":
		os.Exit(cgKillMain())
	case os.Getenv("NSCLONE_CLONE3_ENOSYS") == "1":
		os.Exit(clone3FallbackMain())
	case os.Getenv("NSCLONE_PDEATH") != "":
		os.Exit(pdeathMain(os.Getenv("NSCLONE_PDEATH")))
	}
	dir, err := os.MkdirTemp("", "nsclone-probe")
	if err == nil {
		probeBin, err = copyProbe(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nsclone test: prepare probe:", err)
		os.Exit(1)
	}
	code := testutil.MainWithLeakCheck(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// probeBin is a copy of the test binary in a world-readable folder, so that
// a probe that dropped to uid 65534 can still exec it.
var probeBin string

func copyProbe(dir string) (string, error) {
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(self)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "probe")
	return p, os.WriteFile(p, data, 0o755)
}

// report is what a probe sees.
type report struct {
	UID, GID, PID, PPID int
	Groups              []int
	Hostname            string
	Pids                []int // numeric entries of /proc
	Mountinfo           string
	UIDMap              string
	Cwd                 string
	FDs                 []int
	SigBlk, SigCgt      string
	NetNS               string
}

func probeMain() int {
	r := report{UID: os.Getuid(), GID: os.Getgid(), PID: os.Getpid(), PPID: os.Getppid()}
	r.Groups, _ = os.Getgroups()
	r.Hostname, _ = os.Hostname()
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil {
				r.Pids = append(r.Pids, n)
			}
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	r.Mountinfo = string(mi)
	um, _ := os.ReadFile("/proc/self/uid_map")
	r.UIDMap = strings.Join(strings.Fields(string(um)), " ")
	r.Cwd, _ = os.Getwd()
	r.NetNS, _ = os.Readlink("/proc/self/ns/net")
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			n, _ := strconv.Atoi(e.Name())
			r.FDs = append(r.FDs, n)
		}
	}
	out := os.NewFile(3, "report")
	if err := json.NewEncoder(out).Encode(&r); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 99
	}
	out.Close()
	if s := os.Getenv("NSCLONE_PROBE_WAIT"); s != "" {
		// Stay alive until stdin closes (the test observes us meanwhile).
		io.Copy(io.Discard, os.Stdin)
	}
	n, _ := strconv.Atoi(os.Getenv("NSCLONE_PROBE_EXIT"))
	return n
}

// probeSpec returns a spec that runs the probe with its report on a pipe;
// read the report with the returned function after the spawn.
func probeSpec(t *testing.T, env ...string) (*Spec, func() report) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	s := &Spec{
		Path:       probeBin,
		Args:       []string{"probe"},
		Env:        append([]string{"NSCLONE_PROBE=1", "PATH=/usr/bin:/bin"}, env...),
		ExtraFiles: []*os.File{w},
		Stderr:     os.Stderr,
	}
	return s, func() report {
		t.Helper()
		w.Close()
		var rep report
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read probe report: %v", err)
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatalf("decode probe report %q: %v", data, err)
		}
		return rep
	}
}

func u32(v uint32) *uint32 { return &v }

func run(t *testing.T, s *Spec) ExitStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := Run(ctx, s)
	if err != nil {
		t.Fatalf("Run %s: %v", s.Path, err)
	}
	return st
}

// procMounts returns the mountinfo lines whose mount point is /proc.
func procMounts(mountinfo string) []string {
	var out []string
	for _, l := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == "/proc" {
			out = append(out, l)
		}
	}
	return out
}

// The walkthrough's spawn, through the probe: nobody, PID 1, only itself in
// /proc, a fresh /proc mounted, the hostname set.
func TestProbeWalkthrough(t *testing.T) {
	testutil.RequirePriv(t)
	hostBefore, _ := os.Hostname()
	for _, init := range []bool{false, true} {
		t.Run(fmt.Sprintf("init=%v", init), func(t *testing.T) {
			s, read := probeSpec(t)
			s.Namespaces = IPC | PID | Mnt | UTS
			s.MountProc = true
			s.Hostname = "box-" + testutil.UniqueName("h")
			s.UID, s.GID = u32(65534), u32(65534)
			s.Init = init
			s.Dir = "/"
			if st := run(t, s); st.Code() != 0 {
				t.Fatalf("probe exited %v", st)
			}
			rep := read()
			if rep.UID != 65534 || rep.GID != 65534 || len(rep.Groups) != 0 {
				t.Errorf("ids: uid %d gid %d groups %v, want 65534 65534 []", rep.UID, rep.GID, rep.Groups)
			}
			if rep.Hostname != s.Hostname {
				t.Errorf("hostname %q, want %q", rep.Hostname, s.Hostname)
			}
			wantPid, wantPids := 1, []int{1}
			if init {
				wantPid, wantPids = 2, []int{1, 2}
			}
			sort.Ints(rep.Pids)
			if rep.PID != wantPid || fmt.Sprint(rep.Pids) != fmt.Sprint(wantPids) {
				t.Errorf("pid %d, /proc shows %v; want %d and %v", rep.PID, rep.Pids, wantPid, wantPids)
			}
			if init && rep.PPID != 1 {
				t.Errorf("ppid %d, want the init (1)", rep.PPID)
			}
			if pm := procMounts(rep.Mountinfo); len(pm) == 0 || !strings.Contains(pm[len(pm)-1], " - proc ") {
				t.Errorf("no proc on /proc in the child's mountinfo: %q", pm)
			}
			if rep.Cwd != "/" {
				t.Errorf("cwd %q, want /", rep.Cwd)
			}
		})
	}
	if h, _ := os.Hostname(); h != hostBefore {
		t.Errorf("host's hostname changed from %q to %q", hostBefore, h)
	}
}

// Signals: the payload starts with no blocked and no caught signal, whatever
// the Go runtime installed in the parent.
func TestSignalsReset(t *testing.T) {
	testutil.RequirePriv(t)
	for _, init := range []bool{false, true} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		s := &Spec{Path: "/bin/cat", Args: []string{"cat", "/proc/self/status"}, Stdout: w, Namespaces: PID | Mnt, Init: init}
		st := run(t, s)
		w.Close()
		out, _ := io.ReadAll(r)
		r.Close()
		if st.Code() != 0 {
			t.Fatalf("cat: %v", st)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "SigBlk:") || strings.HasPrefix(l, "SigCgt:") {
				if v := strings.TrimSpace(strings.SplitN(l, ":", 2)[1]); strings.Trim(v, "0") != "" {
					t.Errorf("init=%v: payload starts with %s", init, l)
				}
			}
		}
	}
}

func TestExitCodes(t *testing.T) {
	testutil.RequirePriv(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "noexec.sh")
	if err := os.WriteFile(script, []byte("echo hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte{0x7f, 'E', 'L', 'F', 0, 0, 0}, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		ns         Namespace
		init       bool
		args       []string
		code       int
		signaled   bool
		stage      Stage
		errno      unix.Errno
		errContain string
	}{
		{name: "exit 7", ns: IPC | PID | Mnt, args: []string{"/bin/sh", "-c", "exit 7"}, code: 7},
		{name: "exit 7 with init", ns: IPC | PID | Mnt, init: true, args: []string{"/bin/sh", "-c", "exit 7"}, code: 7},
		{name: "signal without init", ns: IPC | Mnt, args: []string{"/bin/sh", "-c", "kill -TERM $$"}, code: 143, signaled: true},
		{name: "signal with init", ns: IPC | PID | Mnt, init: true, args: []string{"/bin/sh", "-c", "kill -TERM $$"}, code: 143},
		{name: "not found", ns: PID, args: []string{"/nonexistent/nsclone-x"}, stage: StageExec, errno: unix.ENOENT,
			errContain: "nsclone: child setup: exec /nonexistent/nsclone-x: no such file or directory"},
		{name: "not found in PATH", ns: PID, args: []string{"nsclone-no-such-cmd"}, stage: StageExec, errno: unix.ENOENT},
		{name: "not found with init", ns: PID | Mnt, init: true, args: []string{"/nonexistent/x"}, stage: StageExec, errno: unix.ENOENT},
		{name: "not executable", ns: PID, args: []string{script}, stage: StageExec, errno: unix.EACCES},
		{name: "directory", ns: PID, args: []string{dir}, stage: StageExec, errno: unix.EACCES},
		{name: "bad format", ns: PID, args: []string{garbage}, stage: StageExec, errno: unix.ENOEXEC},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Spec{Path: c.args[0], Args: c.args, Namespaces: c.ns, Init: c.init, MountProc: c.ns&(PID|Mnt) == PID|Mnt}
			st, err := Run(context.Background(), s)
			if c.stage != "" {
				var se *SetupError
				if !errors.As(err, &se) || se.Stage != c.stage || !errors.Is(err, c.errno) {
					t.Fatalf("Run: %v; want a %s error wrapping %v", err, c.stage, c.errno)
				}
				if c.errContain != "" && err.Error() != c.errContain {
					t.Errorf("error %q, want %q", err, c.errContain)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Code() != c.code || st.Signaled() != c.signaled {
				t.Errorf("status %v (code %d, signaled %v), want code %d signaled %v", st, st.Code(), st.Signaled(), c.code, c.signaled)
			}
		})
	}
}

// Setup failures name their stage and wrap the errno, and leave no child.
func TestSetupErrors(t *testing.T) {
	testutil.RequirePriv(t)
	cases := []struct {
		name  string
		spec  Spec
		stage Stage
		errno unix.Errno
		msg   string
	}{
		{"mount on missing dir", Spec{Namespaces: Mnt, Mounts: []Mount{{Source: "none", Target: "/nonexistent-nsclone", FSType: "tmpfs"}}},
			StageMount, unix.ENOENT, "nsclone: child setup: mount none on /nonexistent-nsclone: no such file or directory"},
		{"unknown fs", Spec{Namespaces: Mnt, Mounts: []Mount{{Source: "x", Target: "/mnt", FSType: "nsclonefs"}}},
			StageMount, unix.ENODEV, ""},
		{"setns into a non-namespace", Spec{Join: map[Namespace]string{Net: "/dev/null"}}, StageSetns, unix.EINVAL,
			"nsclone: child setup: setns /dev/null: invalid argument"},
		{"join missing file", Spec{Join: map[Namespace]string{Net: "/run/netns/nsclone-none"}}, StageOpen, unix.ENOENT, ""},
		{"chdir", Spec{Dir: "/nonexistent-nsclone"}, StageChdir, unix.ENOENT, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.spec
			s.Path, s.Args = "/bin/true", []string{"true"}
			_, err := Run(context.Background(), &s)
			var se *SetupError
			if !errors.As(err, &se) || se.Stage != c.stage || !errors.Is(err, c.errno) {
				t.Fatalf("Run: %v; want a %s error wrapping %v", err, c.stage, c.errno)
			}
			if c.msg != "" && err.Error() != c.msg {
				t.Errorf("error %q, want %q", err, c.msg)
			}
		})
	}
	// No zombie or stray child of ours is left.
	if err := unix.Kill(-1, 0); err == nil {
		var ws unix.WaitStatus
		if pid, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WALL, nil); pid > 0 || err != unix.ECHILD {
			t.Errorf("a child is left after setup failures: wait4 = %d, %v", pid, err)
		}
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("h", 65)
	bad := []Spec{
		{},
		{Path: "/bin/true", Namespaces: 1},
		{Path: "/bin/true", MountProc: true, Namespaces: PID},
		{Path: "/bin/true", MountProc: true, Namespaces: Mnt},
		{Path: "/bin/true", Propagation: "rprivate", Namespaces: Mnt},
		{Path: "/bin/true", Propagation: "slave"},
		{Path: "/bin/true", Hostname: "x"},
		{Path: "/bin/true", Hostname: long, Namespaces: UTS},
		{Path: "/bin/true", MapRoot: true},
		{Path: "/bin/true", MapRoot: true, Namespaces: User, UIDMap: []IDMap{{0, 0, 1}}},
		{Path: "/bin/true", Namespaces: User, UIDMap: []IDMap{{0, 0, 0}}},
		{Path: "/bin/true", Namespaces: User, GIDMap: []IDMap{{4294967295, 0, 2}}},
		{Path: "/bin/true", Namespaces: Net, Join: map[Namespace]string{Net: "/run/netns/x"}},
		{Path: "/bin/true", Join: map[Namespace]string{Net | IPC: "/run/netns/x"}},
		{Path: "/bin/true", Join: map[Namespace]string{Net: ""}},
		{Path: "/bin/true", Mounts: []Mount{{Source: "none", Target: "/sys", FSType: "sysfs"}}},
		{Path: "/bin/true", Namespaces: Mnt, Mounts: []Mount{{Source: "none"}}},
		{Path: "/bin/true", Args: []string{"a\x00b"}},
	}
	for i, s := range bad {
		if err := s.Validate(); err == nil || !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("case %d: Validate(%+v) = %v, want ErrInvalidSpec", i, s, err)
		}
	}
	good := []Spec{
		{Path: "true"},
		{Path: "/bin/true", Namespaces: IPC | PID | Mnt, MountProc: true, Propagation: "slave"},
		{Path: "/bin/true", Namespaces: UTS, Hostname: strings.Repeat("h", 64)},
		{Path: "/bin/true", Namespaces: User | Mnt, MapRoot: true, Join: map[Namespace]string{Net: "/run/netns/x"}},
		{Path: "/bin/true", Namespaces: Mnt, Mounts: []Mount{{Source: "none", Target: "/sys", FSType: "sysfs"}}},
	}
	for i, s := range good {
		if err := s.Validate(); err != nil {
			t.Errorf("good case %d: %v", i, err)
		}
	}
	var nilSpec *Spec
	if _, err := Start(context.Background(), nilSpec); err == nil {
		t.Error("Start(nil) succeeded")
	}
}

func TestNamespaceString(t *testing.T) {
	if got := (IPC | PID | Mnt).String(); got != "ipc|pid|mnt" {
		t.Errorf("String = %q", got)
	}
	if got := Namespace(0).String(); got != "none" {
		t.Errorf("String = %q", got)
	}
}

func TestResolvePath(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "tool")
	if err := os.WriteFile(noexec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := resolvePath("sh", []string{"PATH=/nonexistent:/bin"}, nil); err != nil || p != "/bin/sh" {
		t.Errorf("resolvePath(sh) = %q, %v", p, err)
	}
	if _, err := resolvePath("tool", []string{"PATH=" + dir}, nil); !errors.Is(err, unix.EACCES) {
		t.Errorf("non-executable candidate: %v, want EACCES", err)
	}
	if _, err := resolvePath("nsclone-none", []string{"PATH=" + dir}, nil); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing: %v, want ENOENT", err)
	}
	if p, _ := resolvePath("./x", nil, nil); p != "./x" {
		t.Errorf("a path with a slash is kept: %q", p)
	}
}

// TestStackNeed measures what the CLONE_VM child touches of its stack,
// which the comment on NSC_STACK_SIZE states; it fails if the margin shrinks
// below 4x.
func TestStackNeed(t *testing.T) {
	ns := Namespace(0)
	if os.Geteuid() == 0 {
		ns = IPC | PID | Mnt | UTS
	}
	u := uint32(os.Getuid())
	s := &Spec{Path: "/bin/true", Args: []string{"true"}, Env: []string{}, Namespaces: ns, UID: &u, GID: &u,
		MountProc: ns&PID != 0, Hostname: map[bool]string{true: "h"}[ns&UTS != 0], Dir: "/"}
	used, err := stackNeed(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("child stack: %d of %d bytes touched", used, stackSize)
	if used <= 0 || used*4 > stackSize {
		t.Errorf("child touched %d bytes of its %d-byte stack; want a 4x margin", used, stackSize)
	}
}

// readFile returns the content of a file or "" (an observer that must not fail
// the test when a process is gone).
func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(bytes.TrimSpace(b))
}
