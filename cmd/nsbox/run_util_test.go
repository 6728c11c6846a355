package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }

// runCaptured runs cmd and returns its stdout, stderr and exit code; a
// command that cannot run at all fails the test.
func runCaptured(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("%q: %v", cmd.Args, err)
	}
	return stdout.String(), stderr.String(), 0
}
