package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/sbstate"
	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/nsclone"
)

// TestRecordFastMatchesGo: the C fast path's record writer
// (csrc/state_fast.c, walking the tables generated from sbstate.Record)
// writes what sbstate's Add writes, json.Marshal and a newline, byte for
// byte: field order, keys, omitempty, the namespaces' order, encoding/json's
// escapes, the time's RFC 3339 spelling.
func TestRecordFastMatchesGo(t *testing.T) {
	ns := map[string]uint64{"cgroup": 4026531835, "ipc": 4026532001, "mnt": 4026532000, "net": 4026531840,
		"pid": 4026532002, "user": 4026531837, "uts": 4026531838}
	base := sbstate.Record{Name: "web-1", Pid: 4242, InitPid: 4241, Started: time.Date(2026, 11, 29, 12, 0, 1, 123456789, time.UTC),
		StartTicks: 1099117, Namespaces: ns, Addresses: []string{}, Command: []string{"sleep", "60"}, NsboxPid: 4240}
	cases := []sbstate.Record{base}
	r := base
	r.Bridge, r.Interface, r.Addresses = "br0", "eth7", []string{"10.78.0.9/24"}
	cases = append(cases, r)
	r = base
	r.Command = []string{"sh", "-c", "echo \"a\\b\" <x> & 'y'\t\n\x01\x7f", ""}
	cases = append(cases, r)
	r = base
	r.Namespaces = map[string]uint64{"mnt": 1, "pid": 2} // a kernel without some kinds
	r.Name = strings.Repeat("n", sbstate.MaxName)
	cases = append(cases, r)
	// Times: whole seconds (no fraction), trailing zeros, the epoch, far.
	for _, tm := range []time.Time{time.Unix(1700000000, 0), time.Unix(1700000000, 100000000), time.Unix(1700000000, 1),
		time.Unix(0, 0), time.Unix(253402300799, 999999999), time.Unix(951782400, 50)} {
		r = base
		r.Started = tm.UTC()
		cases = append(cases, r)
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 500; i++ {
		r = base
		r.Started = time.Unix(rng.Int63n(253402300800), rng.Int63n(1e9)).UTC()
		if rng.Intn(4) == 0 {
			r.Started = r.Started.Truncate(time.Duration(1) * time.Microsecond * time.Duration(rng.Intn(1000)+1))
		}
		arg := make([]byte, rng.Intn(12))
		for k := range arg {
			arg[k] = byte(1 + rng.Intn(127)) // no NUL: an argv word cannot hold one
		}
		r.Command = []string{"x", string(arg)}
		r.Pid, r.InitPid, r.StartTicks = rng.Intn(1<<22), rng.Intn(1<<22), rng.Uint64()>>1
		cases = append(cases, r)
	}
	for _, c := range cases {
		want, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		got, ok := fastRecord(&c)
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("C record (ok %v)\n%s\nGo's\n%s", ok, got, want)
		}
	}
	// Not ASCII: Go's (the fast path checks before the spawn).
	r = base
	r.Command = []string{"echo", "h\u00e9"}
	if got, ok := fastRecord(&r); ok {
		t.Errorf("C wrote a record with a byte that is not ASCII: %s", got)
	}
}

// TestStatusLinesFastMatchGo: the C fast path's status lines are
// statusStartLine's and statusEndLine's, byte for byte.
func TestStatusLinesFastMatchGo(t *testing.T) {
	ns := map[string]uint64{"cgroup": 11, "ipc": 12, "mnt": 13, "net": 14, "pid": 15, "user": 16, "uts": 17}
	for _, c := range []struct {
		bits   nsclone.Namespace
		net    bool
		ifname string
		addrs  []string
		code   int
	}{
		{bits: nsclone.IPC | nsclone.PID | nsclone.Mnt},
		{bits: nsclone.Net | nsclone.UTS | nsclone.Cgroup | nsclone.User, code: 137},
		{bits: nsclone.Net, net: true, ifname: "eth7", addrs: []string{"10.78.0.9/24"}, code: 125},
		{bits: nsclone.Net, net: true, ifname: "eth0", code: -1},
		{bits: 0, code: 255},
	} {
		want := statusStartLine(4242, ns, c.bits, c.net, c.ifname, c.addrs)
		addr, ifname := "", ""
		if c.net {
			ifname = c.ifname
		}
		if len(c.addrs) > 0 {
			addr = c.addrs[0]
		}
		start, end := fastStatusLines(4242, ns, uint64(c.bits), ifname, addr, c.code)
		if start != want {
			t.Errorf("C first line %q, Go's %q", start, want)
		}
		if want := statusEndLine(c.code); end != want {
			t.Errorf("C last line %q, Go's %q", end, want)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(start), &m); err != nil {
			t.Errorf("first line %q: %v", start, err)
		}
	}
}

