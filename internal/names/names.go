// Package names holds the rules for the names nsbox puts in file names and
// in the kernel: network namespace names (files in /run/netns) and link
// names. They are the one source of truth: netns.ValidateName and
// rtnl.ValidateLinkName apply them, and the C fast paths get them as tables
// generated from them (csrc/nsbox_gen.h, see cmd/nsbox's go:generate), so
// the C code never carries a copy of its own.
package names

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Rule is what a name of one kind may be. Every rule refuses the empty name,
// "." and "..", control characters (bytes below 0x20 and 0x7f: a newline in
// a namespace name shows as a second namespace in `ip netns list`) and
// bytes that are not valid UTF-8.
type Rule struct {
	// Max is the longest name in bytes.
	Max int
	// Forbid lists the printable ASCII bytes refused anywhere in a name.
	Forbid string
}

// Netns is the rule for network namespace names: file names in /run/netns.
var Netns = Rule{Max: 255, Forbid: "/"}

// Link is the rule for link (interface) names: IFNAMSIZ-1 bytes, no '/'
// or ':' (sysfs and alias syntax), no '%' (a kernel name template such as
// eth%d would be replaced by a number), no white space.
var Link = Rule{Max: 15, Forbid: "/:% "}

// Check returns why name breaks r, or "" if it does not.
func (r Rule) Check(name string) string {
	switch {
	case name == "":
		return "empty"
	case name == "." || name == "..":
		return "not allowed"
	case len(name) > r.Max:
		return "longer than " + strconv.Itoa(r.Max) + " bytes"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == 0:
			return "contains NUL"
		case c < 0x20 || c == 0x7f:
			return "contains a control character (" + strconv.QuoteRune(rune(c)) + ")"
		case c < 0x80 && strings.IndexByte(r.Forbid, c) >= 0:
			if c == ' ' {
				return "contains white space"
			}
			return "contains '" + string(c) + "'"
		}
	}
	if !utf8.ValidString(name) {
		return "not valid UTF-8"
	}
	return ""
}

// ASCII tells for each byte below 0x80 whether r allows it anywhere in a
// name. The C fast paths take only names made of these bytes (a strict
// subset: they leave names with other UTF-8 bytes to Go).
func (r Rule) ASCII() [128]bool {
	var ok [128]bool
	for c := 0x20; c < 0x7f; c++ {
		ok[c] = strings.IndexByte(r.Forbid, byte(c)) < 0
	}
	return ok
}
