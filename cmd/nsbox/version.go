package main

import (
	"context"
	"fmt"
	"runtime"
)

// version is the release of nsbox; the Makefile may override it with -ldflags -X.
var version = "0.1.0-dev"

func versionCommand() *command {
	return &command{name: "version", usage: "version", run: func(ctx context.Context, e *env, args []string) error {
		if len(args) > 0 {
			return usagef("version: unexpected argument %q", args[0])
		}
		if e.json {
			fmt.Fprintf(e.stdout, "{\"version\":%q,\"go\":%q}\n", version, runtime.Version())
			return nil
		}
		fmt.Fprintf(e.stdout, "nsbox %s (%s)\n", version, runtime.Version())
		return nil
	}}
}
