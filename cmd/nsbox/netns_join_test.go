package main

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestShowJoinWords: every pair of showJoinObjects and showJoinVerbs (and
// the object alone), with -n given as a name, a path and a pid, prints what
// `ip -n NS OBJ show` prints, with and without the constructor's join
// (NSBOX_NO_FASTPATH=1 leaves -n to Go). strace, an independent observer,
// sees the joining: one setns, by the only thread there is, before the Go
// runtime's first clone, and none after it.
func TestShowJoinWords(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
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

	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace is needed to see where -n is joined: %v", err)
	}
	out, err := exec.Command(strace, "-f", "-qq", "-e", "trace=setns,clone,clone3", "-o", "/dev/stderr",
		cliBinary(t), "-n", ns, "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("strace nsbox -n %s link show: %v\n%s", ns, err, out)
	}
	var setns, clones int
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.Contains(l, "setns("):
			setns++
			if clones > 0 {
				t.Errorf("setns after the Go runtime started threads: %s", l)
			}
		case strings.Contains(l, "clone(") || strings.Contains(l, "clone3("):
			clones++
		}
	}
	if setns != 1 || clones == 0 {
		t.Errorf("strace saw %d setns and %d clones, want 1 setns before the runtime's threads:\n%s", setns, clones, out)
	}
}
