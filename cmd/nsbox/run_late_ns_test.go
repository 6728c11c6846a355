package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// lateNetView is what a payload's network looks like from outside: its
// links (name and flags, through nsenter and ip -j), whether its network
// namespace is the test's, and the processes outside its PID namespace that
// still hold that network namespace once it runs.
type lateNetView struct {
	links     string
	sharedNet bool
	holders   []string
	goRuntime bool
}

// observeLateNet starts nsbox with args and a payload that waits on its
// stdin and reads its network from outside.
func observeLateNet(t *testing.T, bin, mode string, args ...string) lateNetView {
	t.Helper()
	h := startHeld(t, bin, mode, args...)
	pid := payloadBelow(t, h.cmd.Process.Pid)
	var v lateNetView
	netns := fmt.Sprintf("/proc/%d/ns/net", pid)
	var st, self, pidns unix.Stat_t
	if err := unix.Stat(netns, &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/pid", pid), &pidns); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		t.Fatal(err)
	}
	v.sharedNet = st.Ino == self.Ino
	out, err := exec.Command("nsenter", "--net="+netns, "ip", "-j", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip -j link in %s: %v", netns, err)
	}
	var links []ipLink
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatalf("ip -j link: %v: %s", err, out)
	}
	for _, l := range links {
		v.links += l.Ifname + " " + strings.Join(l.Flags, ",") + "\n"
	}
	// The helper that made the namespace is gone once the payload runs
	// (bounded: it exits when the child's end of its pipe closes at exec).
	for try := 0; try < 50; try++ {
		v.holders = netHolders(st.Ino, pidns.Ino)
		if len(v.holders) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	v.goRuntime = h.end()
	return v
}

// netHolders lists the processes outside the PID namespace pidns whose
// network namespace is netns.
func netHolders(netns, pidns uint64) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		var n, p unix.Stat_t
		if unix.Stat(d+"/ns/net", &n) != nil || n.Ino != netns {
			continue
		}
		if unix.Stat(d+"/ns/pid", &p) == nil && p.Ino == pidns {
			continue
		}
		comm, _ := os.ReadFile(d + "/comm")
		out = append(out, filepath.Base(d)+" "+strings.TrimSpace(string(comm)))
	}
	return out
}

// TestRunLateNetns: on the C fast path a helper process makes the new
// network namespace (csrc/late_ns.c) while the child builds the rest; the
// payload's network must be what Go's path gives (a fresh namespace holding
// only lo, up under --sandbox, down with --net alone), and no process but
// the sandbox's holds the namespace once the payload runs.
func TestRunLateNetns(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "ip")
	testutil.RequireTool(t, "nsenter")
	bin := runBuildNsbox(t)
	for _, args := range [][]string{
		{"--sandbox"},
		{"--ipc", "--pid", "--mount", "--net"},
		{"--sandbox", "--pids", "50", "--hostname", "late"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			c := observeLateNet(t, bin, "0", args...)
			g := observeLateNet(t, bin, "1", args...)
			if c.goRuntime || !g.goRuntime {
				t.Errorf("Go runtime started: C path %v, Go path %v; want false, true", c.goRuntime, g.goRuntime)
			}
			if c.sharedNet || g.sharedNet {
				t.Errorf("network namespace shared with the test: C %v, Go %v", c.sharedNet, g.sharedNet)
			}
			if c.links != g.links {
				t.Errorf("links:\n C  %q\n Go %q", c.links, g.links)
			}
			if !strings.HasPrefix(c.links, "lo ") || strings.Count(c.links, "\n") != 1 {
				t.Errorf("links %q: want lo alone", c.links)
			}
			wantUp := args[0] == "--sandbox"
			if up := strings.Contains(c.links, ",UP"); up != wantUp {
				t.Errorf("lo up %v (%q); want %v", up, c.links, wantUp)
			}
			if len(c.holders) != 0 || len(g.holders) != 0 {
				t.Errorf("the namespace is held outside the sandbox: C %v, Go %v", c.holders, g.holders)
			}
		})
	}
}
