package names

import (
	"fmt"
	"strings"
	"testing"
)

// A rule's C table is its ASCII table, but no name starts with '-'.
func TestTableOfRule(t *testing.T) {
	for _, r := range []Rule{Netns, Link} {
		tb, ok := r.Table(), r.ASCII()
		if tb.Max != r.Max || tb.Rest != ok {
			t.Errorf("%+v: table %d/%v, want %d and its ASCII table", r, tb.Max, tb.Rest, r.Max)
		}
		for c := range ok {
			if want := ok[c] && c != '-'; tb.First[c] != want {
				t.Errorf("%+v: first byte %#x: %v, want %v", r, c, tb.First[c], want)
			}
		}
	}
}

// Probe asks the function about each byte, first and after "a".
func TestProbe(t *testing.T) {
	tb := Probe(8, func(s string) bool { return s[0] != 'x' && !strings.Contains(s, "/") })
	if tb.Max != 8 || tb.First['x'] || !tb.Rest['x'] || tb.First['/'] || tb.Rest['/'] || !tb.First['a'] || tb.First[0] || tb.Rest[0] {
		t.Errorf("Probe: %+v", tb)
	}
}

func ExampleProbe() {
	// Letters and digits, not starting with a digit.
	ident := Probe(16, func(s string) bool {
		return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789") == "" && (s[0] < '0' || s[0] > '9')
	})
	fmt.Println(ident.First['0'], ident.Rest['0'], ident.First['q'], ident.Rest['-'])
	// Output: false true true false
}

func ExampleTable_C() {
	c := Link.Table().C("nsb_rule_link")
	fmt.Println(c[:strings.IndexByte(c, '\n')])
	// Output: static const struct nsb_name_rule nsb_rule_link __attribute__((unused)) = {15, {
}
