package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestManPage: doc/nsbox.1 is what the help text makes now (regenerate it
// with go generate ./cmd/nsbox or make man), groff reads it without a
// warning, and the rendered page holds every command's synopsis.
func TestManPage(t *testing.T) {
	var buf bytes.Buffer
	e := newEnv(nil, &buf, &buf)
	var page bytes.Buffer
	if err := e.writeManPage(context.Background(), &page); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("NSBOX_UPDATE_MAN") == "1" {
		if err := os.WriteFile(manPath, page.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	disk, err := os.ReadFile(manPath)
	if err != nil {
		t.Fatalf("%v (make it with go generate ./cmd/nsbox)", err)
	}
	if !bytes.Equal(disk, page.Bytes()) {
		t.Fatalf("doc/nsbox.1 is stale: the help text changed; run go generate ./cmd/nsbox (or make man) and commit it")
	}

	groff := testutil.RequireTool(t, "groff")
	lint := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", manPath)
	if out, err := lint.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff -ww: %v\n%s", err, out)
	}
	render := exec.Command(groff, "-man", "-Tascii", "-P-cbou", manPath)
	render.Env = append(os.Environ(), "MANWIDTH=200")
	out, err := render.Output()
	if err != nil {
		t.Fatalf("groff: %v", err)
	}
	text := squeeze(string(out))
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		syn := squeeze(strings.Fields(firstLine(c.usage))[0] + " " + strings.Join(strings.Fields(firstLine(c.usage))[1:], " "))
		if len(syn) > 40 {
			syn = syn[:40]
		}
		if !strings.Contains(text, syn) {
			t.Errorf("the rendered man page lacks %q (command %s)", syn, c.name)
		}
	}
	for _, w := range []string{"-n NS", "EXIT STATUS", "netns attach NAME PID"} {
		if !strings.Contains(text, w) {
			t.Errorf("the rendered man page lacks %q", w)
		}
	}
}

// squeeze folds runs of white space (and groff's line breaks) into one space.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }
