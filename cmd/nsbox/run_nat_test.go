package main

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// nsboxTable reports whether the host namespace has table ip nsbox and the
// comments of its rules, as nft -j shows them.
func nsboxTable(t *testing.T, ns string) (bool, []string) {
	t.Helper()
	tables, comments := testutil.NftRules(t, ns)
	return slices.Contains(tables, "ip nsbox"), comments
}

// startNsbox starts the binary in the background (killed in t.Cleanup).
func startNsbox(t *testing.T, bin string, args ...string) *testutil.Proc {
	t.Helper()
	return testutil.StartProc(t, bin, args...)
}

// waitFor polls cond every 50 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunNATCLI: a sandbox on the lab's bridge reaches the outside server
// with --nat and not without, the server sees the host namespace's address,
// and the rules go with the sandbox.
func TestRunNATCLI(t *testing.T) {
	lab := testutil.NewNATLab(t)
	bin := runBuildNsbox(t)
	base := []string{"-n", lab.HostNS, "run", "--net", "--bridge", lab.Bridge, "--addr", "10.88.0.5/24", "--gateway", lab.BridgeIP}
	fetch := []string{"--", "curl", "-sS", "--noproxy", "*", "-m", "2", lab.ServerURL}

	if out, stderr, code := runNsbox(t, bin, nil, append(base, fetch...)...); code == 0 {
		t.Fatalf("fetched without --nat: %q %q", out, stderr)
	}
	out, stderr, code := runNsbox(t, bin, nil, append(append(base, "--nat"), fetch...)...)
	if code != 0 || strings.TrimSpace(out) != lab.Token {
		t.Fatalf("run --nat: exit %d, %q, %s", code, out, stderr)
	}
	if log := lab.ServerLog(); !strings.Contains(log, "["+"::ffff:"+lab.HostOutsideIP+"]") || strings.Contains(log, "10.88.0.5") {
		t.Fatalf("server log does not show only the masqueraded address:\n%s", log)
	}
	if exists, rules := nsboxTable(t, lab.HostNS); exists || len(rules) != 0 {
		t.Fatalf("after run --nat: table %v, rules %q", exists, rules)
	}

	// Bad --publish values: one line, exit 125, nothing left.
	for _, bad := range []string{"0:80", "8080:65536", "80", "a:80", "8080:80/sctp", "1.2.3:8080:80", "1:2:3:4"} {
		_, stderr, code := runNsbox(t, bin, nil, append(append(base, "--publish", bad), "--", "true")...)
		if code != exitSetupFailed || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nsbox: run: --publish") {
			t.Errorf("--publish %s: exit %d, %q", bad, code, stderr)
		}
	}
	if exists, _ := nsboxTable(t, lab.HostNS); exists {
		t.Fatal("bad --publish left a table")
	}
	_, stderr, code = runNsbox(t, bin, nil, "run", "--net", "--nat", "--", "true")
	if code != exitUsage || !strings.Contains(stderr, "--nat needs --bridge") {
		t.Errorf("--nat without --bridge: exit %d, %q", code, stderr)
	}
}

// TestRunPublishCLI: a server in a sandbox started with --publish 8080:80
// answers a client in the outside namespace on the host namespace's address;
// a second --publish of 8080 is refused naming the holder; the rules exist
// while it runs and are gone after it ends, and after a SIGKILL of nsbox
// once the next nsbox call has looked at the table. Once on each path: the
// C fast path takes --bridge --addr --publish (csrc/nft_fast.c).
func TestRunPublishCLI(t *testing.T) {
	for _, m := range netFastModes {
		t.Run(m.name, func(t *testing.T) {
			t.Setenv("NSBOX_NO_FASTPATH", m.env)
			testRunPublishCLI(t)
		})
	}
}

