package main

import (
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestBridgeBrctlHabits runs brctl's addif with several devices, hairpin,
// showstp and delbr of a down bridge with ports through nsbox in one
// namespace and through brctl in a twin one, and compares what brctl, ip
// and sysfs then see.
func TestBridgeBrctlHabits(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "brctl")
	ours, theirs := testutil.NewNetns(t), testutil.NewNetns(t)
	for _, ns := range []string{ours, theirs} {
		for _, n := range []string{"1", "2", "3", "4"} {
			brIP(t, ns, "link", "add", "h"+n, "type", "veth", "peer", "name", "g"+n)
		}
	}
	brOK(t, "-n", ours, "bridge", "addbr", "bh")
	testutil.Brctl(t, theirs, "addbr", "bh")
	// Both bridges get the same MAC, so that their ids print the same.
	brIP(t, ours, "link", "set", "bh", "address", "02:00:00:00:0b:01")
	brIP(t, theirs, "link", "set", "bh", "address", "02:00:00:00:0b:01")

	// addif BR A B C: all of them, in order.
	brOK(t, "-n", ours, "bridge", "addif", "bh", "h1", "h2", "h3")
	testutil.Brctl(t, theirs, "addif", "bh", "h1", "h2", "h3")
	if got, want := testutil.Brctl(t, ours, "show", "bh"), testutil.Brctl(t, theirs, "show", "bh"); got != want {
		t.Errorf("after addif bh h1 h2 h3:\nnsbox's: %s\nbrctl's: %s", got, want)
	}
	// A failure stops the list there, as brctl does: h4 after it stays out.
	code, _, errs := brRun(t, "-n", ours, "bridge", "addif", "bh", "nosuch", "h4")
	_, brctlErr := testutil.CmdErr("ip", "netns", "exec", theirs, "brctl", "addif", "bh", "nosuch", "h4")
	if code != 1 || brctlErr == nil || !strings.Contains(errs, "device nosuch does not exist") {
		t.Errorf("addif with a missing device: nsbox exit %d %q, brctl err %v", code, errs, brctlErr)
	}
	if got, want := testutil.Brctl(t, ours, "show", "bh"), testutil.Brctl(t, theirs, "show", "bh"); got != want || strings.Contains(got, "h4") {
		t.Errorf("after a failed addif:\nnsbox's: %s\nbrctl's: %s", got, want)
	}

	// hairpin: what sysfs says, and showstp's extra line.
	brOK(t, "-n", ours, "bridge", "hairpin", "bh", "h2", "on")
	testutil.Brctl(t, theirs, "hairpin", "bh", "h2", "on")
	for _, ns := range []string{ours, theirs} {
		if out := testutil.Cmd(t, "ip", "netns", "exec", ns, "cat", "/sys/class/net/h2/brport/hairpin_mode"); out != "1\n" {
			t.Errorf("hairpin on: sysfs says %q", out)
		}
	}
	// showstp of a bridge that is down (its timers stand still), byte
	// for byte against brctl's.
	if got, want := brOK(t, "-n", ours, "bridge", "showstp", "bh"), testutil.Brctl(t, theirs, "showstp", "bh"); got != want {
		t.Errorf("showstp:\nnsbox's:\n%s\nbrctl's:\n%s", got, want)
	}
	brOK(t, "-n", ours, "bridge", "hairpin", "bh", "h2", "off")
	if out := testutil.Cmd(t, "ip", "netns", "exec", ours, "cat", "/sys/class/net/h2/brport/hairpin_mode"); out != "0\n" {
		t.Errorf("hairpin off: sysfs says %q", out)
	}

	// delbr: refused while up (brctl's words), done when down, ports kept.
	brIP(t, ours, "link", "set", "bh", "up")
	code, _, errs = brRun(t, "-n", ours, "bridge", "del", "bh")
	if code != 1 || !strings.Contains(errs, "bh is still up; can't delete it") {
		t.Errorf("del of an up bridge: exit %d %q", code, errs)
	}
	brIP(t, ours, "link", "set", "bh", "down")
	brOK(t, "-n", ours, "bridge", "delbr", "bh")
	testutil.Brctl(t, theirs, "delbr", "bh")
	for _, ns := range []string{ours, theirs} {
		if _, err := testutil.CmdErr("ip", "-n", ns, "link", "show", "dev", "bh"); err == nil {
			t.Errorf("bh still exists after delbr")
		}
		if d := testutil.LinkDetail(t, ns, "h1"); d == nil || d.Master != "" {
			t.Errorf("h1 after delbr: %+v (want it kept, without master)", d)
		}
	}
}
