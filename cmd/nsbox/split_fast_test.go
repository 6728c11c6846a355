package main

import (
	"reflect"
	"strings"
	"testing"
)

// splitLineSlow is splitLine's general path alone (quotes, rune by rune),
// the reference the fast path must agree with.
func splitLineSlow(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	for _, r := range s {
		switch r {
		case ' ', '\t', '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// FuzzSplitLineFast: for lines without quotes, the substring fast path of
// splitLine gives the same words as the rune-by-rune path.
func FuzzSplitLineFast(f *testing.F) {
	for _, s := range []string{"", "  ", "bridge addif br0 v1", "\tlink  set v1\tup\r", "a\u00a0b c", "x\xffy z", "a\vb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, `'"`) {
			return
		}
		got, err := splitLine(s)
		if err != nil {
			t.Fatal(err)
		}
		want := splitLineSlow(s)
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Fatalf("splitLine(%q) = %q, want %q", s, got, want)
		}
	})
}