func testRunPublishCLI(t *testing.T) {
	lab := testutil.NewNATLab(t)
	bin := runBuildNsbox(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/index.html", []byte("published-"+lab.Token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	url := "http://" + lab.HostOutsideIP + ":8080/"
	serve := func(addr string) *testutil.Proc {
		return startNsbox(t, bin, "-n", lab.HostNS, "run", "--net", "--bridge", lab.Bridge, "--addr", addr, "--gateway", lab.BridgeIP,
			"--publish", "8080:80", "--", "busybox", "httpd", "-f", "-p", "80", "-h", dir)
	}
	for _, how := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(how, func(t *testing.T) {
			p := serve("10.88.0.7/24")
			var body string
			if !waitFor(10*time.Second, func() bool {
				out, err := testutil.Curl(lab.OutsideNS, url)
				body = out
				return err == nil
			}) {
				t.Fatalf("%s never answered: %s", url, p.Stderr.String())
			}
			if strings.TrimSpace(body) != "published-"+lab.Token {
				t.Fatalf("body %q", body)
			}
			exists, rules := nsboxTable(t, lab.HostNS)
			if !exists || !slices.ContainsFunc(rules, func(c string) bool { return strings.Contains(c, "hostport=8080") }) {
				t.Fatalf("while running: table %v, rules %q", exists, rules)
			}
			// The same host port again: refused, naming the holder.
			_, stderr, code := runNsbox(t, bin, nil, "-n", lab.HostNS, "run", "--net", "--bridge", lab.Bridge, "--addr", "10.88.0.8/24",
				"--publish", "8080:80", "--", "true")
			if code != exitSetupFailed || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "already published by nsbox run (pid ") {
				t.Fatalf("second --publish 8080: exit %d, %q", code, stderr)
			}
			if how == "SIGTERM" {
				p.Cmd.Process.Signal(syscall.SIGTERM)
				if exited, _ := p.Wait(10 * time.Second); !exited {
					t.Fatal("nsbox did not end 10s after SIGTERM")
				}
			} else {
				p.Cmd.Process.Kill()
				p.Wait(10 * time.Second)
				// The payload dies with nsbox; the rules stay until the
				// next nsbox call on the table.
				if _, _, code := runNsbox(t, bin, nil, "-n", lab.HostNS, "nat", "list"); code != 0 {
					t.Fatalf("nat list: exit %d", code)
				}
			}
			if exists, rules := nsboxTable(t, lab.HostNS); exists || len(rules) != 0 {
				t.Fatalf("after %s: table %v, rules %q", how, exists, rules)
			}
			if _, err := testutil.Curl(lab.OutsideNS, url); err == nil {
				t.Fatalf("%s still answers after %s", url, how)
			}
		})
	}
}

// localnetOf reads route_localnet of br inside ns.
func localnetOf(t *testing.T, ns, br string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/conf/"+br+"/route_localnet").Output()
	if err != nil {
		t.Fatalf("route_localnet of %s in %s: %v", br, ns, err)
	}
	return strings.TrimSpace(string(out))
}

// TestRunPublishLoopback: --publish 127.0.0.1:8081:80 answers a client in
// the host namespace on 127.0.0.1:8081 (the bridge's route_localnet is on
// while it runs, its output DNAT and the masquerade of 127/8 in nft), is
// not reachable from outside on the host's address, and after the sandbox
// ends the table is gone and route_localnet is off again.
func TestRunPublishLoopback(t *testing.T) {
	lab := testutil.NewNATLab(t)
	bin := runBuildNsbox(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/index.html", []byte("loopback-"+lab.Token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := localnetOf(t, lab.HostNS, lab.Bridge); got != "0" {
		t.Fatalf("route_localnet of %s before: %s", lab.Bridge, got)
	}
	p := startNsbox(t, bin, "-n", lab.HostNS, "run", "--net", "--bridge", lab.Bridge, "--addr", "10.88.0.9/24", "--gateway", lab.BridgeIP,
		"--publish", "127.0.0.1:8081:80", "--", "busybox", "httpd", "-f", "-p", "80", "-h", dir)
	var body string
	if !waitFor(10*time.Second, func() bool {
		out, err := testutil.Curl(lab.HostNS, "http://127.0.0.1:8081/")
		body = out
		return err == nil
	}) {
		t.Fatalf("127.0.0.1:8081 in the host namespace never answered: %s", p.Stderr.String())
	}
	if strings.TrimSpace(body) != "loopback-"+lab.Token {
		t.Fatalf("body %q", body)
	}
	if got := localnetOf(t, lab.HostNS, lab.Bridge); got != "1" {
		t.Errorf("route_localnet of %s while published: %s", lab.Bridge, got)
	}
	exists, rules := nsboxTable(t, lab.HostNS)
	if !exists || !slices.ContainsFunc(rules, func(c string) bool { return strings.Contains(c, "hostip=127.0.0.1") }) ||
		!slices.ContainsFunc(rules, func(c string) bool { return strings.Contains(c, "localnet="+lab.Bridge) }) {
		t.Errorf("while running: table %v, rules %q", exists, rules)
	}
	if _, err := testutil.Curl(lab.OutsideNS, "http://"+lab.HostOutsideIP+":8081/"); err == nil {
		t.Errorf("a loopback publish answers from outside")
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if exited, _ := p.Wait(10 * time.Second); !exited {
		t.Fatal("nsbox did not end 10s after SIGTERM")
	}
	if exists, rules := nsboxTable(t, lab.HostNS); exists || len(rules) != 0 {
		t.Fatalf("after the sandbox: table %v, rules %q", exists, rules)
	}
	if got := localnetOf(t, lab.HostNS, lab.Bridge); got != "0" {
		t.Errorf("route_localnet of %s after the sandbox: %s", lab.Bridge, got)
	}
}
