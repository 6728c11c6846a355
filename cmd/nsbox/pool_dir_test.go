package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/poolwire"
	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/pool"
)

// poolDirFiles lists the files of pool name's folder (its namespaces'
// resolv.conf files), or nil and false when the folder does not exist.
func poolDirFiles(t *testing.T, name string) ([]string, bool) {
	t.Helper()
	ents, err := os.ReadDir(poolwire.ResolvDir(name))
	if os.IsNotExist(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, true
}

// TestPoolFolderRemoved: a pool's folder of resolv.conf files
// (/run/nsbox/pools/NAME.d) goes with pool stop and with SIGTERM; a failed
// start makes none and leaves a live pool's alone; a SIGKILLed pool's
// folder and socket are removed when another pool starts, and a live
// pool's folder never is.
func TestPoolFolderRemoved(t *testing.T) {
	ns := poolLab(t)
	bin := runBuildNsbox(t)
	start := func(name, rng string) *testutil.Proc {
		t.Helper()
		p := startPoolProc(t, bin, name, "-n", ns, "pool", "start", name, "--bridge", "br0", "--size", "2",
			"--range", rng, "--dns", "10.56.0.53")
		waitReady(t, bin, name, 2, p)
		if files, ok := poolDirFiles(t, name); !ok || len(files) != 2 {
			t.Fatalf("pool %s ready with 2 namespaces: folder %v (exists %v), want 2 resolv.conf files", name, files, ok)
		}
		return p
	}
	gone := func(name, how string) {
		t.Helper()
		if files, ok := poolDirFiles(t, name); ok {
			t.Errorf("after %s: %s is still there, holding %v", how, poolwire.ResolvDir(name), files)
		}
		if _, err := os.Stat(pool.SocketPath(name)); !os.IsNotExist(err) {
			t.Errorf("after %s: socket %s: %v", how, pool.SocketPath(name), err)
		}
	}

	live := testutil.UniqueName("tp")
	start(live, "10.56.0.10-10.56.0.19/24")

	stopped := testutil.UniqueName("tp")
	p := start(stopped, "10.56.0.20-10.56.0.29/24")
	if _, stderr, code := runNsbox(t, bin, nil, "pool", "stop", stopped); code != 0 {
		t.Fatalf("pool stop: exit %d: %s", code, stderr)
	}
	if exited, _ := p.Wait(10 * time.Second); !exited {
		t.Fatal("pool start still runs 10 s after pool stop")
	}
	gone(stopped, "pool stop")

	termed := testutil.UniqueName("tp")
	p = start(termed, "10.56.0.30-10.56.0.39/24")
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if exited, _ := p.Wait(20 * time.Second); !exited {
		t.Fatal("pool start still runs 20 s after SIGTERM")
	}
	gone(termed, "SIGTERM")

	// A start refused because a pool of that name runs leaves its folder
	// as it was; one refused before it listens makes none.
	if _, stderr, code := runNsbox(t, bin, nil, "-n", ns, "pool", "start", live, "--bridge", "br0", "--size", "1",
		"--range", "10.56.0.40-10.56.0.49/24"); code != 1 || !strings.Contains(stderr, "already running") {
		t.Errorf("second pool start %s: exit %d, %q", live, code, stderr)
	}
	failed := testutil.UniqueName("tp")
	if _, stderr, code := runNsbox(t, bin, nil, "-n", ns, "pool", "start", failed, "--bridge", "nosuch", "--size", "1",
		"--range", "10.56.0.40-10.56.0.49/24"); code != 1 {
		t.Errorf("pool start on a missing bridge: exit %d, %q", code, stderr)
	}
	gone(failed, "a failed start")

	killed := testutil.UniqueName("tp")
	p = start(killed, "10.56.0.40-10.56.0.49/24")
	p.Cmd.Process.Kill()
	p.Wait(10 * time.Second)
	if _, ok := poolDirFiles(t, killed); !ok {
		t.Fatal("a SIGKILLed pool removed its folder (the test's premise is wrong)")
	}
	next := testutil.UniqueName("tp")
	start(next, "10.56.0.50-10.56.0.59/24")
	gone(killed, "SIGKILL and another pool's start")
	if files, ok := poolDirFiles(t, live); !ok || len(files) != 2 {
		t.Errorf("the live pool's folder after other pools started: %v (exists %v)", files, ok)
	}
	if _, err := os.Stat(pool.SocketPath(live)); err != nil {
		t.Errorf("the live pool's socket: %v", err)
	}
}
