package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// brRun runs nsbox in-process with args and returns its exit code, stdout
// and stderr.
func brRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := realMain(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// brOK runs nsbox and fails the test unless it exits 0.
func brOK(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := brRun(t, args...)
	if code != 0 {
		t.Fatalf("nsbox %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func brIP(t *testing.T, ns string, args ...string) {
	t.Helper()
	testutil.Cmd(t, "ip", append([]string{"-n", ns}, args...)...)
}

// TestBridgeCLIMatchesBrctl builds bridges with nsbox and compares `nsbox
// bridge show` and `showmacs` with brctl's output byte for byte.
func TestBridgeCLIMatchesBrctl(t *testing.T) {
	ns := testutil.NewNetns(t)
	testutil.RequireTool(t, "brctl")
	// No bridge: brctl prints nothing, not even its header.
	if got, want := brOK(t, "-n", ns, "bridge", "show"), testutil.Brctl(t, ns, "show"); got != want {
		t.Errorf("show without bridges: %q, brctl: %q", got, want)
	}
	brOK(t, "-n", ns, "bridge", "add", "br0")
	brOK(t, "-n", ns, "bridge", "add", "averylongbrname")
	brOK(t, "-n", ns, "bridge", "add", "brempty")
	for _, v := range []string{"v1", "v2", "v10", "A3"} {
		brIP(t, ns, "link", "add", v, "type", "veth", "peer", "name", "p"+v)
		brOK(t, "-n", ns, "bridge", "addif", "br0", v)
	}
	brIP(t, ns, "link", "add", "w1", "type", "veth", "peer", "name", "pw1")
	brOK(t, "-n", ns, "bridge", "addif", "averylongbrname", "w1")
	brOK(t, "-n", ns, "bridge", "stp", "averylongbrname", "on")

	for _, args := range [][]string{{"show"}, {"show", "br0"}, {"show", "brempty", "averylongbrname"}} {
		got := brOK(t, append([]string{"-n", ns, "bridge"}, args...)...)
		want := testutil.Brctl(t, ns, args...)
		if got != want {
			t.Errorf("nsbox bridge %s:\n%q\nbrctl %s:\n%q", strings.Join(args, " "), got, strings.Join(args, " "), want)
		}
	}
	// With every peer down no traffic is learned: only local entries, whose
	// timers are 0.00, so the whole output must match.
	got := brOK(t, "-n", ns, "bridge", "showmacs", "br0")
	want := testutil.Brctl(t, ns, "showmacs", "br0")
	if got != want {
		t.Errorf("nsbox bridge showmacs br0:\n%s\nbrctl showmacs br0:\n%s", got, want)
	}
	if n := strings.Count(got, "\n"); n != 5 {
		t.Errorf("showmacs: %d lines, want header and 4 local entries", n)
	}

	// -j show agrees with bridge -j link.
	var js []struct {
		Ifname     string `json:"ifname"`
		BridgeID   string `json:"bridge_id"`
		STPEnabled bool   `json:"stp_enabled"`
		Interfaces []struct {
			Ifname string `json:"ifname"`
			State  string `json:"state"`
		} `json:"interfaces"`
	}
	if err := json.Unmarshal([]byte(brOK(t, "-n", ns, "-j", "bridge", "show")), &js); err != nil {
		t.Fatal(err)
	}
	ports := map[string]string{}
	for _, p := range testutil.BridgeLinks(t, ns) {
		ports[p.Ifname] = p.Master + " " + p.State
	}
	n := 0
	for _, b := range js {
		for _, p := range b.Interfaces {
			n++
			if ports[p.Ifname] != b.Ifname+" "+p.State {
				t.Errorf("-j: %s in %s %s; bridge link says %q", p.Ifname, b.Ifname, p.State, ports[p.Ifname])
			}
		}
	}
	if len(js) != 3 || n != len(ports) || js[0].Ifname != "averylongbrname" || !js[0].STPEnabled || js[1].STPEnabled {
		t.Errorf("-j show: %+v (bridge link: %v)", js, ports)
	}
}

// TestBridgeCLIBadInput checks that each mistake gives one nsbox: line, the
// right exit code and no change.
func TestBridgeCLIBadInput(t *testing.T) {
	ns := testutil.NewNetns(t)
	brOK(t, "-n", ns, "bridge", "add", "br0")
	brOK(t, "-n", ns, "bridge", "add", "br1")
	brIP(t, ns, "link", "add", "v1", "type", "veth", "peer", "name", "p1")
	brOK(t, "-n", ns, "bridge", "addif", "br1", "v1")
	brIP(t, ns, "link", "set", "br1", "up")

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"addif", "br0", "v1"}, 1, "v1 is already a port of bridge br1"},
		{[]string{"addif", "br0", "br0"}, 1, "cannot add bridge br0 to itself"},
		{[]string{"addif", "br0", "br1"}, 1, "br1 is a bridge itself"},
		{[]string{"addif", "br0", "nosuch"}, 1, "device nosuch does not exist"},
		{[]string{"addif", "br0", "lo"}, 1, "lo is a loopback device; it cannot be a bridge port"},
		{[]string{"addif", "nobr", "p1"}, 1, "bridge nobr does not exist"},
		{[]string{"addif", "p1", "br0"}, 1, "p1 is not a bridge"},
		{[]string{"delif", "br0", "v1"}, 1, "v1 is not a port of br0"},
		{[]string{"del", "br1"}, 1, "br1 is still up; can't delete it (first: nsbox -n " + ns + " link set br1 down)"},
		{[]string{"hairpin", "br0", "v1", "on"}, 1, "v1 is not a port of br0"},
		{[]string{"hairpin", "br1", "v1", "maybe"}, 2, `expected on or off, got "maybe"`},
		{[]string{"hairpin", "br1", "v1"}, 2, "expected BR PORT on|off"},
		{[]string{"showstp", "p1"}, 1, "p1 is not a bridge"},
		{[]string{"showstp"}, 2, "expected BR"},
		{[]string{"del", "p1"}, 1, "p1 is not a bridge"},
		{[]string{"add", "br0"}, 1, "device br0 already exists"},
		{[]string{"add", "a/b"}, 2, "contains '/'"},
		{[]string{"add", "waytoolongname1234"}, 2, "longer than 15 bytes"},
		{[]string{"add"}, 2, "expected BR"},
		{[]string{"addif", "br0"}, 2, "expected BR DEV"},
		{[]string{"stp", "br0", "maybe"}, 2, `expected on or off, got "maybe"`},
		{[]string{"stp", "br0"}, 2, "expected BR on|off"},
		{[]string{"setfd", "br0", "-3"}, 2, "not a number of seconds"},
		{[]string{"setbridgeprio", "br0", "70000"}, 2, "not a number from 0 to 65535"},
		{[]string{"frobnicate"}, 2, "unknown subcommand"},
		{[]string{}, 2, "missing subcommand"},
		{[]string{"show", "nobr"}, 1, "bridge nobr does not exist"},
		{[]string{"showmacs", "v1"}, 1, "v1 is not a bridge"},
	} {
		code, out, errs := brRun(t, append([]string{"-n", ns, "bridge"}, tc.args...)...)
		if code != tc.code || !strings.HasPrefix(errs, "nsbox: ") || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, tc.msg) || out != "" {
			t.Errorf("nsbox bridge %s: exit %d stdout %q stderr %q; want exit %d and one line with %q",
				strings.Join(tc.args, " "), code, out, errs, tc.code, tc.msg)
		}
	}
	masters := map[string]string{}
	for _, p := range testutil.BridgeLinks(t, ns) {
		masters[p.Ifname] = p.Master
	}
	if len(masters) != 1 || masters["v1"] != "br1" {
		t.Errorf("after the refused commands: ports %v, want only v1 in br1", masters)
	}
	for _, br := range []string{"br0", "br1"} {
		if testutil.LinkDetail(t, ns, br) == nil {
			t.Errorf("%s is gone", br)
		}
	}
	if d := testutil.LinkDetail(t, ns, "a/b"); d != nil {
		t.Errorf("a/b exists")
	}
}

