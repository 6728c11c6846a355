package names

import (
	"fmt"
	"strings"
)

// CRuleType is the C type of a name rule in csrc/nsbox_gen.h (its
// definition: CRuleDef). The C fast paths check every name of theirs with
// one function (csrc/nsb_name.h's nsb_name_ok) against one of these.
const CRuleType = "struct nsb_name_rule"

// CRuleDef is the definition of CRuleType, rendered once (by internal/abi)
// before any rule: the longest name, the ASCII bytes a name may start with
// and those it may contain after its first.
const CRuleDef = CRuleType + " {\n\tunsigned max;\n\tunsigned char first[128];\n\tunsigned char ascii_ok[128];\n};\n"

// Table is a name rule as the C fast paths apply it: ASCII names only, of
// 1 to Max bytes, the first byte one of First and every other one of Rest,
// never "." or "..". It must accept a subset of what the Go rule accepts:
// the C leaves every other name to Go, which says what is wrong with it.
type Table struct {
	Max         int
	First, Rest [128]bool
}

// Table returns r's C table: its ASCII bytes, and a name may not start with
// '-' (a name that looks like a flag is left to Go).
func (r Rule) Table() Table {
	t := Table{Max: r.Max, First: r.ASCII(), Rest: r.ASCII()}
	t.First['-'] = false
	return t
}

// Probe returns the C table of a name rule that Go applies as a function:
// valid is asked about each ASCII byte as a whole name (First) and after
// "a" (Rest). It suits rules that judge a name byte by byte, the first byte
// apart (sbstate.ValidateName, poolwire.ValidName).
func Probe(max int, valid func(string) bool) Table {
	t := Table{Max: max}
	for c := 1; c < 128; c++ {
		t.First[c] = valid(string(rune(c)))
		t.Rest[c] = valid("a" + string(rune(c)))
	}
	return t
}

// C renders t as the C constant name of type CRuleType.
func (t Table) C(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "static const %s %s __attribute__((unused)) = {%d, {", CRuleType, name, t.Max)
	for i, ok := range [][128]bool{t.First, t.Rest} {
		if i > 0 {
			b.WriteString("\n}, {")
		}
		for c, v := range ok {
			if c%32 == 0 {
				b.WriteString("\n\t")
			}
			if v {
				b.WriteString("1,")
			} else {
				b.WriteString("0,")
			}
		}
	}
	b.WriteString("\n}};\n")
	return b.String()
}
