package main

import (
	"errors"
	"strings"
	"testing"
)

// splitFuzzArgs turns fuzz bytes into an argument vector (NUL separates).
func splitFuzzArgs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

// FuzzDHCPArgs: any argument vector gives either checked flags and a valid
// device name or one usage error; never a panic.
func FuzzDHCPArgs(f *testing.F) {
	for _, s := range []string{
		"eth0\x00--once\x00--timeout\x005s",
		"veth1\x00--release\x00--hostname\x00box\x00--arp-check\x00--no-route",
		"eth0\x00--host-dns\x00--no-dns",
		"eth0\x00--timeout\x00-1s",
		"-h",
		"",
	} {
		f.Add("ns1", s)
	}
	f.Fuzz(func(t *testing.T, ns, raw string) {
		fl, dev, _, err := parseDHCPArgs(ns, splitFuzzArgs(raw))
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not a one-line usage error", err)
			}
			return
		}
		if fl.help {
			return
		}
		if dev == "" || len(dev) > 15 || strings.ContainsAny(dev, "/ \x00") {
			t.Fatalf("accepted device %q", dev)
		}
		if fl.retry <= 0 || fl.timeout < 0 || (fl.once && fl.timeout == 0) || (fl.hostDNS && ns != "") {
			t.Fatalf("accepted flags %+v with -n %q", fl, ns)
		}
	})
}

// FuzzDHCPDArgs: the same for nsbox dhcpd.
func FuzzDHCPDArgs(f *testing.F) {
	for _, s := range []string{
		"br0\x00--range\x0010.0.0.10-10.0.0.20\x00--router\x0010.0.0.1\x00--dns\x0010.0.0.53,10.0.0.54",
		"br0\x00--range\x0010.0.0.10-10.0.0.x",
		"br0\x00--range\x0010.0.0.10-10.0.0.20\x00--lease-time\x000s",
		"-h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := parseDHCPDArgs(splitFuzzArgs(raw))
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not a one-line usage error", err)
			}
			return
		}
		if a.help {
			return
		}
		if a.dev == "" || !a.from.Is4() || !a.to.Is4() {
			t.Fatalf("accepted %+v", a)
		}
	})
}