// TestBridgeCLIWalkthrough runs the walkthrough's bridge lines through a
// batch: a bridge in one namespace joins two client namespaces, which then
// reach each other, their MACs show in showmacs, and after delif they no
// longer reach each other.
func TestBridgeCLIWalkthrough(t *testing.T) {
	testutil.RequireTool(t, "ping")
	brNS, c1, c2 := testutil.NewNetns(t), testutil.NewNetns(t), testutil.NewNetns(t)
	testutil.VethInto(t, brNS, "h1", c1, "eth0")
	testutil.VethInto(t, brNS, "h2", c2, "eth0")
	for i, cns := range []string{c1, c2} {
		brIP(t, cns, "addr", "add", []string{"10.232.9.1/24", "10.232.9.2/24"}[i], "dev", "eth0")
		brIP(t, cns, "link", "set", "eth0", "up")
	}
	batch := filepath.Join(t.TempDir(), "bridge.batch")
	if err := os.WriteFile(batch, []byte("# brctl addbr br0; brctl addif br0 h1 h2\nbridge add br0\nbridge addif br0 h1\nbridge addif br0 h2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	brOK(t, "-n", brNS, "-b", batch)
	for _, dev := range []string{"h1", "h2", "br0"} {
		brIP(t, brNS, "link", "set", dev, "up")
	}

	ping := func() error {
		_, err := testutil.CmdErr("ip", "netns", "exec", c1, "ping", "-c1", "-W1", "10.232.9.2")
		return err
	}
	var err error
	for try := 0; try < 10; try++ { // bounded: ports need a moment to forward
		if err = ping(); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("ping through the bridge: %v", err)
	}

	mac := func(ns string) string {
		var l []struct {
			Address string `json:"address"`
		}
		testutil.IPJSON(t, &l, "-n", ns, "link", "show", "eth0")
		return l[0].Address
	}
	got := brOK(t, "-n", brNS, "bridge", "showmacs", "br0")
	want := testutil.Brctl(t, brNS, "showmacs", "br0")
	for _, m := range []string{mac(c1), mac(c2)} {
		if !strings.Contains(got, "\t"+m+"\tno\t\t") {
			t.Errorf("showmacs lacks learned %s:\n%s", m, got)
		}
	}
	// Same lines as brctl, but for the ageing timers, which move on.
	if brMaskTimers(got) != brMaskTimers(want) {
		t.Errorf("showmacs:\n%s\nbrctl showmacs:\n%s", got, want)
	}

	brOK(t, "-n", brNS, "bridge", "delif", "br0", "h2")
	if err := ping(); err == nil {
		t.Errorf("ping still works after delif")
	}
	if out := brOK(t, "-n", brNS, "bridge", "show", "br0"); strings.Contains(out, "h2") {
		t.Errorf("show after delif:\n%s", out)
	}
}

// brMaskTimers blanks the ageing timer column of showmacs output.
func brMaskTimers(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if j := strings.LastIndexByte(l, '\t'); j >= 0 && i > 0 {
			lines[i] = l[:j]
		}
	}
	return strings.Join(lines, "\n")
}

// TestBridgeCLISettings checks stp, setageing, setfd and setbridgeprio
// against ip -d link's info_data.
func TestBridgeCLISettings(t *testing.T) {
	ns := testutil.NewNetns(t)
	brOK(t, "-n", ns, "bridge", "add", "br0")
	brOK(t, "-n", ns, "bridge", "setageing", "br0", "42.5")
	brOK(t, "-n", ns, "bridge", "setfd", "br0", "4")
	brOK(t, "-n", ns, "bridge", "setbridgeprio", "br0", "4096")
	brOK(t, "-n", ns, "bridge", "stp", "br0", "on")
	info := testutil.LinkDetail(t, ns, "br0").Linkinfo.InfoData
	want := map[string]float64{"ageing_time": 4250, "forward_delay": 400, "priority": 4096, "stp_state": 1}
	for k, v := range want {
		if info[k] != v {
			t.Errorf("after the set commands: %s = %v, want %v", k, info[k], v)
		}
	}
	if out := brOK(t, "-n", ns, "bridge", "show"); !strings.Contains(out, "br0\t\t1000.") || !strings.Contains(out, "\tyes\t\t") {
		t.Errorf("show after setbridgeprio 4096 and stp on:\n%s", out)
	}
	brOK(t, "-n", ns, "bridge", "stp", "br0", "off")
	if v := testutil.LinkDetail(t, ns, "br0").Linkinfo.InfoData["stp_state"]; v != float64(0) {
		t.Errorf("stp_state after stp off: %v", v)
	}
}
