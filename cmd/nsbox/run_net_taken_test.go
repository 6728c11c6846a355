package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// The host end of run --bridge's veth is named after the child's pid
// (nsb%x), and a dead sandbox's veth lives until the kernel has destroyed
// that sandbox's network namespace (under load, seen more than a minute
// later), by which time its pid may be the next sandbox's. Both paths (the
// C fast path and Go) must take the next name (nsb%x-1) instead of failing
// with EEXIST, and never delete the link that has the name. nsbox runs in
// a new pid namespace (unshare --pid --mount-proc), so its child's pid is
// small: the test takes the names of pids 1 to 64 beforehand, with ip.
func TestRunNetHostNameTaken(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "ip")
	testutil.RequireTool(t, "ping")
	testutil.RequireTool(t, "unshare")
	bin := runBuildNsbox(t)
	lab := netLab(t)
	const npids = 64
	var batch strings.Builder
	var taken []string
	for pid := 1; pid <= npids; pid++ {
		n := fmt.Sprintf("nsb%x", pid)
		taken = append(taken, n)
		fmt.Fprintf(&batch, "link add %s type veth peer name tk%x\n", n, pid)
	}
	cmd := exec.Command("ip", "-n", lab, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
	next := regexp.MustCompile(`^nsb[0-9a-f]+-1$`)
	for _, m := range netFastModes {
		t.Run(m.name, func(t *testing.T) {
			args := []string{"-n", lab, "run", "--net", "--bridge", "br0", "--addr", "10.78.0.2/24", "--gateway", "10.78.0.1",
				"--", "sh", "-c", netFastScript(lab)}
			stdout, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + m.env, "GODEBUG=inittrace=1"},
				[]string{"unshare", "--pid", "--fork", "--mount-proc"}, bin, args...)
			if code != 7 {
				t.Fatalf("exit %d, want the payload's 7; stderr %q", code, stderr)
			}
			n := goInitLines(stderr)
			if m.name == "fast-path" && n != 0 {
				t.Errorf("fast path: the Go runtime started (%d init lines): %q", n, stderr)
			}
			if m.name == "go-path" && n == 0 {
				t.Errorf("go path: no init line with GODEBUG=inittrace=1 (the probe is broken): %q", stderr)
			}
			v := parseView(t, stdout)
			checkView(t, v, "eth0")
			if len(v.Ports) != 1 || !next.MatchString(v.Ports[0].Ifname) {
				t.Errorf("ports of br0 while the payload ran: %+v, want one named nsbPID-1", v.Ports)
			}
			for _, name := range taken {
				var l []struct {
					Ifname string `json:"ifname"`
				}
				testutil.IPJSON(t, &l, "-n", lab, "link", "show", "dev", name)
				if len(l) != 1 {
					t.Errorf("the link %s that had the name was deleted", name)
				}
			}
		})
	}
}
