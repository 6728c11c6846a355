package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestShowJoinWords: every pair of showJoinObjects and showJoinVerbs (and
// the object alone), with -n given as a name, a path and a pid, prints what
// `ip -n NS OBJ show` prints, with and without the constructor's join
// (NSBOX_NO_FASTPATH=1 leaves -n to Go). strace, an independent observer,
// sees the joining: one setns, by the only thread there is, before the Go
// runtime's first clone, and none after it; and the one-CPU pin before the
// runtime starts, undone for every thread once it has.
func TestShowJoinWords(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	// No IPv6 duplicate address detection: no "tentative" that ends
	// between the two tools' outputs.
	testutil.Cmd(t, "ip", "netns", "exec", ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad")
	a, b := testutil.UniqueName("sja"), testutil.UniqueName("sjb")
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "10.77.1.1/24", "dev", a)
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", a, "up")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", b, "up")
	testutil.Cmd(t, "ip", "-n", ns, "neigh", "add", "10.77.1.9", "lladdr", "02:00:00:00:77:09", "dev", a)
	pid := processInNetns(t, ns)
	targets := []string{ns, "/run/netns/" + ns, strconv.Itoa(pid)}
	for _, obj := range showJoinObjects {
		want := testutil.Cmd(t, "ip", "-n", ns, obj, "show")
		for _, verb := range append([]string{""}, showJoinVerbs...) {
			for _, target := range targets {
				args := []string{"-n", target, obj}
				if verb != "" {
					args = append(args, verb)
				}
				for _, env := range [][]string{nil, {"NSBOX_NO_FASTPATH=1"}} {
					out, errOut, code := cliWith(t, env, nil, args...)
					if code != 0 || out != want {
						t.Errorf("%v nsbox %s: exit %d (%s):\n%s\nip -n %s %s show:\n%s", env, strings.Join(args, " "), code, errOut, out, ns, obj, want)
					}
				}
			}
		}
	}

	// Output flags around -n, as users write them: the same bytes as ip.
	for _, words := range [][]string{
		{"-j", "-n", ns, "link", "show"}, {"-n", ns, "-j", "addr"}, {"-br", "-n", ns, "-4", "addr", "ls"},
		{"--json", "-n", ns, "route"}, {"-d", "-n", ns, "link", "list"}, {"-o", "-n", ns, "neigh", "show"},
	} {
		want := testutil.Cmd(t, "ip", words...)
		for _, env := range [][]string{nil, {"NSBOX_NO_FASTPATH=1"}} {
			out, errOut, code := cliWith(t, env, nil, words...)
			if code != 0 || out != want {
				t.Errorf("%v nsbox %s: exit %d (%s):\n%s\nip:\n%s", env, strings.Join(words, " "), code, errOut, out, want)
			}
		}
	}

	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace is needed to see where -n is joined: %v", err)
	}
	trace := filepath.Join(t.TempDir(), "strace")
	if msg, err := exec.Command(strace, "-f", "-qq", "-e", "trace=setns,clone,clone3,sched_setaffinity", "-o", trace,
		cliBinary(t), "-j", "-n", ns, "link", "show").CombinedOutput(); err != nil {
		t.Fatalf("strace nsbox -j -n %s link show: %v\n%s", ns, err, msg)
	}
	out, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	// strace -o FILE -f starts each line with the thread's id.
	var setns, clones int
	var pinned bool
	var own unix.CPUSet
	if err := unix.SchedGetaffinity(0, &own); err != nil {
		t.Fatal(err)
	}
	threads := map[string]bool{}
	restored := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if len(restored) == 0 {
			threads[f[0]] = true // made while pinned, by a pinned thread
		}
		switch {
		case strings.HasPrefix(f[1], "setns("):
			setns++
			if clones > 0 {
				t.Errorf("setns after the Go runtime started threads: %s", l)
			}
		case strings.HasPrefix(f[1], "clone(") || strings.HasPrefix(f[1], "clone3("):
			clones++
		case strings.HasPrefix(f[1], "sched_setaffinity(0,") && clones == 0:
			pinned = true
		case strings.HasPrefix(f[1], "sched_setaffinity("):
			tid := strings.TrimSuffix(strings.TrimPrefix(f[1], "sched_setaffinity("), ",")
			restored[tid] = true
		}
	}
	if setns != 1 || clones == 0 {
		t.Errorf("strace saw %d setns and %d clones, want 1 setns before the runtime's threads:\n%s", setns, clones, out)
	}
	// With more than one CPU the constructor pins the process to one (the
	// runtime then makes one P) and internal/cpupin gives every thread
	// its affinity back.
	if own.Count() > 1 {
		if !pinned {
			t.Errorf("no one-CPU pin before the runtime's threads:\n%s", out)
		}
		for tid := range threads {
			if !restored[tid] {
				t.Errorf("thread %s did not get its affinity back:\n%s", tid, out)
			}
		}
	}
}

// TestShowJoinFlags: every word the constructor skips as an output flag
// is read by globalFlags as one of showJoinOpts, takes no value and leaves
// -n, -b and help alone.
func TestShowJoinFlags(t *testing.T) {
	opts := globalOpts()
	for _, w := range showJoinFlags() {
		e := newEnv(nil, nil, nil)
		rest, batch, help, err := e.globalFlags([]string{w, "link"})
		if err != nil || batch != "" || help || e.netns != "" || len(rest) != 1 || rest[0] != "link" {
			t.Errorf("%s: rest %v, batch %q, help %v, netns %q, err %v", w, rest, batch, help, e.netns, err)
		}
		opt := strings.TrimPrefix(w, "-")
		if !strings.HasPrefix(opt, "-") {
			opt = w
		}
		o := findGlobal(opts, opt)
		if o == nil || o.arg {
			t.Errorf("%s is no global option without a value", w)
			continue
		}
		found := false
		for _, n := range showJoinOpts {
			found = found || n == o.name
		}
		if !found {
			t.Errorf("%s is %s, not one of showJoinOpts", w, o.name)
		}
	}
}