// namedRun is a sandbox started with run --name --status-fd --pidfile.
type namedRun struct {
	name, pidfile string
	cmd           *exec.Cmd
	stderr        *os.File // a file, not a pipe: the payload holds it after a SIGKILL of nsbox
	status        *bufio.Reader
	first         string // the first status line
	pid           int
}

// startNamed starts `run --name NAME --status-fd 3 --pidfile FILE --uts
// --net -- sleep 60` with env added and waits for its first status line.
func startNamed(t *testing.T, bin, name string, env ...string) *namedRun {
	t.Helper()
	dir := t.TempDir()
	n := &namedRun{name: name, pidfile: filepath.Join(dir, "pid")}
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stderr.Close() })
	n.stderr = stderr
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	n.cmd = exec.Command(bin, "run", "--name", name, "--status-fd", "3", "--pidfile", n.pidfile, "--uts", "--net", "--", "sleep", "60")
	n.cmd.Env = append(append(os.Environ(), "GODEBUG=inittrace=1"), env...)
	n.cmd.ExtraFiles = []*os.File{w}
	n.cmd.Stderr = n.stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { stopSandbox(n.cmd) })
	n.status = bufio.NewReader(r)
	if n.first, err = n.status.ReadString('\n'); err != nil {
		t.Fatalf("%s: first status line: %v (stderr %q)", name, err, n.errText())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(n.first), &m); err != nil {
		t.Fatalf("%s: status line %q: %v", name, n.first, err)
	}
	n.pid = int(m["child-pid"].(float64))
	return n
}

// errText is what nsbox wrote on stderr so far.
func (n *namedRun) errText() string {
	b, _ := os.ReadFile(n.stderr.Name())
	return string(b)
}

// digits matches the numbers of a line, which differ between two sandboxes.
var digits = regexp.MustCompile(`[0-9]+`)

