package names

import (
	"fmt"
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	cases := []struct {
		r    Rule
		name string
		want string
	}{
		{Netns, "lab-1", ""},
		{Netns, "ünïcode", ""},
		{Netns, "a b", ""},
		{Netns, "", "empty"},
		{Netns, "..", "not allowed"},
		{Netns, "a/b", "contains '/'"},
		{Netns, "a\nb", `contains a control character ('\n')`},
		{Netns, "a\x7fb", `contains a control character ('\x7f')`},
		{Netns, "a\x00b", "contains NUL"},
		{Netns, "a\xffb", "not valid UTF-8"},
		{Netns, strings.Repeat("n", 256), "longer than 255 bytes"},
		{Link, "eth0", ""},
		{Link, "veth%d", "contains '%'"},
		{Link, "a:b", "contains ':'"},
		{Link, "a b", "contains white space"},
		{Link, "a\tb", `contains a control character ('\t')`},
		{Link, strings.Repeat("l", 16), "longer than 15 bytes"},
	}
	for _, c := range cases {
		if got := c.r.Check(c.name); got != c.want {
			t.Errorf("%+v.Check(%q) = %q, want %q", c.r, c.name, got, c.want)
		}
	}
}

// The ASCII table agrees with Check on every single byte.
func TestASCIIMatchesCheck(t *testing.T) {
	for _, r := range []Rule{Netns, Link} {
		ok := r.ASCII()
		for c := 0; c < 0x80; c++ {
			name := "a" + string(rune(c)) + "b"
			if got := r.Check(name) == ""; got != ok[c] {
				t.Errorf("%+v: byte %#x: table %v, Check %v", r, c, ok[c], got)
			}
		}
	}
}

func ExampleRule_Check() {
	fmt.Printf("%q\n", Netns.Check("lab\nfake"))
	fmt.Printf("%q\n", Link.Check("veth0"))
	// Output:
	// "contains a control character ('\\n')"
	// ""
}

func TestCNIHostLink(t *testing.T) {
	a := CNIHostLink("net", "ctr", "eth0")
	if len(a) != 15 || !strings.HasPrefix(a, CNINetTag("net")) || Link.Check(a) != "" {
		t.Errorf("host name %q: want a 15-byte link name starting with %q", a, CNINetTag("net"))
	}
	if a == CNIHostLink("net", "ctr", "eth1") || a == CNIHostLink("net2", "ctr", "eth0") || a != CNIHostLink("net", "ctr", "eth0") {
		t.Errorf("host names must be a function of (network, container, ifname)")
	}
}

func ExampleCNIHostLink() {
	fmt.Println(CNIHostLink("mynet", "c1", "eth0")[:len(CNIHostPrefix)])
	// Output: nsc
}
