package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// `nsbox -n NS dhcp|dhcpd` run inside NS as a whole process (joined by the
// C constructor before the Go runtime starts), as `ip netns exec NS
// dhclient` would: `ip netns pids NS` lists them. (Before, only the threads
// that worked in NS were there, and ip netns pids listed nothing.)
func TestDaemonsLiveInTheirNamespace(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	bin := runBuildNsbox(t)
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "dn0", "type", "veth", "peer", "name", "dn1")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "10.93.0.1/24", "dev", "dn0")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "dn0", "up")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "dn1", "up")
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
	}{
		{"dhcpd", []string{"-n", ns, "dhcpd", "dn0", "--range", "10.93.0.10-10.93.0.20", "--lease-file", dir + "/leases"}},
		// No server answers on dn1's own side: the client keeps trying.
		{"dhcp", []string{"-n", ns, "dhcp", "dn0", "--timeout", "20s", "--lease-file", dir + "/client", "--no-dns"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			before := pidFiles(t, ns)
			cmd := exec.CommandContext(ctx, bin, c.args...)
			cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH=0")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Stopped as a user stops a daemon, so that it removes its
			// pid file under /run/nsbox (a SIGKILL would leave it).
			defer stopDaemon(t, cmd, ns, before)
			pid := strconv.Itoa(cmd.Process.Pid)
			listed := false
			for i := 0; i < 50 && !listed; i++ {
				time.Sleep(50 * time.Millisecond)
				listed = strings.Contains(" "+strings.Join(strings.Fields(testutil.Cmd(t, "ip", "netns", "pids", ns)), " ")+" ", " "+pid+" ")
			}
			if !listed {
				t.Errorf("nsbox %v (pid %s) is not among ip netns pids %s: %q", c.args, pid, ns, testutil.Cmd(t, "ip", "netns", "pids", ns))
			}
			self, _ := os.Readlink("/proc/self/ns/net")
			if got, _ := os.Readlink("/proc/" + pid + "/ns/net"); got == self {
				t.Errorf("nsbox %v runs in the test's own network namespace", c.args)
			}
		})
	}
}

// pidFiles returns the pid files nsbox keeps in /run/nsbox for the
// namespace whose /run/netns entry is ns, with their modification times.
func pidFiles(t *testing.T, ns string) map[string]time.Time {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/run/netns/"+ns, &st); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(fmt.Sprintf("/run/nsbox/*/net-%d-*.pid", st.Ino))
	out := map[string]time.Time{}
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			out[f] = fi.ModTime()
		}
	}
	return out
}

// stopDaemon ends cmd with SIGTERM, as a user would (SIGKILL after 10 s),
// and checks that it left no pid file of namespace ns in /run/nsbox beyond
// those in before (namespace inodes are reused, so an older run's file may
// carry the same name).
func stopDaemon(t *testing.T, cmd *exec.Cmd, ns string, before map[string]time.Time) {
	t.Helper()
	_ = cmd.Process.Signal(unix.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("nsbox %v did not end within 10 s of SIGTERM", cmd.Args[1:])
	}
	for f, mt := range pidFiles(t, ns) {
		if old, ok := before[f]; !ok || !old.Equal(mt) {
			t.Errorf("nsbox %v left %s behind", cmd.Args[1:], f)
			_ = os.Remove(f)
		}
	}
}
