package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// --publish on the C fast path (csrc/nft_fast.c) against the Go path
// (package nat), observed with nft -j in the lab's host namespace, real
// clients, and each path's view of the other's ports.

// nftView is the lab's ruleset as nft -j lists it, without what differs
// from run to run: handles, counters, and the owner's pid and start time
// in the comments.
func nftView(t *testing.T, ns string) string {
	t.Helper()
	out := testutil.Cmd(t, "ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j list ruleset: %v", err)
	}
	owner := regexp.MustCompile(`(pid|start)=[0-9]+`)
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			delete(v, "handle")
			if _, ok := v["packets"]; ok {
				v["packets"], v["bytes"] = 0, 0
			}
			for k, e := range v {
				v[k] = walk(e)
			}
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
		case string:
			return owner.ReplaceAllString(v, "$1=N")
		}
		return v
	}
	items, _ := walk(doc["nftables"]).([]any)
	var keep []string
	for _, it := range items {
		if m, ok := it.(map[string]any); ok && m["metainfo"] != nil {
			continue // nft's version
		}
		b, _ := json.Marshal(it)
		keep = append(keep, string(b))
	}
	return strings.Join(keep, "\n")
}

// startPublisher starts bin on path mode (the env value of
// NSBOX_NO_FASTPATH) with GODEBUG=inittrace=1, so its stderr tells whether
// the Go runtime started.
func startPublisher(t *testing.T, bin, mode string, args ...string) *testutil.Proc {
	t.Helper()
	t.Setenv("NSBOX_NO_FASTPATH", mode)
	t.Setenv("GODEBUG", "inittrace=1")
	p := startNsbox(t, bin, args...)
	os.Unsetenv("GODEBUG")
	return p
}

// checkPath fails unless the ended publisher p took the path mode.
func checkPath(t *testing.T, p *testutil.Proc, mode string) {
	t.Helper()
	n := goInitLines(p.Stderr.String())
	if mode == "0" && n != 0 {
		t.Errorf("fast path: the Go runtime started (%d init lines): %q", n, p.Stderr.String())
	}
	if mode == "1" && n == 0 {
		t.Errorf("go path: no init line (the probe is broken): %q", p.Stderr.String())
	}
}

// stopPublisher ends p with SIGTERM as a user would.
func stopPublisher(t *testing.T, p *testutil.Proc) {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if exited, _ := p.Wait(10 * time.Second); !exited {
		t.Fatal("nsbox did not end 10s after SIGTERM")
	}
}

// waitPublished waits until the lab's table holds a rule for hostport.
func waitPublished(t *testing.T, ns string, hostport int, p *testutil.Proc) {
	t.Helper()
	if !waitFor(10*time.Second, func() bool {
		_, rules := nsboxTable(t, ns)
		return slices.ContainsFunc(rules, func(c string) bool { return strings.Contains(c, fmt.Sprintf("hostport=%d&", hostport)) })
	}) {
		t.Fatalf("port %d never published: %s", hostport, p.Stderr.String())
	}
}