// TestNamedRunFastMatchesGo: run --name --status-fd --pidfile on the C fast
// path and on the Go path (NSBOX_NO_FASTPATH=1) side by side: the records
// are what sbstate writes byte for byte (re-encoded by Go, they do not
// change), hold the same keys, the payload's pid (the pid file's, the
// status line's, a sleep whose parent is nsbox's child) and the namespace
// inodes readlink shows; ps -j lists both alike; the status lines are the
// same but for the numbers; each name is refused while it runs, on either
// path, with one message and exit 125; when the payload ends the record
// and pid file are gone; after a SIGKILL of nsbox the record stays until
// the sandbox ends, and ps never lists an ended one.
func TestNamedRunFastMatchesGo(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	state := t.TempDir()
	t.Setenv("NSBOX_STATE_DIR", state)
	modes := []struct {
		mode string
		env  []string
	}{{"fast-path", nil}, {"go-path", []string{"NSBOX_NO_FASTPATH=1"}}}
	runs := map[string]*namedRun{}
	records := map[string]map[string]any{}
	for _, m := range modes {
		n := startNamed(t, bin, testutil.UniqueName("fm"), m.env...)
		runs[m.mode] = n
		if got := goInitLines(n.errText()) == 0; got != (m.mode == "fast-path") {
			t.Errorf("%s: run --name took the C fast path: %v", m.mode, got)
		}
		if b, err := os.ReadFile(n.pidfile); err != nil || string(b) != strconv.Itoa(n.pid)+"\n" {
			t.Errorf("%s: pid file %q %v, want %d", m.mode, b, err, n.pid)
		}
		// The pid is the sleep's, whose parent is the init nsbox spawned.
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(n.pid) + "/comm")
		init := childOf(t, n.cmd.Process.Pid)
		if ticks, _, err := sbstate.StartTicks(n.pid); strings.TrimSpace(string(comm)) != "sleep" || err != nil || ticks == 0 {
			t.Errorf("%s: pid %d is %q (%v)", m.mode, n.pid, comm, err)
		}
		data, err := os.ReadFile(filepath.Join(state, n.name+".json"))
		if err != nil {
			t.Fatalf("%s: record: %v", m.mode, err)
		}
		var rec sbstate.Record
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatalf("%s: record %q: %v", m.mode, data, err)
		}
		again, _ := json.Marshal(&rec)
		if string(again)+"\n" != string(data) {
			t.Errorf("%s: the record is not what sbstate writes:\n%s\nre-encoded:\n%s", m.mode, data, again)
		}
		ticks, _, _ := sbstate.StartTicks(init)
		if rec.Name != n.name || rec.Pid != n.pid || rec.InitPid != init || rec.StartTicks != ticks || rec.NsboxPid != n.cmd.Process.Pid ||
			strings.Join(rec.Command, " ") != "sleep 60" || rec.Addresses == nil || len(rec.Addresses) != 0 {
			t.Errorf("%s: record %+v; want name %s pid %d init %d ticks %d nsbox %d", m.mode, rec, n.name, n.pid, init, ticks, n.cmd.Process.Pid)
		}
		ns := nsInodes(t, n.pid)
		if len(rec.Namespaces) != len(ns) {
			t.Errorf("%s: record namespaces %v, readlink %v", m.mode, rec.Namespaces, ns)
		}
		for k, v := range rec.Namespaces {
			if fmt.Sprintf("%s:[%d]", k, v) != ns[k] {
				t.Errorf("%s: record %s namespace %d, readlink %s", m.mode, k, v, ns[k])
			}
		}
		var keys map[string]any
		json.Unmarshal(data, &keys)
		records[m.mode] = keys
	}
	if a, b := sortedKeys(records["fast-path"]), sortedKeys(records["go-path"]); a != b {
		t.Errorf("record keys: C %s, Go %s", a, b)
	}
	if a, b := digits.ReplaceAllString(runs["fast-path"].first, "N"), digits.ReplaceAllString(runs["go-path"].first, "N"); a != b {
		t.Errorf("first status line: C %q, Go %q", a, b)
	}

	// ps -j lists both, with the same keys.
	out, _, code := runNsbox(t, bin, nil, "-j", "ps")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Fatalf("ps -j: exit %d %q", code, out)
	}
	if sortedKeys(list[0]) != sortedKeys(list[1]) {
		t.Errorf("ps -j entries differ in keys: %s", out)
	}
	for _, e := range list {
		found := false
		for _, n := range runs {
			found = found || (e["name"] == n.name && int(e["pid"].(float64)) == n.pid)
		}
		if !found {
			t.Errorf("ps -j lists %v", e)
		}
	}

	// Each running name is refused on either path, with one message.
	for _, n := range runs {
		want := "nsbox: run: --name " + n.name + ": sandbox " + n.name + ": already running as pid " + strconv.Itoa(n.pid) + "\n"
		for _, m := range modes {
			_, stderr, code := runNsboxEnv(t, m.env, nil, bin, "run", "--name", n.name, "--", "true")
			if code != 125 || stderr != want {
				t.Errorf("%s run of a running name: exit %d %q, want 125 %q", m.mode, code, stderr, want)
			}
		}
	}

	// The payload ends: the last status line, the record and the pid file
	// gone, alike on both paths.
	var last []string
	for _, m := range modes {
		n := runs[m.mode]
		syscall.Kill(n.pid, syscall.SIGTERM)
		line, err := n.status.ReadString('\n')
		if err != nil {
			t.Errorf("%s: last status line: %v", m.mode, err)
		}
		last = append(last, line)
		if err := n.cmd.Wait(); err == nil || n.cmd.ProcessState.ExitCode() != 143 {
			t.Errorf("%s: exit %v, want 143", m.mode, err)
		}
		if _, err := os.Stat(n.pidfile); err == nil {
			t.Errorf("%s: pid file left", m.mode)
		}
	}
	if last[0] != last[1] || last[0] != statusEndLine(143) {
		t.Errorf("last status lines: C %q, Go %q", last[0], last[1])
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("records left: %v", ents)
	}

	// SIGKILL of nsbox: the record stays while the sandbox runs, and ps
	// neither lists it nor keeps it once the sandbox has ended.
	for _, m := range modes {
		n := startNamed(t, bin, testutil.UniqueName("fk"), m.env...)
		init := childOf(t, n.cmd.Process.Pid)
		n.cmd.Process.Kill()
		n.cmd.Process.Wait()
		if out, _, _ := runNsbox(t, bin, nil, "-j", "ps"); !strings.Contains(out, `"`+n.name+`"`) {
			t.Errorf("%s: the sandbox runs, ps -j does not list it: %q", m.mode, out)
		}
		syscall.Kill(init, syscall.SIGKILL)
		for i := 0; i < 300; i++ {
			if _, err := os.Stat("/proc/" + strconv.Itoa(n.pid)); err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if out, _, code := runNsbox(t, bin, nil, "-j", "ps"); code != 0 || out != "[]\n" {
			t.Errorf("%s: ps -j lists an ended sandbox: %q", m.mode, out)
		}
		if ents, _ := os.ReadDir(state); len(ents) != 0 {
			t.Errorf("%s: ps left the stale record: %v", m.mode, ents)
		}
	}
}

