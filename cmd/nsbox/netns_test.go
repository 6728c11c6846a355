package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestNetnsCLIInterop: ip sees and enters nsbox's namespaces; nsbox lists,
// enters and deletes ip's.
func TestNetnsCLIInterop(t *testing.T) {
	testutil.RequirePriv(t)
	mine := testutil.UniqueName("nsbc")
	t.Cleanup(func() { testutil.CmdErr("ip", "netns", "del", mine) })
	nlOK(t, "netns", "add", mine)
	if !strings.Contains(testutil.Cmd(t, "ip", "netns", "list"), mine) {
		t.Fatalf("ip netns list does not show %s", mine)
	}
	if out := testutil.Cmd(t, "ip", "netns", "exec", mine, "ip", "-o", "link"); !strings.Contains(out, "lo:") || strings.Count(out, "\n") != 1 {
		t.Errorf("ip netns exec %s: %q", mine, out)
	}
	if code, _, errs := nlRun(t, "", "netns", "add", mine); code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("second add: exit %d %q", code, errs)
	}

	theirs := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", theirs, "link", "add", "tv0", "type", "veth", "peer", "name", "tv1")
	list := nlOK(t, "netns", "list")
	if !strings.Contains(list, mine+"\n") || !strings.Contains(list, theirs+"\n") {
		t.Errorf("nsbox netns list: %q", list)
	}
	js := nlJSON(t, "netns -j", nlOK(t, "-j", "netns", "list"))
	found := false
	for _, o := range js {
		found = found || o["name"] == theirs
	}
	if !found {
		t.Errorf("nsbox -j netns list: %v", js)
	}
	if out := nlOK(t, "netns", "exec", theirs, "--", "ip", "-o", "link"); !strings.Contains(out, "tv0@tv1") {
		t.Errorf("nsbox netns exec %s ip link: %q", theirs, out)
	}
	// identify and pids of a process that ip put inside.
	sleeper := exec.Command("ip", "netns", "exec", theirs, "sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	pid := strconv.Itoa(sleeper.Process.Pid)
	var got string
	for i := 0; i < 100 && got != theirs+"\n"; i++ { // until ip has done its setns
		_, got, _ = nlRun(t, "", "netns", "identify", pid)
		time.Sleep(20 * time.Millisecond)
	}
	if got != theirs+"\n" {
		t.Errorf("nsbox netns identify %s = %q, want %s", pid, got, theirs)
	}
	if pids := nlOK(t, "netns", "pids", theirs); pids != testutil.Cmd(t, "ip", "netns", "pids", theirs) || !strings.Contains(pids, pid+"\n") {
		t.Errorf("nsbox netns pids = %q; ip says %q; want %s in it", pids, testutil.Cmd(t, "ip", "netns", "pids", theirs), pid)
	}
	sleeper.Process.Kill()
	sleeper.Wait()
	nlOK(t, "netns", "del", mine)
	if strings.Contains(testutil.Cmd(t, "ip", "netns", "list"), mine) {
		t.Errorf("ip still lists %s", mine)
	}
	if code, _, errs := nlRun(t, "", "netns", "del", mine); code != 1 || !strings.Contains(errs, "no such namespace") {
		t.Errorf("del missing: %d %q", code, errs)
	}
}

// TestNetnsExecCLI: exit codes and /etc/netns binds as ip netns exec.
func TestNetnsExecCLI(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	etc := filepath.Join("/etc/netns", ns)
	if _, err := os.Stat("/etc/netns"); errors.Is(err, os.ErrNotExist) {
		t.Cleanup(func() { os.Remove("/etc/netns") })
	}
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	conf := "nameserver 10.53.0.1\n"
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := nlOK(t, "netns", "exec", ns, "--", "cat", "/etc/resolv.conf"); got != conf {
		t.Errorf("nsbox netns exec cat /etc/resolv.conf = %q, want %q", got, conf)
	}
	if got := testutil.Cmd(t, "ip", "netns", "exec", ns, "cat", "/etc/resolv.conf"); got != conf {
		t.Errorf("ip netns exec agrees not: %q", got)
	}
	if host, _ := os.ReadFile("/etc/resolv.conf"); string(host) == conf {
		t.Errorf("the host's /etc/resolv.conf shows the namespace's file")
	}
	loop := filepath.Join(t.TempDir(), "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"sh", "-c", "exit 42"}, 42},
		{[]string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
		{[]string{"/nonexistent/cmd"}, 127},
		{[]string{"/etc/hostname"}, 126},
		// As run: a symlink loop and an over-long name cannot be executed
		// (126; netns exec used to say 125).
		{[]string{loop}, 126},
		{[]string{"/" + strings.Repeat("x", 5000)}, 126},
	} {
		code, _, errs := nlRun(t, "", append([]string{"netns", "exec", ns, "--"}, c.args...)...)
		if code != c.code {
			t.Errorf("netns exec %v: exit %d (%s), want %d", c.args, code, errs, c.code)
		}
	}
	if code, _, errs := nlRun(t, "", "netns", "exec", "nsbox-missing-ns", "true"); code != 125 || !strings.Contains(errs, "no such namespace") {
		t.Errorf("exec in a missing namespace: exit %d %q", code, errs)
	}
	if code, _, _ := nlRun(t, "", "netns", "exec", ns); code != 2 {
		t.Errorf("exec without a command: exit %d, want 2", code)
	}
}

// netns exec passes a terminal's Ctrl-C on once (the payload, in nsbox's
// process group, gets it from the terminal; nsbox used to send it again) and
// a SIGINT sent with kill once.
func TestNetnsExecSignalsOnTerminal(t *testing.T) {
	ns := testutil.NewNetns(t)
	bin := runBuildNsbox(t)
	// perl counts every delivery (sh's traps merge two SIGINTs that come
	// while it waits for a child).
	out, code, err := runOnTerminal(t, bin, []string{"netns", "exec", ns, "--", "perl", "-e",
		`$|=1; $n=0; $SIG{INT}=sub{$n++; print "INT$n\n"}; $SIG{TERM}=sub{print "TERM\n"; exit 7}; print "ready\n"; select(undef,undef,undef,0.05) while 1`}, true)
	if err != nil || code != 7 || !strings.Contains(out, "INT2") || strings.Contains(out, "INT3") {
		t.Errorf("netns exec: Ctrl-C, kill -INT, then SIGTERM: exit %d, %v, output %q; want INT1, INT2 (one each), then exit 7", code, err, out)
	}
}
