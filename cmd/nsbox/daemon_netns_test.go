package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

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
			cmd := exec.CommandContext(ctx, bin, c.args...)
			cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH=0")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
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