// TestNamedRunRace: runs of one name started together, half on the C fast
// path and half on the Go path: exactly one runs, every other is refused
// (the state folder's flock is one lock for both paths).
func TestNamedRunRace(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	t.Setenv("NSBOX_STATE_DIR", t.TempDir())
	name := testutil.UniqueName("race")
	const n = 6
	type result struct {
		code   int
		stderr string
	}
	results := make(chan result, n)
	for i := 0; i < n; i++ {
		env := []string{"NSBOX_NO_FASTPATH=" + strconv.Itoa(i%2)}
		go func() {
			cmd := exec.Command(bin, "run", "--name", name, "--", "sleep", "3")
			cmd.Env = append(os.Environ(), env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				code = -1
			}
			results <- result{code, stderr.String()}
		}()
	}
	ran := 0
	for i := 0; i < n; i++ {
		r := <-results
		switch {
		case r.code == 0:
			ran++
		case r.code != 125 || !strings.Contains(r.stderr, "already running as pid"):
			t.Errorf("a concurrent run: exit %d %q", r.code, r.stderr)
		}
	}
	if ran != 1 {
		t.Errorf("%d of %d runs of one name ran, want 1", ran, n)
	}
}

// sortedKeys lists m's keys, sorted, as one string.
func sortedKeys(m map[string]any) string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}

// TestStatusFDReaderGone: a --status-fd whose reader has gone (a pipe
// closed at the other end) neither stops the run nor leaves its record, on
// either path.
func TestStatusFDReaderGone(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	state := t.TempDir()
	for _, mode := range []string{"0", "1"} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		cmd := exec.Command(bin, "run", "--name", testutil.UniqueName("gone"), "--status-fd", "3", "--", "sh", "-c", "exit 3")
		cmd.Env = append(os.Environ(), "NSBOX_STATE_DIR="+state, "NSBOX_NO_FASTPATH="+mode)
		cmd.ExtraFiles = []*os.File{w}
		_, stderr, code := runCaptured(t, cmd)
		w.Close()
		if code != 3 {
			t.Errorf("NSBOX_NO_FASTPATH=%s: exit %d %q, want the payload's 3", mode, code, stderr)
		}
		if ents, _ := os.ReadDir(state); len(ents) != 0 {
			t.Errorf("NSBOX_NO_FASTPATH=%s: records left: %v", mode, ents)
		}
	}
}
