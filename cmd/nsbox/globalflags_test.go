package main

import (
	"io"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestGlobalFlagsLikeIP checks the abbreviations that ip.c's matches()
// order gives: -br is -brief (not -b r), -b is -batch, -s stats, ...
func TestGlobalFlagsLikeIP(t *testing.T) {
	for _, tc := range []struct {
		args    string
		rest    string
		batch   string
		check   func(e *env) bool
		wantErr string
	}{
		{args: "-br link", rest: "link", check: func(e *env) bool { return e.brief }},
		{args: "--brief link", rest: "link", check: func(e *env) bool { return e.brief }},
		{args: "-b f", batch: "f"},
		{args: "-batch f", batch: "f"},
		{args: "-s -s -d link", rest: "link", check: func(e *env) bool { return e.stats == 2 && e.details == 1 }},
		{args: "-stat link", rest: "link", check: func(e *env) bool { return e.stats == 1 }},
		{args: "-statistics link", rest: "link", check: func(e *env) bool { return e.stats == 1 }},
		{args: "-j -p a", rest: "a", check: func(e *env) bool { return e.json && e.pretty }},
		{args: "-4 r", rest: "r", check: func(e *env) bool { return e.family == unix.AF_INET }},
		{args: "-6 r", rest: "r", check: func(e *env) bool { return e.family == unix.AF_INET6 }},
		{args: "-f inet6 r", rest: "r", check: func(e *env) bool { return e.family == unix.AF_INET6 }},
		{args: "-n x l", rest: "l", check: func(e *env) bool { return e.netns == "x" }},
		{args: "-netns x l", rest: "l", check: func(e *env) bool { return e.netns == "x" }},
		{args: "--netns=x l", rest: "l", check: func(e *env) bool { return e.netns == "x" }},
		{args: "-- -x", rest: "-x"},
		{args: "-46 l", wantErr: `unknown global flag "-46"`},
		{args: "-x l", wantErr: `unknown global flag "-x"`},
		{args: "-n", wantErr: "-n needs a value"},
		{args: "-brief=1 l", wantErr: "-brief takes no value"},
	} {
		e := newEnv(nil, io.Discard, io.Discard)
		rest, batch, _, err := e.globalFlags(strings.Fields(tc.args))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || exitCodeOf(err) != exitUsage {
				t.Errorf("%q: err %v, want %q (usage)", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if strings.Join(rest, " ") != tc.rest || batch != tc.batch || (tc.check != nil && !tc.check(e)) {
			t.Errorf("%q: rest %q batch %q env %+v", tc.args, rest, batch, e)
		}
	}
}

// TestSubcommandAbbreviations checks ip's first-match order.
func TestSubcommandAbbreviations(t *testing.T) {
	link := []string{"add", "set", "change", "delete", "show", "lst", "list", "help"}
	for word, want := range map[string]string{"s": "set", "sh": "show", "l": "lst", "li": "list", "d": "delete", "del": "delete", "a": "add", "x": "", "": ""} {
		if got := subcommand(word, link...); got != want {
			t.Errorf("link %q: %q, want %q", word, got, want)
		}
	}
	e := newEnv(nil, io.Discard, io.Discard)
	for word, want := range map[string]string{"a": "addr", "ad": "addr", "addr": "addr", "address": "addr",
		"r": "route", "ro": "route", "l": "link", "li": "link", "net": "netns", "netns": "netns",
		"bridge": "bridge", "b": "", "ru": "", "addrx": ""} {
		c := e.lookupCommand(word)
		got := ""
		if c != nil {
			got = c.name
		}
		if got != want {
			t.Errorf("command %q: %q, want %q", word, got, want)
		}
	}
}

// TestOutputFlagsMatchIP compares nsbox's output with ip's, byte for byte,
// for the output flags and abbreviations, in a namespace of the test's.
func TestOutputFlagsMatchIP(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "lo", "up")
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "oa", "type", "veth", "peer", "name", "ob")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "10.61.0.1/24", "dev", "oa")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "10.61.0.9/24", "dev", "oa")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "fd00:61::1/64", "dev", "oa", "nodad")
	testutil.Cmd(t, "ip", "-n", ns, "addr", "add", "10.62.0.1/24", "dev", "ob")
	// oa stays down (its peer too), so no DAD or carrier change can make
	// the two tools' views differ between calls.
	for _, args := range []string{
		"-br link", "-br addr", "-br -4 addr", "-br -6 addr", "-4 addr", "-6 addr",
		"-s link", "-s -s link", "-s addr", "-j -s link", "-j -s -s link", "-br -j link",
		"-br -j addr", "-j -p addr", "-j -p -s addr", "-j -p link", "-j -p route",
		"-6 addr show dev lo", "-4 -j addr", "-6 -j addr", "-6 route", "-4 route", "-6 -j route",
		"l", "li", "li sh", "l ls", "a", "a s", "a l", "ad sh dev oa", "r", "r s", "ro li",
		"-br l sh dev ob", "-s l sh dev oa", "--brief --json link",
		"-d link", "-d -j link", "-d addr", "-d -j addr", "-d -s link show dev oa", "-d -j -p link show dev lo",
	} {
		words := strings.Fields(args)
		got := nlOK(t, append([]string{"-n", ns}, words...)...)
		want := testutil.Cmd(t, "ip", append([]string{"-n", ns}, words...)...)
		if got != want {
			t.Errorf("nsbox %s differs from ip:\n%s---\n%s", args, got, want)
		}
	}
}

// TestDetailsOfBridgesMatchIP compares ip -d for a bridge and its ports
// (the IFLA_BR_* and IFLA_BRPORT_* blocks) with nsbox's, byte for byte. The
// bridge stays down, so that its timers stand still between the calls.
func TestDetailsOfBridgesMatchIP(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "dbr", "type", "bridge", "stp_state", "1", "priority", "7")
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "da", "type", "veth", "peer", "name", "db")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "da", "master", "dbr")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "db", "master", "dbr")
	testutil.Cmd(t, "bridge", "-n", ns, "link", "set", "dev", "db", "hairpin", "on", "cost", "9")
	for _, args := range []string{
		"-d link", "-d -j link", "-d addr", "-d -j -p link show dev dbr", "-d link show dev db", "-d -j addr show dev da",
	} {
		words := strings.Fields(args)
		got := nlOK(t, append([]string{"-n", ns}, words...)...)
		want := testutil.Cmd(t, "ip", append([]string{"-n", ns}, words...)...)
		if got != want {
			t.Errorf("nsbox %s differs from ip:\n%s---\n%s", args, got, want)
		}
	}
}
