package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RequirePriv skips t unless the test runs as root. With NSBOX_REQUIRE_PRIV=1
// (set by CI) the missing privilege is a failure instead of a skip, so CI can
// never pass by skipping.
func RequirePriv(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("NSBOX_REQUIRE_PRIV") == "1" {
		t.Fatalf("test needs root and NSBOX_REQUIRE_PRIV=1 forbids skipping")
	}
	t.Skip("test needs root (run as root, or set NSBOX_REQUIRE_PRIV=1 to make this a failure)")
}

// RequireTool skips t when an observer or peer program is missing; under
// NSBOX_REQUIRE_PRIV=1 it fails, since CI installs every tool the tests use.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("NSBOX_REQUIRE_PRIV") == "1" {
		t.Fatalf("test needs %s (install it; .ci/run does)", name)
	}
	t.Skipf("test needs %s: %v", name, err)
	return ""
}

// UniqueName returns prefix followed by random hex, at most 15 bytes so that
// it is also a valid interface name. prefix should be at most 7 bytes.
func UniqueName(prefix string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("testutil: random name: %v", err))
	}
	n := prefix + hex.EncodeToString(b[:])
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// Cmd runs name with args under a 30 s limit and returns its stdout; it fails
// t if the command fails, showing stderr.
func Cmd(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := CmdErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// CmdErr runs name with args under a 30 s limit and returns its stdout, or an
// error that includes its stderr.
func CmdErr(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, name, args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// IPJSON runs "ip -j ARGS..." and decodes its output into v.
func IPJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out := Cmd(t, "ip", append([]string{"-j"}, args...)...)
	if strings.TrimSpace(out) == "" {
		out = "[]"
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("ip -j %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}

// NewNetns creates a throwaway named network namespace with iproute2 (an
// independent tool, not nsbox) and deletes it when t ends, even on failure.
// Its loopback is brought up.
func NewNetns(t testing.TB) string {
	t.Helper()
	RequirePriv(t)
	RequireTool(t, "ip")
	name := UniqueName("nsbt")
	Cmd(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if _, err := CmdErr("ip", "netns", "del", name); err != nil {
			t.Errorf("cleanup: ip netns del %s: %v", name, err)
		}
	})
	Cmd(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}
