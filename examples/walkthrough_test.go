// Package examples holds the walkthrough script and the test that runs it.
package examples

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// buildNsbox builds the CLI into a temporary folder.
func buildNsbox(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nsbox")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nsbox/nsbox/cmd/nsbox").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type ipLink struct {
	Ifname    string   `json:"ifname"`
	Master    string   `json:"master"`
	Operstate string   `json:"operstate"`
	Flags     []string `json:"flags"`
	AddrInfo  []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

func inet(l ipLink) []string {
	var out []string
	for _, a := range l.AddrInfo {
		if a.Family == "inet" {
			out = append(out, a.Local+"/"+strconv.Itoa(a.Prefixlen))
		}
	}
	return out
}

func TestWalkthroughScript(t *testing.T) {
	testutil.RequirePriv(t)
	for _, tool := range []string{"ip", "ping", "bash"} {
		testutil.RequireTool(t, tool)
	}
	bin := buildNsbox(t)
	tag := testutil.UniqueName("")[:6]
	keep := t.TempDir()
	host, ns1, lan := "wt-host-"+tag, "wt-ns1-"+tag, "wt-lan-"+tag
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(keep, "dhcpd.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGTERM)
				for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		for _, ns := range []string{ns1, host, lan} {
			_, _ = testutil.CmdErr("ip", "netns", "del", ns)
			_ = os.RemoveAll("/etc/netns/" + ns)
		}
		out, _ := testutil.CmdErr("ip", "netns", "list")
		if strings.Contains(out, tag) {
			t.Errorf("namespaces left behind: %s", out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "walkthrough.sh")
	cmd.Env = append(os.Environ(), "NSBOX="+bin, "WALKTHROUGH_TAG="+tag, "WALKTHROUGH_KEEP="+keep)
	cmd.WaitDelay = 5 * time.Second // a stray writer of the pipe cannot hang the test
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough.sh: %v\n%s", err, out)
	}
	text := string(out)
	// Step 1: the sandbox is nobody, and bash is PID 1 seeing only itself and ps.
	if !strings.Contains(text, "uid=65534(nobody) gid=65534(nogroup)") {
		t.Errorf("sandbox did not run as nobody:\n%s", text)
	}
	if !strings.Contains(text, "walkthrough complete") {
		t.Errorf("script did not finish:\n%s", text)
	}
	// Independent checks with ip, step by step.
	nsList := testutil.Cmd(t, "ip", "netns", "list")
	for _, ns := range []string{host, ns1, lan} {
		if !strings.Contains(nsList, ns) {
			t.Errorf("ip netns list lacks %s: %s", ns, nsList)
		}
	}
	var hostLinks, ns1Links []ipLink
	testutil.IPJSON(t, &hostLinks, "-n", host, "addr", "show")
	testutil.IPJSON(t, &ns1Links, "-n", ns1, "addr", "show")
	byName := func(ls []ipLink, name string) (ipLink, bool) {
		for _, l := range ls {
			if l.Ifname == name {
				return l, true
			}
		}
		return ipLink{}, false
	}
	// veth0 and eth0 are ports of br0 with their addresses flushed.
	for _, port := range []string{"veth0", "eth0"} {
		l, ok := byName(hostLinks, port)
		if !ok {
			t.Errorf("%s missing in %s", port, host)
			continue
		}
		if l.Master != "br0" {
			t.Errorf("%s master = %q, want br0", port, l.Master)
		}
		if a := inet(l); len(a) != 0 {
			t.Errorf("%s still has %v after addr flush", port, a)
		}
	}
	// veth1 moved to ns1 and is gone from the host side.
	if _, ok := byName(hostLinks, "veth1"); ok {
		t.Errorf("veth1 still in %s after link set netns", host)
	}
	// br0 and veth1 were leased from the LAN's server (192.168.3.100-200).
	br0, _ := byName(hostLinks, "br0")
	veth1, ok := byName(ns1Links, "veth1")
	if !ok {
		t.Fatalf("veth1 missing in %s", ns1)
	}
	for name, l := range map[string]ipLink{"br0": br0, "veth1": veth1} {
		a := inet(l)
		if len(a) != 1 || !strings.HasPrefix(a[0], "192.168.3.") || !strings.HasSuffix(a[0], "/24") {
			t.Errorf("%s addresses = %v, want one DHCP lease in 192.168.3.0/24", name, a)
		}
	}
	if a := inet(br0); len(a) == 1 && a[0] == strings.Join(inet(veth1), "") {
		t.Errorf("br0 and veth1 got the same lease %v", a)
	}
	// The lease's router became ns1's default route.
	var routes []struct {
		Dst     string `json:"dst"`
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
	}
	testutil.IPJSON(t, &routes, "-n", ns1, "route", "show")
	def := false
	for _, r := range routes {
		if r.Dst == "default" && r.Gateway == "192.168.3.1" && r.Dev == "veth1" {
			def = true
		}
	}
	if !def {
		b, _ := json.Marshal(routes)
		t.Errorf("no default route via 192.168.3.1 dev veth1 in %s: %s", ns1, b)
	}
}
