package main

import (
	"os"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/names"
	"github.com/nsbox/nsbox/internal/poolwire"
	"github.com/nsbox/nsbox/internal/sbstate"
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

// The C fast paths' one name check, with each generated rule, takes a name
// only if Go's rule of that kind takes it (a strict subset: ASCII only, no
// leading '-' where Go allows one), and takes the plain ASCII names Go
// takes: every name of one and two ASCII bytes, and names at and past each
// rule's length limit.
func TestFastNameRulesMatchGo(t *testing.T) {
	goOK := map[string]func(string) bool{
		"netns":   func(s string) bool { return names.Netns.Check(s) == "" },
		"link":    func(s string) bool { return names.Link.Check(s) == "" },
		"sandbox": func(s string) bool { return sbstate.ValidateName(s) == nil },
		"pool":    poolwire.ValidName,
	}
	max := map[string]int{"netns": names.Netns.Max, "link": names.Link.Max, "sandbox": sbstate.MaxName, "pool": poolwire.NameMax}
	for kind, valid := range goOK {
		cands := []string{"", ".", "..", "é", "a\xff", strings.Repeat("a", max[kind]), strings.Repeat("a", max[kind]+1)}
		for a := 1; a < 128; a++ {
			cands = append(cands, string(rune(a)))
			for b := 1; b < 128; b++ {
				cands = append(cands, string(rune(a))+string(rune(b)))
			}
		}
		took := 0
		for _, name := range cands {
			c, g := fastNameOK(kind, name), valid(name)
			if c {
				took++
			}
			// C may refuse what Go takes only for a leading '-'
			// (flag-like) or a byte that is not ASCII.
			leftToGo := strings.HasPrefix(name, "-") || strings.IndexFunc(name, func(r rune) bool { return r >= 0x80 }) >= 0
			if c && !g || g && !c && !leftToGo {
				t.Errorf("%s name %q: C takes it %v, Go %v", kind, name, c, g)
			}
		}
		if took < 1000 {
			t.Errorf("%s: C took only %d of %d names (the test cannot tell)", kind, took, len(cands))
		}
	}
}
