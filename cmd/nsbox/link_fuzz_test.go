package main

import (
	"errors"
	"strings"
	"testing"
)

// FuzzNetlinkArgs feeds arbitrary command lines to the parsers of the link,
// addr and route words: they must never panic, must refuse with a usage
// error (exit 2) only, and what they accept must be well-formed.
func FuzzNetlinkArgs(f *testing.F) {
	for _, s := range []string{
		"link add veth0 type veth peer name veth1 netns ns1",
		"link add br0 type bridge",
		"link set dev va up mtu 1400 address 02:00:00:00:00:01 master br0 name vx netns 1234",
		"link set va nomaster down",
		"addr add 10.0.0.1/24 dev eth0 valid_lft 300 preferred_lft forever",
		"addr del fd00::1/64 dev eth0",
		"route add default via 10.0.0.1 dev eth0 metric 10",
		"route add 10.1.0.0/16 dev eth0 src 10.0.0.1",
		"route del fd00:1::/48 via fd00::fe",
		"addr add 10.0.0.1/33 dev e",
		"link set 'a b' up",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := splitLine(line)
		if err != nil || len(words) < 2 {
			return
		}
		var perr error
		switch words[0] + " " + words[1] {
		case "link add":
			var a linkAddArgs
			a, perr = parseLinkAdd(words[2:])
			if perr == nil && (checkDev("", a.name) != nil || (a.kind == "veth" && checkDev("", a.peer) != nil)) {
				t.Fatalf("%q: accepted bad names %+v", line, a)
			}
		case "link set":
			var s linkSetArgs
			s, perr = parseLinkSet(words[2:])
			if perr == nil && (checkDev("", s.dev) != nil || (s.mtu != 0 && (s.mtu < 68 || s.mtu > 65536)) || (s.mac != nil && len(s.mac) != 6)) {
				t.Fatalf("%q: accepted %+v", line, s)
			}
		case "addr add", "addr del", "addr replace":
			var a addrArgs
			a, perr = parseAddrChange(words[1], words[2:])
			if perr == nil {
				if !a.prefix.IsValid() || a.dev == "" {
					t.Fatalf("%q: accepted %+v", line, a)
				}
				again, err := parsePrefix(a.prefix.String())
				if err != nil || again != a.prefix {
					t.Fatalf("%q: prefix %v does not round-trip (%v, %v)", line, a.prefix, again, err)
				}
			}
		case "route add", "route del", "route replace":
			rt, err := parseRoute(words[1], words[2:])
			perr = err
			if perr == nil && rt.Dst.IsValid() && rt.Dst.Masked() != rt.Dst {
				t.Fatalf("%q: accepted a destination with host bits %v", line, rt.Dst)
			}
		default:
			return
		}
		var ue *usageError
		if perr != nil && (!errors.As(perr, &ue) || strings.Contains(perr.Error(), "\n")) {
			t.Fatalf("%q: error %v is not a one-line usage error", line, perr)
		}
	})
}
