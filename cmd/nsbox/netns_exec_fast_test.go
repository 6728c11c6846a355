package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
)

// netns exec takes run's C start-up path when it can: the payload sees the
// same namespace, /sys and /etc/netns binds as on the Go path, the exit
// status is the same, and the Go runtime never starts; what C cannot take
// (a missing command, a missing namespace) is Go's, with Go's messages.
func TestNetnsExecFastMatchesGo(t *testing.T) {
	ns := testutil.NewNetns(t)
	bin := runBuildNsbox(t)
	etc := filepath.Join(netns.EtcDir, ns)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 10.93.9.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `readlink /proc/self/ns/net; cat /etc/resolv.conf; awk '$5 == "/sys" {print $9, $10}' /proc/self/mountinfo; exit 3`
	outs := map[string]string{}
	for _, mode := range []string{"0", "1"} {
		stdout, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + mode, "GODEBUG=inittrace=1"}, nil, bin,
			"netns", "exec", ns, "--", "sh", "-c", script)
		if code != 3 {
			t.Errorf("NSBOX_NO_FASTPATH=%s: exit %d, want 3; stderr %q", mode, code, stderr)
		}
		if n := goInitLines(stderr); (mode == "0") != (n == 0) {
			t.Errorf("NSBOX_NO_FASTPATH=%s: %d Go init lines", mode, n)
		}
		if !strings.Contains(stdout, "nameserver 10.93.9.9") || !strings.Contains(stdout, "sysfs") {
			t.Errorf("NSBOX_NO_FASTPATH=%s: the payload saw %q", mode, stdout)
		}
		outs[mode] = stdout
	}
	if outs["0"] != outs["1"] {
		t.Errorf("fast path saw %q, Go path %q", outs["0"], outs["1"])
	}
	if got := testutil.Cmd(t, "ip", "netns", "exec", ns, "readlink", "/proc/self/ns/net"); !strings.HasPrefix(outs["0"], got) {
		t.Errorf("fast path ran in %q, ip netns exec in %q", outs["0"], got)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"netns", "exec", ns, "--", "nsbox-no-such-command"}, 127, "command not found"},
		{[]string{"netns", "exec", "nsbox-no-such-ns", "--", "true"}, 125, "nsbox-no-such-ns"},
		{[]string{"netns", "exec", ns, "--", "/etc/hostname"}, 126, "/etc/hostname"},
		{[]string{"netns", "exec", ns, "sh", "-c", "kill -TERM $$"}, 143, ""},
	} {
		_, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=0"}, nil, bin, c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("nsbox %q: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.msg)
		}
	}
}
