package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and commit name the build; the Makefile sets them with
// -ldflags "-X main.version=... -X main.commit=...". A build without them
// (go install) takes the commit from the VCS stamp Go records.
var (
	version = "0.1.0-dev"
	commit  = ""
)

// buildCommit returns the commit nsbox was built from, "unknown" when
// neither the Makefile nor Go's VCS stamp says.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && dirty {
			rev += "-dirty"
		}
		if rev != "" {
			return rev
		}
	}
	return "unknown"
}

func versionCommand() *command {
	return &command{name: "version", quick: true, usage: "version", run: func(ctx context.Context, e *env, args []string) error {
		if len(args) > 0 {
			return usagef("version: unexpected argument %q", args[0])
		}
		return e.printVersion()
	}}
}

// printVersion prints "nsbox VERSION (commit COMMIT, GO)" or, with -j, the
// same as one JSON object.
func (e *env) printVersion() error {
	if e.json {
		return e.printJSON(struct {
			Version string `json:"version"`
			Commit  string `json:"commit"`
			Go      string `json:"go"`
		}{version, buildCommit(), runtime.Version()})
	}
	fmt.Fprintf(e.stdout, "nsbox %s (commit %s, %s)\n", version, buildCommit(), runtime.Version())
	return nil
}
