package nat_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/nat"
	"github.com/nsbox/nsbox/netns"
)

func TestMain(m *testing.M) { os.Exit(testutil.MainWithLeakCheck(m)) }

func openTable(t *testing.T, ns string) *nat.Table {
	t.Helper()
	h, err := netns.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tb, err := nat.Open(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

func forwarding(t *testing.T, ns string) string {
	t.Helper()
	return strings.TrimSpace(testutil.Cmd(t, "ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward"))
}

// nsboxRules returns the comments of the rules in table ip nsbox, and
// whether the table exists at all.
func nsboxRules(t *testing.T, ns string) (bool, []string) {
	t.Helper()
	tables, comments := testutil.NftRules(t, ns)
	var ours []string
	for _, c := range comments {
		if strings.HasPrefix(c, "nsbox ") {
			ours = append(ours, c)
		}
	}
	return slices.Contains(tables, "ip nsbox"), ours
}

func TestMasquerade(t *testing.T) {
	lab := testutil.NewNATLab(t)
	sb, _ := lab.AddSandbox(t, 5)
	ctx := context.Background()
	// A table of someone else's, which nsbox must leave alone.
	testutil.Cmd(t, "ip", "netns", "exec", lab.HostNS, "nft", "add table inet theirs; add chain inet theirs c; add rule inet theirs c counter comment \"theirs\"")

	if out, err := testutil.Curl(sb, lab.ServerURL); err == nil {
		t.Fatalf("sandbox reached the outside server without NAT: %q", out)
	}
	if got := forwarding(t, lab.HostNS); got != "0" {
		t.Fatalf("a fresh namespace has ip_forward %s", got)
	}
	tb := openTable(t, lab.HostNS)
	if err := tb.AddMasquerade(ctx, nat.Masquerade{Bridge: lab.Bridge}); err != nil {
		t.Fatal(err)
	}
	_, first := nsboxRules(t, lab.HostNS)
	if err := tb.AddMasquerade(ctx, nat.Masquerade{Bridge: lab.Bridge}); err != nil {
		t.Fatalf("second add: %v", err)
	}
	exists, again := nsboxRules(t, lab.HostNS)
	if !exists || len(first) == 0 || !slices.Equal(first, again) {
		t.Fatalf("add is not idempotent: %q then %q", first, again)
	}
	if got := forwarding(t, lab.HostNS); got != "1" {
		t.Fatalf("ip_forward = %s after masquerade", got)
	}
	out, err := testutil.Curl(sb, lab.ServerURL)
	if err != nil || strings.TrimSpace(out) != lab.Token {
		t.Fatalf("fetch through NAT: %q, %v", out, err)
	}
	if log := lab.ServerLog(); !strings.Contains(log, lab.HostOutsideIP+"]") || strings.Contains(log, "10.88.0.5") {
		t.Fatalf("server log does not show the masqueraded address %s only:\n%s", lab.HostOutsideIP, log)
	}
	entries, err := tb.List(ctx)
	if err != nil || len(entries) != 1 || entries[0].Kind != "masquerade" || !slices.Equal(entries[0].Subnets, []string{"10.88.0.0/24"}) {
		t.Fatalf("List = %+v, %v", entries, err)
	}

	if err := tb.RemoveMasquerade(ctx, nat.Masquerade{Bridge: lab.Bridge}); err != nil {
		t.Fatal(err)
	}
	if exists, rules := nsboxRules(t, lab.HostNS); exists || len(rules) != 0 {
		t.Fatalf("after removal: table %v, rules %q", exists, rules)
	}
	if tables, comments := testutil.NftRules(t, lab.HostNS); !slices.Equal(tables, []string{"inet theirs"}) || !slices.Equal(comments, []string{"theirs"}) {
		t.Fatalf("someone else's table changed: %q %q", tables, comments)
	}
	if got := forwarding(t, lab.HostNS); got != "0" {
		t.Fatalf("ip_forward = %s after the last entry went (was 0 before)", got)
	}
	if _, err := testutil.Curl(sb, lab.ServerURL); err == nil {
		t.Fatal("sandbox still reaches the outside after removal")
	}
	if err := tb.RemoveMasquerade(ctx, nat.Masquerade{Bridge: lab.Bridge}); !errors.Is(err, nat.ErrNotFound) {
		t.Fatalf("removing twice: %v, want ErrNotFound", err)
	}
}

// startWeb runs busybox httpd on port 80 in ns, serving body.
func startWeb(t *testing.T, ns, body string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/index.html", []byte(body+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testutil.StartProc(t, "ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", "80", "-h", dir)
	testutil.WaitTCPListen(t, ns, 80, p)
}

func TestPublish(t *testing.T) {
	lab := testutil.NewNATLab(t)
	web, webAddr := lab.AddSandbox(t, 5)
	other, _ := lab.AddSandbox(t, 6)
	startWeb(t, web, "web-"+lab.Token)
	ctx := context.Background()
	tb := openTable(t, lab.HostNS)
	me, err := nat.Self("web")
	if err != nil {
		t.Fatal(err)
	}
	p := nat.Publish{Bridge: lab.Bridge, HostPort: 8080, Addr: netip.MustParseAddr(webAddr), Port: 80, Owner: me}
	hostURL := "http://" + lab.HostOutsideIP + ":8080/"
	if _, err := testutil.Curl(lab.OutsideNS, hostURL); err == nil {
		t.Fatal("port 8080 answers before it is published")
	}
	if err := tb.Publish(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ who, ns, url string }{
		{"outside", lab.OutsideNS, hostURL},
		{"host namespace (output chain)", lab.HostNS, hostURL},
		{"host namespace, bridge address", lab.HostNS, "http://" + lab.BridgeIP + ":8080/"},
		{"another sandbox (hairpin)", other, "http://" + lab.BridgeIP + ":8080/"},
	} {
		out, err := testutil.Curl(c.ns, c.url)
		if err != nil || strings.TrimSpace(out) != "web-"+lab.Token {
			t.Errorf("%s: %s = %q, %v", c.who, c.url, out, err)
		}
	}

	// The same port again, by someone else: refused, naming the holder.
	q := p
	q.Owner = nat.Owner{Name: "sandbox other"}
	q.Addr = netip.MustParseAddr("10.88.0.6")
	err = tb.Publish(ctx, q)
	if !errors.Is(err, nat.ErrPortTaken) || !strings.Contains(err.Error(), "web (pid ") {
		t.Fatalf("second publish of 8080: %v, want ErrPortTaken naming web", err)
	}
	q.Proto = "udp" // another protocol is another port
	if err := tb.Publish(ctx, q); err != nil {
		t.Fatalf("udp 8080 beside tcp 8080: %v", err)
	}
	if err := tb.Unpublish(ctx, q); err != nil {
		t.Fatal(err)
	}

	if err := tb.Unpublish(ctx, p); err != nil {
		t.Fatal(err)
	}
	if exists, rules := nsboxRules(t, lab.HostNS); exists || len(rules) != 0 {
		t.Fatalf("after unpublish: table %v, rules %q", exists, rules)
	}
	if _, err := testutil.Curl(lab.OutsideNS, hostURL); err == nil {
		t.Fatal("port 8080 still answers after unpublish")
	}
}

// TestDeadOwner: the entries of a process that died without removing them
// go at the next operation on the table.
func TestDeadOwner(t *testing.T) {
	lab := testutil.NewNATLab(t)
	ctx := context.Background()
	tb := openTable(t, lab.HostNS)
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	o, err := nat.Process(sleeper.Process.Pid, "sleeper")
	if err != nil {
		t.Fatal(err)
	}
	p := nat.Publish{Bridge: lab.Bridge, HostPort: 9090, Addr: netip.MustParseAddr("10.88.0.9"), Port: 90, Owner: o}
	if err := tb.Publish(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := tb.AddMasquerade(ctx, nat.Masquerade{Bridge: lab.Bridge, Owner: o}); err != nil {
		t.Fatal(err)
	}
	if n, err := tb.Collect(ctx); err != nil || n != 0 {
		t.Fatalf("Collect while the owner lives = %d, %v", n, err)
	}
	if _, rules := nsboxRules(t, lab.HostNS); len(rules) < 5 {
		t.Fatalf("rules while the owner lives: %q", rules)
	}
	sleeper.Process.Kill()
	sleeper.Wait()
	n, err := tb.Collect(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Collect after the owner died = %d, %v (want 2 entries)", n, err)
	}
	if exists, rules := nsboxRules(t, lab.HostNS); exists || len(rules) != 0 {
		t.Fatalf("after the owner died: table %v, rules %q", exists, rules)
	}
}

// TestPublishOverDeadOwner: a Publish whose collection of dead owners
// leaves no other entry keeps the table with its own rules (the batch
// deleted the table after adding them once), and forwarding on.
func TestPublishOverDeadOwner(t *testing.T) {
	lab := testutil.NewNATLab(t)
	ctx := context.Background()
	tb := openTable(t, lab.HostNS)
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	dead, err := nat.Process(sleeper.Process.Pid, "sleeper")
	if err != nil {
		t.Fatal(err)
	}
	p := nat.Publish{Bridge: lab.Bridge, HostPort: 9090, Addr: netip.MustParseAddr("10.88.0.9"), Port: 90, Owner: dead}
	if err := tb.Publish(ctx, p); err != nil {
		t.Fatal(err)
	}
	sleeper.Process.Kill()
	sleeper.Wait()
	me, err := nat.Self("me")
	if err != nil {
		t.Fatal(err)
	}
	q := nat.Publish{Bridge: lab.Bridge, HostPort: 9090, Addr: netip.MustParseAddr("10.88.0.10"), Port: 90, Owner: me}
	if err := tb.Publish(ctx, q); err != nil {
		t.Fatalf("publish over a dead owner's port: %v", err)
	}
	exists, rules := nsboxRules(t, lab.HostNS)
	n := 0
	for _, r := range rules {
		if strings.Contains(r, "addr=10.88.0.10&") {
			n++
		} else if !strings.HasPrefix(r, "nsbox state ") {
			t.Errorf("rule left of the dead owner: %q", r)
		}
	}
	if !exists || n != 4 || forwarding(t, lab.HostNS) != "1" {
		t.Fatalf("after publishing over a dead owner: table %v, rules %q, forwarding %s", exists, rules, forwarding(t, lab.HostNS))
	}
	if err := tb.Unpublish(ctx, q); err != nil {
		t.Fatal(err)
	}
	if exists, rules := nsboxRules(t, lab.HostNS); exists || len(rules) != 0 {
		t.Fatalf("after unpublish: table %v, rules %q", exists, rules)
	}
}

func TestBadInput(t *testing.T) {
	lab := testutil.NewNATLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tb := openTable(t, lab.HostNS)
	testutil.Cmd(t, "ip", "-n", lab.HostNS, "link", "add", "bare0", "type", "bridge")
	for _, c := range []struct {
		m    nat.Masquerade
		want string
	}{
		{nat.Masquerade{Bridge: "bare0"}, "bridge bare0 has no IPv4 address"},
		{nat.Masquerade{Bridge: "out0"}, "out0 is not a bridge"},
		{nat.Masquerade{Bridge: "nosuch0"}, "nosuch0"},
		{nat.Masquerade{Bridge: lab.Bridge, Out: lab.Bridge}, "the outgoing interface is the bridge itself"},
		{nat.Masquerade{Bridge: "a/b"}, "a/b"},
	} {
		err := tb.AddMasquerade(ctx, c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "nat: masquerade ") {
			t.Errorf("AddMasquerade(%+v) = %v, want an error containing %q", c.m, err, c.want)
		}
	}
	a := netip.MustParseAddr("10.88.0.5")
	for _, p := range []nat.Publish{
		{Bridge: lab.Bridge, HostPort: 0, Addr: a, Port: 80},
		{Bridge: lab.Bridge, HostPort: 80, Addr: a, Port: 0},
		{Bridge: lab.Bridge, HostPort: 80, Addr: a, Port: 80, Proto: "sctp"},
		{Bridge: lab.Bridge, HostPort: 80, Addr: netip.MustParseAddr("fd00::1"), Port: 80},
	} {
		if err := tb.Publish(ctx, p); err == nil || !strings.HasPrefix(err.Error(), "nat: publish ") {
			t.Errorf("Publish(%+v) = %v, want an error", p, err)
		}
	}
	if exists, rules := nsboxRules(t, lab.HostNS); exists || len(rules) != 0 {
		t.Fatalf("bad input left: table %v, rules %q", exists, rules)
	}
	if got := forwarding(t, lab.HostNS); got != "0" {
		t.Fatalf("bad input turned forwarding on")
	}
}

// TestPublishBesideEntry: a publish into an existing table (beside a
// masquerade) adds its rules without touching the table's base chains, and
// re-adds a base chain that someone deleted; the host namespace's own
// connection then reaches the sandbox through that re-added output chain.
func TestPublishBesideEntry(t *testing.T) {
	lab := testutil.NewNATLab(t)
	web, webAddr := lab.AddSandbox(t, 5)
	startWeb(t, web, "beside-"+lab.Token)
	ctx := context.Background()
	tb := openTable(t, lab.HostNS)
	m := nat.Masquerade{Bridge: lab.Bridge}
	if err := tb.AddMasquerade(ctx, m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.RemoveMasquerade(context.Background(), m) })
	// The masquerade has no rule in the output chain: delete that chain.
	testutil.Cmd(t, "ip", "netns", "exec", lab.HostNS, "nft", "delete chain ip nsbox output")
	me, err := nat.Self("beside")
	if err != nil {
		t.Fatal(err)
	}
	p := nat.Publish{Bridge: lab.Bridge, HostPort: 8080, Addr: netip.MustParseAddr(webAddr), Port: 80, Owner: me}
	if err := tb.Publish(ctx, p); err != nil {
		t.Fatal(err)
	}
	out := testutil.Cmd(t, "ip", "netns", "exec", lab.HostNS, "nft", "list table ip nsbox")
	for _, c := range []string{"prerouting", "output", "postrouting", "forward"} {
		if n := strings.Count(out, "chain "+c+" {"); n != 1 {
			t.Errorf("chain %s appears %d times in\n%s", c, n, out)
		}
	}
	if got, err := testutil.Curl(lab.HostNS, "http://"+lab.HostOutsideIP+":8080/"); err != nil || strings.TrimSpace(got) != "beside-"+lab.Token {
		t.Errorf("host namespace (re-added output chain): %q, %v", got, err)
	}
	if err := tb.Unpublish(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := tb.RemoveMasquerade(ctx, m); err != nil {
		t.Fatal(err)
	}
	if exists, rules := nsboxRules(t, lab.HostNS); exists || len(rules) != 0 {
		t.Fatalf("after removal: table %v, rules %q", exists, rules)
	}
}
