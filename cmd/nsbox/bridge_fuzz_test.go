package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/rtnl"
)

// FuzzBridgeArgs checks the parsing of `nsbox bridge ...` without a kernel:
// it never panics, every refusal is a usage error (exit 2), and what it
// accepts names only valid interfaces with the right count for the word.
func FuzzBridgeArgs(f *testing.F) {
	for _, s := range []string{
		"add br0", "del br0", "addif br0 v1", "delif br0 v1", "show", "show br0 br1",
		"showmacs br0", "stp br0 on", "stp br0 maybe", "setageing br0 12.5", "setfd br0 -1",
		"setbridgeprio br0 0x1000", "addif br0", "add a/b", "add " + strings.Repeat("x", 16), "frob", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		op, err := parseBridgeArgs(args)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("%q: refusal %v is not a usage error", line, err)
			}
			return
		}
		want := map[string]int{"add": 1, "del": 1, "addif": 2, "delif": 2, "showmacs": 1, "set": 1}
		if n, ok := want[op.sub]; ok && len(op.names) != n {
			t.Fatalf("%q: %s with %d names", line, op.sub, len(op.names))
		}
		if op.sub == "set" && op.cfg == nil {
			t.Fatalf("%q: set without settings", line)
		}
		for _, n := range op.names {
			if err := rtnl.ValidateLinkName(n); err != nil {
				t.Fatalf("%q: accepted invalid name %q", line, n)
			}
		}
	})
}
