package main

import (
	"strings"
	"syscall"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestErrorMessages checks the exact line and exit code of the failures
// issue 12 lists, through the built binary, on the C fast paths and on Go
// only: one line "nsbox: COMMAND OBJECT: what failed: why" naming what the
// user typed and what is at fault, no Go package names.
func TestErrorMessages(t *testing.T) {
	ns := testutil.NewNetns(t)
	peerNS := testutil.NewNetns(t)
	veth, peer := testutil.UniqueName("eva"), testutil.UniqueName("evb")
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", veth, "type", "veth", "peer", "name", peer)
	nobr := testutil.UniqueName("enobr")
	br := testutil.UniqueName("ebr")
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", br, "type", "bridge")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", br, "up")
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	newName := testutil.UniqueName("enew")

	type row struct {
		args []string
		cred *syscall.Credential
		code int
		want string // the whole of stderr
	}
	rows := []row{
		// The name at fault, in the command's words (was "rtnl: add veth X: file exists").
		{[]string{"-n", ns, "link", "add", veth, "type", "veth", "peer", "name", newName}, nil, 1,
			"nsbox: link add " + veth + ": a link named " + veth + " already exists in namespace " + ns + "\n"},
		// The peer's name clashes, not A's.
		{[]string{"-n", ns, "link", "add", newName, "type", "veth", "peer", "name", "lo"}, nil, 1,
			"nsbox: link add " + newName + ": peer lo: a link named lo already exists in namespace " + ns + "\n"},
		{[]string{"-n", ns, "link", "add", newName, "type", "veth", "peer", "name", "lo", "netns", peerNS}, nil, 1,
			"nsbox: link add " + newName + ": peer lo: a link named lo already exists in namespace " + peerNS + "\n"},
		// Said once (was "invalid namespace name ...: invalid namespace name: contains '/'").
		{[]string{"netns", "add", "nw/x"}, nil, 2, "nsbox: netns add nw/x: invalid namespace name: contains '/'\n"},
		// --net takes no value (was strconv.ParseBool).
		{[]string{"run", "--net=/run/netns/x", "true"}, nil, 2,
			"nsbox: run: --net=/run/netns/x: takes no value (to join a namespace: --netns /run/netns/x)\n"},
		// A missing bridge under -n NS: the advice keeps -n NS.
		{[]string{"-n", ns, "bridge", "addif", nobr, veth}, nil, 1,
			"nsbox: bridge addif " + nobr + " " + veth + ": bridge " + nobr + " does not exist (create it with nsbox -n " + ns + " bridge add " + nobr + ")\n"},
		{[]string{"-n", ns, "run", "--net", "--bridge", nobr, "--addr", "10.77.0.2/24", "true"}, nil, 125,
			"nsbox: run: bridge " + nobr + " does not exist (create it with nsbox -n " + ns + " bridge add " + nobr + ")\n"},
		// No offer: the interface and the time, no nsclone/nsnet stages.
		{[]string{"-n", ns, "run", "--net", "--bridge", br, "--dhcp", "--dhcp-timeout", "1s", "true"}, nil, 125,
			"nsbox: run: dhcp eth0: no offer in 1s\n"},
		// netns exec as a user: the hint run has.
		{[]string{"netns", "exec", ns, "true"}, nobody, 125,
			"nsbox: netns exec " + ns + ": clone mnt: operation not permitted (netns exec needs root, as ip netns exec does: it joins the namespace and mounts /sys in a new mount namespace)\n"},
		{[]string{"-n", ns, "link", "set", "lo", "master", nobr}, nil, 1, "nsbox: link set lo: master " + nobr + ": no such device\n"},
		{[]string{"-n", ns, "link", "del", nobr}, nil, 1, "nsbox: link del " + nobr + ": no such device\n"},
		{[]string{"-n", ns, "addr", "add", "10.77.1.1/24", "dev", nobr}, nil, 1, "nsbox: addr add 10.77.1.1/24 dev " + nobr + ": no such device\n"},
		{[]string{"-n", ns, "route", "add", "10.78.0.0/16", "dev", nobr}, nil, 1, "nsbox: route add 10.78.0.0/16 dev " + nobr + ": no such device\n"},
		{[]string{"-n", ns, "netns", "exec", ns, "true"}, nil, 2,
			"nsbox: netns exec " + ns + ": -n " + ns + " does not apply (netns exec names its namespace; drop -n)\n"},
		{[]string{"-n", "nsbox-nosuch-ns", "link", "show"}, nil, 1, "nsbox: netns nsbox-nosuch-ns: no such namespace (see nsbox netns list)\n"},
		{[]string{"dhcp", "eth0", "--timeout", "soon"}, nil, 2, "nsbox: dhcp: --timeout soon: not a duration (for example 500ms, 10s, 2m)\n"},
	}
	for _, mode := range []string{"0", "1"} {
		for _, r := range rows {
			_, errOut, code := cliWith(t, []string{"NSBOX_NO_FASTPATH=" + mode}, r.cred, r.args...)
			if code != r.code || errOut != r.want {
				t.Errorf("NSBOX_NO_FASTPATH=%s nsbox %s:\n got exit %d, %q\nwant exit %d, %q", mode, strings.Join(r.args, " "), code, errOut, r.code, r.want)
			}
		}
	}
	// Nothing was made by the failures: the names that clashed or were
	// missing are as they were.
	out := testutil.Cmd(t, "ip", "-n", ns, "-br", "link", "show")
	for _, n := range []string{newName, nobr} {
		if strings.Contains(out, n) {
			t.Errorf("a failed command left %s behind:\n%s", n, out)
		}
	}
}
