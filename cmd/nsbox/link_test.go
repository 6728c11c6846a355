package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// nlRun runs nsbox in-process and returns its exit code, stdout and stderr.
func nlRun(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := realMain(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// nlOK runs nsbox and fails the test unless it exits 0.
func nlOK(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := nlRun(t, "", args...)
	if code != 0 {
		t.Fatalf("nsbox %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// nlJSON decodes JSON output into a slice of generic objects.
func nlJSON(t *testing.T, what, s string) []map[string]any {
	t.Helper()
	var v []map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: decode %q: %v", what, s, err)
	}
	return v
}

// nlCompareJSON compares nsbox's -j output with ip's for the same command,
// object by object and key by key: every key either prints must be equal.
func nlCompareJSON(t *testing.T, ns string, ipArgs []string, nsboxArgs []string) {
	t.Helper()
	want := nlJSON(t, "ip", testutil.Cmd(t, "ip", append([]string{"-j", "-n", ns}, ipArgs...)...))
	got := nlJSON(t, "nsbox", nlOK(t, append([]string{"-n", ns, "-j"}, nsboxArgs...)...))
	if len(got) != len(want) {
		t.Fatalf("nsbox -j %v: %d objects, ip -j %v: %d\nnsbox: %v\nip:    %v", nsboxArgs, len(got), ipArgs, len(want), got, want)
	}
	for i := range want {
		keys := map[string]bool{}
		for k := range want[i] {
			keys[k] = true
		}
		for k := range got[i] {
			keys[k] = true
		}
		for k := range keys {
			if !reflect.DeepEqual(got[i][k], want[i][k]) {
				t.Errorf("object %d (%v) key %q: nsbox %v, ip %v", i, want[i]["ifname"], k, got[i][k], want[i][k])
			}
		}
	}
}

// nlLinkNames lists the links of ns as ip sees them.
func nlLinkNames(t *testing.T, ns string) []string {
	t.Helper()
	var links []struct {
		Ifname string `json:"ifname"`
	}
	testutil.IPJSON(t, &links, "-n", ns, "link", "show")
	var names []string
	for _, l := range links {
		names = append(names, l.Ifname)
	}
	return names
}

func TestLinkCLIMatchesIP(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	peer := testutil.NewNetns(t)
	nlOK(t, "-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb")
	nlOK(t, "-n", ns, "link", "add", "br0", "type", "bridge")
	nlOK(t, "-n", ns, "link", "add", "hub0", "type", "veth", "peer", "name", "eth0", "netns", peer)
	nlOK(t, "-n", ns, "link", "set", "va", "master", "br0", "up", "mtu", "1400", "address", "02:00:00:aa:bb:01")
	nlOK(t, "-n", ns, "link", "set", "dev", "br0", "up")

	// The state, as ip sees it.
	var va []struct {
		Flags   []string `json:"flags"`
		MTU     int      `json:"mtu"`
		Address string   `json:"address"`
		Master  string   `json:"master"`
	}
	testutil.IPJSON(t, &va, "-n", ns, "link", "show", "va")
	if len(va) != 1 || va[0].MTU != 1400 || va[0].Address != "02:00:00:aa:bb:01" || va[0].Master != "br0" || !strings.Contains(strings.Join(va[0].Flags, ","), "UP") {
		t.Fatalf("ip sees va as %+v", va)
	}
	if names := nlLinkNames(t, peer); !reflect.DeepEqual(names, []string{"lo", "eth0"}) {
		t.Fatalf("peer namespace holds %v, want lo and eth0", names)
	}

	// JSON field by field and text line by line against ip.
	nlCompareJSON(t, ns, []string{"link", "show"}, []string{"link", "list"})
	nlCompareJSON(t, ns, []string{"link", "show", "va"}, []string{"link", "show", "va"})
	nlCompareJSON(t, peer, []string{"link", "show"}, []string{"link", "show"})
	if got, want := nlOK(t, "-n", ns, "link", "show"), testutil.Cmd(t, "ip", "-n", ns, "link", "show"); got != want {
		t.Errorf("nsbox link show:\n%s\nip link show:\n%s", got, want)
	}

	// Rename, nomaster, down, move by name, delete.
	nlOK(t, "-n", ns, "link", "set", "vb", "name", "vb2")
	nlOK(t, "-n", ns, "link", "set", "va", "nomaster", "down")
	nlOK(t, "-n", ns, "link", "set", "vb2", "netns", peer)
	if names := nlLinkNames(t, peer); !reflect.DeepEqual(names, []string{"lo", "eth0", "vb2"}) {
		t.Errorf("after the move the peer namespace holds %v", names)
	}
	nlOK(t, "-n", ns, "link", "del", "va")
	nlOK(t, "-n", ns, "link", "del", "dev", "hub0")
	if names := nlLinkNames(t, ns); !reflect.DeepEqual(names, []string{"lo", "br0"}) {
		t.Errorf("after deletes %s holds %v", ns, names)
	}
	if names := nlLinkNames(t, peer); !reflect.DeepEqual(names, []string{"lo"}) {
		t.Errorf("after deletes %s holds %v (veth peers must go with their ends)", peer, names)
	}
}

// TestBadInput: bad words, names, addresses and numbers are refused with one
// nsbox: line and exit 2 before anything changes; failed operations exit 1
// and leave the existing state as it was.
func TestBadInput(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	nlOK(t, "-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb")
	nlOK(t, "-n", ns, "addr", "add", "10.3.0.1/24", "dev", "va")
	before := testutil.Cmd(t, "ip", "-d", "-n", ns, "addr", "show")
	netnsBefore := testutil.Cmd(t, "ip", "netns", "list")
	cases := []struct {
		code int
		want string
		args []string
	}{
		{2, "invalid interface name", []string{"link", "add", "abcdefghijklmnop", "type", "bridge"}},
		{2, "invalid interface name", []string{"link", "add", "a/b", "type", "bridge"}},
		{2, "invalid interface name", []string{"link", "add", "a:b", "type", "bridge"}},
		{2, "invalid interface name", []string{"link", "add", "a b", "type", "bridge"}},
		{2, "invalid interface name", []string{"link", "add", "..", "type", "bridge"}},
		{2, "link add: empty interface name", []string{"link", "add", "", "type", "bridge"}},
		{2, "invalid interface name", []string{"link", "add", "x1", "type", "veth", "peer", "name", "bad/peer"}},
		{2, "unsupported type", []string{"link", "add", "x1", "type", "wireguardish"}},
		{2, "unknown subcommand", []string{"link", "frobnicate"}},
		{2, "unknown setting", []string{"link", "set", "va", "sideways"}},
		{2, "invalid MTU", []string{"link", "set", "va", "mtu", "abc"}},
		{2, "invalid MTU", []string{"link", "set", "va", "mtu", "10"}},
		{2, "invalid MTU", []string{"link", "set", "va", "mtu", "99999999999"}},
		{2, "invalid MAC", []string{"link", "set", "va", "address", "02:00:00:zz:00:01"}},
		{2, "invalid MAC", []string{"link", "set", "va", "address", "02:00:00:00:01"}},
		{2, "multicast", []string{"link", "set", "va", "address", "01:00:5e:00:00:01"}},
		{2, "needs a value", []string{"link", "set", "va", "up", "mtu"}},
		{2, "invalid address", []string{"addr", "add", "10.3.0.300/24", "dev", "va"}},
		{2, "out of range", []string{"addr", "add", "10.3.0.2/33", "dev", "va"}},
		{2, "out of range", []string{"addr", "add", "fd00::2/129", "dev", "va"}},
		{2, "invalid prefix length", []string{"addr", "add", "10.3.0.2/-1", "dev", "va"}},
		{2, "invalid prefix length", []string{"addr", "add", "10.3.0.2/", "dev", "va"}},
		{2, "missing \"dev DEV\"", []string{"addr", "add", "10.3.0.2/24"}},
		{2, "unknown subcommand", []string{"addr", "munge"}},
		{2, "host bits set", []string{"route", "add", "10.9.0.1/16", "dev", "va"}},
		{2, "invalid gateway", []string{"route", "add", "default", "via", "10.3.0.x"}},
		{2, "invalid metric", []string{"route", "add", "default", "via", "10.3.0.254", "metric", "-5"}},
		{2, "different families", []string{"route", "add", "fd00:1::/64", "via", "10.3.0.254"}},
		{2, "needs \"via GW\" or \"dev DEV\"", []string{"route", "add", "10.8.0.0/16"}},
		{2, "invalid namespace name", []string{"netns", "add", "../escape"}},
		{2, "invalid namespace name", []string{"netns", "add", "."}},
		{2, "invalid namespace name", []string{"netns", "del", ".."}},
		{2, "invalid namespace name", []string{"netns", "add", "a/b"}},
		{2, "unknown subcommand", []string{"netns", "teleport"}},
		{1, "no such device", []string{"link", "set", "nosuch0", "up"}},
		{1, "no such device", []string{"addr", "add", "10.3.0.2/24", "dev", "nosuch0"}},
		{1, "no such device", []string{"link", "del", "nosuch0"}},
		{1, "link add va: a link named va already exists", []string{"link", "add", "va", "type", "bridge"}},
		{1, "link add vx: peer vb: a link named vb already exists", []string{"link", "add", "vx", "type", "veth", "peer", "name", "vb"}},
		{1, "file exists", []string{"addr", "add", "10.3.0.1/24", "dev", "va"}},
		{1, "no such namespace", []string{"link", "add", "vz", "type", "veth", "peer", "name", "vz1", "netns", "nsbox-missing-ns"}},
		{1, "no such namespace", []string{"link", "set", "va", "netns", "nsbox-missing-ns"}},
		{1, "greater than device maximum", []string{"link", "set", "va", "mtu", "65536"}},
	}
	for _, c := range cases {
		code, out, errs := nlRun(t, "", append([]string{"-n", ns}, c.args...)...)
		if code != c.code || !strings.HasPrefix(errs, "nsbox: ") || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, c.want) || out != "" {
			t.Errorf("nsbox %s: exit %d, stderr %q; want exit %d and one nsbox: line with %q", strings.Join(c.args, " "), code, errs, c.code, c.want)
		}
	}
	if after := testutil.Cmd(t, "ip", "-d", "-n", ns, "addr", "show"); after != before {
		t.Errorf("bad input changed the namespace:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Other packages' tests make namespaces concurrently, so only the names
	// these bad inputs could have produced are checked.
	after := testutil.Cmd(t, "ip", "netns", "list")
	for _, f := range strings.Fields(after) {
		switch f {
		case ".", "..", "a", "b", "escape", "nsbox-missing-ns":
			if !strings.Contains(netnsBefore, f) {
				t.Errorf("bad input created namespace %q:\n%s", f, after)
			}
		}
	}
	for _, p := range []string{"/run/escape", "/run/netns/a"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}
	if code, _, errs := nlRun(t, "", "-n", "nsbox-missing-ns", "link", "list"); code != 1 || !strings.Contains(errs, "no such namespace") {
		t.Errorf("-n of a missing namespace: exit %d, %q", code, errs)
	}
}

// TestBatch runs a -b file over several namespaces: one connection per
// namespace, a failing line is named, and the lines before it stay done.
func TestBatch(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	sub := testutil.UniqueName("nsbb")
	t.Cleanup(func() { testutil.CmdErr("ip", "netns", "del", sub) })
	script := strings.Join([]string{
		"# a hub and a namespace joined by a veth",
		"netns add " + sub,
		"link add h0 type veth peer name eth0 netns " + sub,
		"addr add 10.44.0.1/24 dev h0",
		"link set h0 up",
		"-n " + sub + " addr add 10.44.0.2/24 dev eth0",
		"-n " + sub + " link set eth0 up",
		"-n " + sub + " route add default via 10.44.0.1",
		"",
		"link add h0 type bridge",
		"link add never type bridge",
	}, "\n")
	file := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := nlRun(t, "", "-n", ns, "-b", file)
	if code != 1 || !strings.Contains(errs, "line 10: link add h0: a link named h0 already exists") {
		t.Fatalf("batch: exit %d, %q; want exit 1 naming line 10", code, errs)
	}
	var routes []struct {
		Dst, Gateway, Dev string
	}
	testutil.IPJSON(t, &routes, "-n", sub, "route", "show", "default")
	if len(routes) != 1 || routes[0].Gateway != "10.44.0.1" || routes[0].Dev != "eth0" {
		t.Errorf("default route in %s: %+v", sub, routes)
	}
	if names := nlLinkNames(t, ns); !reflect.DeepEqual(names, []string{"lo", "h0"}) {
		t.Errorf("hub holds %v; the line after the failure must not run", names)
	}
	// Packets cross: the namespace pings the hub.
	testutil.Cmd(t, "ip", "netns", "exec", sub, "ping", "-c", "1", "-W", "5", "10.44.0.1")
	// Batch from stdin.
	code, _, errs = nlRun(t, "link set h0 down\n-n "+sub+" link set eth0 down\n", "-n", ns, "-b", "-")
	if code != 0 {
		t.Fatalf("batch from stdin: exit %d: %s", code, errs)
	}
	nlOK(t, "netns", "del", sub)
}

// TestLinkNetnsByPathAndPid: `netns NS` takes a name, a path or a pid.
func TestLinkNetnsByPathAndPid(t *testing.T) {
	testutil.RequirePriv(t)
	ns := testutil.NewNetns(t)
	byPath := testutil.NewNetns(t)
	byPid := testutil.NewNetns(t)
	sleeper := exec.Command("ip", "netns", "exec", byPid, "sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	pid := strconv.Itoa(sleeper.Process.Pid)
	for i := 0; i < 100; i++ { // until ip has entered the namespace
		if out, _ := testutil.CmdErr("ip", "netns", "identify", pid); strings.TrimSpace(out) == byPid {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	nlOK(t, "-n", ns, "link", "add", "pa", "type", "veth", "peer", "name", "pb", "netns", "/run/netns/"+byPath)
	nlOK(t, "-n", ns, "link", "add", "qa", "type", "veth", "peer", "name", "qb")
	nlOK(t, "-n", ns, "link", "set", "qb", "netns", pid)
	if names := nlLinkNames(t, byPath); !reflect.DeepEqual(names, []string{"lo", "pb"}) {
		t.Errorf("%s holds %v, want lo and pb", byPath, names)
	}
	if names := nlLinkNames(t, byPid); !reflect.DeepEqual(names, []string{"lo", "qb"}) {
		t.Errorf("%s (pid %s) holds %v, want lo and qb", byPid, pid, names)
	}
}
