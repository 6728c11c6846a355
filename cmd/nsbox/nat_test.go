package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

func TestParseNATArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want natArgs
		bad  bool
	}{
		{args: []string{"add", "br0"}, want: natArgs{sub: "add", bridge: "br0"}},
		{args: []string{"add", "br0", "--out", "eth1"}, want: natArgs{sub: "add", bridge: "br0", out: "eth1"}},
		{args: []string{"delete", "br0"}, want: natArgs{sub: "del", bridge: "br0"}},
		{args: []string{"show"}, want: natArgs{sub: "list"}},
		{args: nil, bad: true},
		{args: []string{"add"}, bad: true},
		{args: []string{"add", "a", "b"}, bad: true},
		{args: []string{"add", "a/b"}, bad: true},
		{args: []string{"del", "br0", "--out", "x"}, bad: true},
		{args: []string{"list", "br0"}, bad: true},
		{args: []string{"flush"}, bad: true},
	} {
		got, err := parseNATArgs(c.args)
		if c.bad {
			if err == nil || exitCodeOf(err) != exitUsage {
				t.Errorf("parseNATArgs(%q) = %+v, %v; want a usage error", c.args, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseNATArgs(%q) = %+v, %v; want %+v", c.args, got, err, c.want)
		}
	}
}

// TestNATCLI drives nsbox nat add/list/del in a lab's host namespace and
// checks the ruleset with nft; bad input gives one nsbox: line, exit 1 and
// no table.
func TestNATCLI(t *testing.T) {
	lab := testutil.NewNATLab(t)
	bin := runBuildNsbox(t)
	sb, _ := lab.AddSandbox(t, 7)
	testutil.Cmd(t, "ip", "-n", lab.HostNS, "link", "add", "bare0", "type", "bridge")

	_, stderr, code := runNsbox(t, bin, nil, "-n", lab.HostNS, "nat", "add", "bare0")
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nsbox: ") || !strings.Contains(stderr, "bare0 has no IPv4 address") {
		t.Errorf("nat add on a bridge without IPv4: exit %d, stderr %q", code, stderr)
	}
	if tables, _ := testutil.NftRules(t, lab.HostNS); len(tables) != 0 {
		t.Fatalf("failed nat add left tables %q", tables)
	}
	if _, stderr, code := runNsbox(t, bin, nil, "-n", lab.HostNS, "nat", "add"); code != 2 || !strings.HasPrefix(stderr, "nsbox: nat add") {
		t.Errorf("nat add without BR: exit %d, %q", code, stderr)
	}

	if _, stderr, code := runNsbox(t, bin, nil, "-n", lab.HostNS, "nat", "add", lab.Bridge, "--out", "out0"); code != 0 {
		t.Fatalf("nat add: exit %d: %s", code, stderr)
	}
	if out, err := testutil.Curl(sb, lab.ServerURL); err != nil || strings.TrimSpace(out) != lab.Token {
		t.Fatalf("fetch after nat add: %q, %v", out, err)
	}
	stdout, stderr, code := runNsbox(t, bin, nil, "-j", "-n", lab.HostNS, "nat", "list")
	var entries []map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &entries) != nil || len(entries) != 1 ||
		entries[0]["kind"] != "masquerade" || entries[0]["bridge"] != lab.Bridge || entries[0]["out"] != "out0" {
		t.Fatalf("nat list -j: exit %d, %q, %s", code, stdout, stderr)
	}
	tables, comments := testutil.NftRules(t, lab.HostNS)
	if len(tables) != 1 || tables[0] != "ip nsbox" || len(comments) == 0 {
		t.Fatalf("ruleset after nat add: %q %q", tables, comments)
	}
	if _, stderr, code := runNsbox(t, bin, nil, "-n", lab.HostNS, "nat", "del", lab.Bridge); code != 0 {
		t.Fatalf("nat del: exit %d: %s", code, stderr)
	}
	if tables, _ := testutil.NftRules(t, lab.HostNS); len(tables) != 0 {
		t.Fatalf("nat del left tables %q", tables)
	}
	if _, stderr, code := runNsbox(t, bin, nil, "-n", lab.HostNS, "nat", "del", lab.Bridge); code != 1 || !strings.HasPrefix(stderr, "nsbox: nat: unmasquerade") {
		t.Errorf("nat del twice: exit %d, %q", code, stderr)
	}
}
