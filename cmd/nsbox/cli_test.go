package main

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The version and commit the CLI tests stamp into their binary, as the
// Makefile does, so that a test can tell the stamp reached the binary.
const (
	cliTestVersion = "9.8.7-clitest"
	cliTestCommit  = "c0ffee123456"
)

var cliBin struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// goTool returns the go command that runs the tests (go test puts its own
// GOROOT/bin first in PATH).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// cliBinary builds nsbox once per test process, stamped with cliTestVersion
// and cliTestCommit through -ldflags -X like make build, and returns its
// path. The folder is removed by TestMain.
func cliBinary(t *testing.T) string {
	t.Helper()
	cliBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "nsbox-cli-test")
		if err != nil {
			cliBin.err = err
			return
		}
		cliBin.dir = dir
		if err := os.Chmod(dir, 0o755); err != nil {
			cliBin.err = err
			return
		}
		cliBin.path = filepath.Join(dir, "nsbox")
		cmd := exec.Command(goTool(), "build", "-trimpath", "-ldflags",
			"-X main.version="+cliTestVersion+" -X main.commit="+cliTestCommit, "-o", cliBin.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		cliBin.out, cliBin.err = cmd.CombinedOutput()
	})
	if cliBin.err != nil {
		t.Fatalf("go build: %v\n%s", cliBin.err, cliBin.out)
	}
	return cliBin.path
}

// removeCLIBinary removes the folder of cliBinary; TestMain calls it.
func removeCLIBinary() {
	if cliBin.dir != "" {
		os.RemoveAll(cliBin.dir)
	}
}

// cli runs the test binary with args (the C fast paths on, as a user has
// them), stdin empty, under a 30 s limit, and returns stdout, stderr and
// the exit code.
func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return cliWith(t, nil, nil, args...)
}

// cliWith is cli with extra environment variables and, when cred is not
// nil, as another user.
func cliWith(t *testing.T, env []string, cred *syscall.Credential, args ...string) (string, string, int) {
	t.Helper()
	bin := cliBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), env...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return runCaptured(t, cmd)
}

// TestVersion: --version, -V and version print the version and the commit
// stamped by -ldflags -X (the Makefile passes both); -j prints them as JSON.
func TestVersion(t *testing.T) {
	want := "nsbox " + cliTestVersion + " (commit " + cliTestCommit + ", "
	for _, args := range [][]string{{"--version"}, {"-V"}, {"version"}} {
		out, errOut, code := cli(t, args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 {
			t.Errorf("nsbox %s: exit %d, stdout %q, stderr %q; want exit 0 and %q...", strings.Join(args, " "), code, out, errOut, want)
		}
	}
	out, _, code := cli(t, "-j", "version")
	if code != 0 || !strings.Contains(out, `"version":"`+cliTestVersion+`"`) || !strings.Contains(out, `"commit":"`+cliTestCommit+`"`) {
		t.Errorf("nsbox -j version: exit %d, %q", code, out)
	}
}

// TestBuildWithoutCgo: CGO_ENABLED=0 stops the build with a sentence that
// says cgo is needed, not with the undefined names of the cgo files.
func TestBuildWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the module without cgo")
	}
	cmd := exec.Command(goTool(), "build", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("CGO_ENABLED=0 go build succeeded; want a failure saying cgo is needed")
	}
	if !strings.Contains(string(out), "nsbox needs cgo: CGO_ENABLED=1 and gcc") || strings.Contains(string(out), "undefined:") {
		t.Errorf("CGO_ENABLED=0 go build said:\n%s\nwant the sentence that nsbox needs cgo and no undefined names", out)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	removeCLIBinary()
	os.Exit(code)
}

// TestBuildLinking: a plain go build (as go install does, no tags) links
// nsbox dynamically and prints nothing (no glibc static-linking warning);
// with the static tag (make build) it has no program interpreter.
func TestBuildLinking(t *testing.T) {
	if testing.Short() {
		t.Skip("links nsbox twice")
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		goflags string
		static  bool
	}{{"", false}, {"-tags=netgo,osusergo,static", true}} {
		bin := filepath.Join(dir, "nsbox")
		cmd := exec.Command(goTool(), "build", "-o", bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOFLAGS="+tc.goflags)
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Errorf("GOFLAGS=%q go build: %v; output %q, want none", tc.goflags, err, out)
			continue
		}
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		interp := false
		for _, p := range f.Progs {
			interp = interp || p.Type == elf.PT_INTERP
		}
		f.Close()
		if interp == tc.static {
			t.Errorf("GOFLAGS=%q: program interpreter %v, want static %v", tc.goflags, interp, tc.static)
		}
	}
}
