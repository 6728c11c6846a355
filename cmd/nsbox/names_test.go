package main

import (
	"os"
	"strings"
	"testing"
)

// Namespace and link names with control characters or bytes that are not
// UTF-8 are usage errors, and nothing is created: `netns add $'a\nb'` used
// to make a file whose name showed as two namespaces in `ip netns list`.
func TestControlCharacterNamesRefused(t *testing.T) {
	for _, args := range [][]string{
		{"netns", "add", "nsbox-t\nfake"},
		{"netns", "add", "nsbox-t\x1b[31m"},
		{"netns", "add", "nsbox-t\xff"},
		{"link", "add", "nsb\nx", "type", "bridge"},
		{"link", "add", "nsb%d", "type", "bridge"},
		{"bridge", "add", "nsb\tx"},
	} {
		code, stdout, stderr := nlRun(t, "", args...)
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if code != 2 || stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "nsbox: ") {
			t.Errorf("nsbox %q: exit %d, stdout %q, stderr %q; want exit 2 and one nsbox: line", args, code, stdout, stderr)
		}
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "nsbox-t") {
			t.Errorf("/run/netns/%q was created", e.Name())
		}
	}
}