// TestRunPublishFastMatchesGo: the same --publish command line through the
// C fast path and through Go adds the same ruleset (nft -j, comments
// included), answers a client outside, and leaves the lab as it found it:
// no table (forwarding off again) when the run made it, only the other
// entry when the table existed (nat add).
func TestRunPublishFastMatchesGo(t *testing.T) {
	bin := runBuildNsbox(t)
	for _, tableExists := range []bool{false, true} {
		t.Run(fmt.Sprintf("table-exists=%v", tableExists), func(t *testing.T) {
			lab := testutil.NewNATLab(t)
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir+"/index.html", []byte("pub-"+lab.Token+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tableExists {
				if _, stderr, code := runNsbox(t, bin, nil, "-n", lab.HostNS, "nat", "add", lab.Bridge); code != 0 {
					t.Fatalf("nat add: exit %d, %s", code, stderr)
				}
			}
			before := nftView(t, lab.HostNS)
			forwardBefore := forwardingOf(t, lab.HostNS)
			views := map[string]string{}
			for _, m := range netFastModes {
				t.Run(m.name, func(t *testing.T) {
					p := startPublisher(t, bin, m.env, "-n", lab.HostNS, "run", "--net", "--bridge", lab.Bridge, "--addr", "10.88.0.7/24",
						"--gateway", lab.BridgeIP, "--publish", "8080:80", "--publish", lab.HostOutsideIP+":8443:80",
						"--publish", "5353:53/udp", "--", "busybox", "httpd", "-f", "-p", "80", "-h", dir)
					for _, url := range []string{"http://" + lab.HostOutsideIP + ":8080/", "http://" + lab.HostOutsideIP + ":8443/"} {
						var body string
						if !waitFor(10*time.Second, func() bool {
							out, err := testutil.Curl(lab.OutsideNS, url)
							body = out
							return err == nil
						}) {
							t.Fatalf("%s never answered: %s", url, p.Stderr.String())
						}
						if strings.TrimSpace(body) != "pub-"+lab.Token {
							t.Fatalf("%s: body %q", url, body)
						}
					}
					views[m.name] = nftView(t, lab.HostNS)
					if forwardingOf(t, lab.HostNS) != "1" {
						t.Errorf("forwarding off while published")
					}
					stopPublisher(t, p)
					checkPath(t, p, m.env)
					if after := nftView(t, lab.HostNS); after != before {
						t.Errorf("ruleset after the run:\n%s\nbefore:\n%s", after, before)
					}
					if got := forwardingOf(t, lab.HostNS); got != forwardBefore {
						t.Errorf("forwarding after the run %s, before %s", got, forwardBefore)
					}
					if _, err := testutil.Curl(lab.OutsideNS, "http://"+lab.HostOutsideIP+":8080/"); err == nil {
						t.Errorf("port 8080 answers after the run")
					}
				})
			}
			if views["fast-path"] == "" || views["fast-path"] != views["go-path"] {
				t.Errorf("rulesets differ:\nC\n%s\nGo\n%s", views["fast-path"], views["go-path"])
			}
		})
	}
}

// forwardingOf reads net.ipv4.ip_forward inside ns.
func forwardingOf(t *testing.T, ns string) string {
	t.Helper()
	return strings.TrimSpace(testutil.Cmd(t, "ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward"))
}

// TestRunPublishFastInterop: a port held by a run of one path is refused to
// a run of the other, whose one line names the holder's pid; nat list shows
// the C run's entry as Go's.
func TestRunPublishFastInterop(t *testing.T) {
	bin := runBuildNsbox(t)
	lab := testutil.NewNATLab(t)
	for _, c := range []struct{ holder, other string }{{"0", "1"}, {"1", "0"}} {
		t.Run("holder-"+map[string]string{"0": "fast-path", "1": "go-path"}[c.holder], func(t *testing.T) {
			p := startPublisher(t, bin, c.holder, "-n", lab.HostNS, "run", "--net", "--bridge", lab.Bridge, "--addr", "10.88.0.7/24",
				"--publish", "8080:80", "--", "sleep", "60")
			waitPublished(t, lab.HostNS, 8080, p)
			pid := p.Cmd.Process.Pid
			stdout, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + c.other}, nil, bin, "-n", lab.HostNS, "run", "--net",
				"--bridge", lab.Bridge, "--addr", "10.88.0.8/24", "--publish", "8080:80", "--", "echo", "ran")
			want := fmt.Sprintf("nsbox: run: nat: publish tcp 0.0.0.0:8080: host port already published by nsbox run (pid %d) (to 10.88.0.7:80)\n", pid)
			if code != exitSetupFailed || stderr != want || stdout != "" {
				t.Errorf("the other path's --publish 8080: exit %d, stdout %q, stderr %q; want 125 and %q", code, stdout, stderr, want)
			}
			out, stderr, code := runNsboxEnv(t, nil, nil, bin, "-j", "-n", lab.HostNS, "nat", "list")
			var entries []map[string]any
			if code != 0 || json.Unmarshal([]byte(out), &entries) != nil {
				t.Fatalf("nat list -j: exit %d, %q, %s", code, out, stderr)
			}
			if len(entries) != 1 || entries[0]["kind"] != "publish" || entries[0]["host_port"] != float64(8080) ||
				entries[0]["owner_pid"] != float64(pid) || entries[0]["owner_name"] != "nsbox run" || entries[0]["rules"] != float64(4) {
				t.Errorf("nat list -j: %s", out)
			}
			stopPublisher(t, p)
			checkPath(t, p, c.holder)
			if exists, rules := nsboxTable(t, lab.HostNS); exists || len(rules) != 0 {
				t.Fatalf("after the holder: table %v, rules %q", exists, rules)
			}
		})
	}
}

