package main

import (
	"errors"
	"fmt"
)

// Exit codes of DESIGN.md.
const (
	exitOK          = 0   // success
	exitFailed      = 1   // the operation failed
	exitUsage       = 2   // usage error
	exitSetupFailed = 125 // run/netns exec: nsbox failed before the exec
	exitNoExec      = 126 // the command exists but cannot be executed
	exitNotFound    = 127 // the command was not found
)

// usageError is a mistake in the command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usage error (exit status 2) with a formatted message.
func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// exitError carries an explicit exit code, such as a payload's status; a nil
// Err means nothing is printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitCodeOf maps an error returned by a command to the process exit code.
func exitCodeOf(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailed
}