// TestRunPublishFastSIGKILL: the rules of a C-path run killed with SIGKILL
// stay until the next nsbox call: a C-path run publishing the same port
// then gets it (its payload runs), and leaves nothing.
func TestRunPublishFastSIGKILL(t *testing.T) {
	bin := runBuildNsbox(t)
	lab := testutil.NewNATLab(t)
	p := startPublisher(t, bin, "0", "-n", lab.HostNS, "run", "--net", "--bridge", lab.Bridge, "--addr", "10.88.0.7/24",
		"--publish", "8080:80", "--", "sleep", "60")
	waitPublished(t, lab.HostNS, 8080, p)
	p.Cmd.Process.Kill()
	p.Wait(10 * time.Second)
	checkPath(t, p, "0")
	dead := fmt.Sprintf("pid=%d&", p.Cmd.Process.Pid)
	if _, rules := nsboxTable(t, lab.HostNS); !slices.ContainsFunc(rules, func(c string) bool { return strings.Contains(c, dead) }) {
		t.Fatalf("the killed run's rules are gone before any other nsbox call: %q", rules)
	}
	// The payload checks that the port is its own by the time it runs.
	script := fmt.Sprintf("ip netns exec %s nft list table ip nsbox | grep -c 'hostport=8080&' ; exit 3", lab.HostNS)
	stdout, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=0"}, nil, bin, "-n", lab.HostNS, "run", "--net", "--bridge",
		lab.Bridge, "--addr", "10.88.0.8/24", "--publish", "8080:80", "--", "sh", "-c", script)
	if code != 3 || strings.TrimSpace(stdout) != "4" {
		t.Fatalf("--publish 8080 after the holder's SIGKILL: exit %d, stdout %q, stderr %q (want 3 and the 4 rules of this run)", code, stdout, stderr)
	}
	if exists, rules := nsboxTable(t, lab.HostNS); exists || len(rules) != 0 {
		t.Fatalf("after both: table %v, rules %q", exists, rules)
	}
	if got := forwardingOf(t, lab.HostNS); got != "0" {
		t.Errorf("forwarding after both: %s", got)
	}
}

// TestRunPublishFastBadInput: a bad --publish is refused alike on both
// paths (the C path leaves every value it does not take to Go): one nsbox:
// line, the exit code, no table, no veth.
func TestRunPublishFastBadInput(t *testing.T) {
	bin := runBuildNsbox(t)
	lab := testutil.NewNATLab(t)
	for _, spec := range []string{"0:80", "8080:65536", "8080:80/sctp", "1.2.3:8080:80", "::1:8080:80", "x:80", "8080", "8080:80:90:1"} {
		res := map[string][3]any{}
		for _, m := range netFastModes {
			stdout, stderr, code := runNsboxEnv(t, []string{"NSBOX_NO_FASTPATH=" + m.env}, nil, bin, "-n", lab.HostNS, "run", "--net",
				"--bridge", lab.Bridge, "--addr", "10.88.0.8/24", "--publish", "8080:81", "--publish", spec, "--", "echo", "ran")
			if code != exitSetupFailed || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nsbox: ") || stdout != "" {
				t.Errorf("%s --publish %s: exit %d, stdout %q, stderr %q", m.name, spec, code, stdout, stderr)
			}
			res[m.name] = [3]any{stdout, stderr, code}
			if exists, rules := nsboxTable(t, lab.HostNS); exists || len(rules) != 0 {
				t.Errorf("%s --publish %s left table %v, rules %q", m.name, spec, exists, rules)
			}
			if links := testutil.Cmd(t, "ip", "-n", lab.HostNS, "-o", "link", "show", "master", lab.Bridge); strings.Contains(links, "nsb") {
				t.Errorf("%s --publish %s left a veth: %s", m.name, spec, links)
			}
		}
		if !reflect.DeepEqual(res["fast-path"], res["go-path"]) {
			t.Errorf("--publish %s: C path %v, Go %v", spec, res["fast-path"], res["go-path"])
		}
	}
}
