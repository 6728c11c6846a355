package cni

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Unit tests of nsbox-range: no kernel, a temporary data folder.

func testSets(t *testing.T, c IPAMConf) [][]span {
	t.Helper()
	sets, err := c.rangeSets()
	if err != nil {
		t.Fatal(err)
	}
	return sets
}

func TestRangeDefaultsAndErrors(t *testing.T) {
	sets := testSets(t, IPAMConf{Subnet: "10.1.2.0/24"})
	s := sets[0][0]
	if s.start.String() != "10.1.2.1" || s.end.String() != "10.1.2.254" || s.gateway.String() != "10.1.2.1" {
		t.Errorf("defaults %v-%v gw %v, want 10.1.2.1-10.1.2.254 gw 10.1.2.1", s.start, s.end, s.gateway)
	}
	for _, c := range []struct {
		conf IPAMConf
		want string
	}{
		{IPAMConf{}, "needs ranges or a subnet"},
		{IPAMConf{Subnet: "10.1.2.0/31"}, "too small"},
		{IPAMConf{Subnet: "10.1.2.0/24", RangeStart: "10.1.3.1"}, "rangeStart"},
		{IPAMConf{Subnet: "10.1.2.0/24", RangeStart: "10.1.2.9", RangeEnd: "10.1.2.3"}, "before rangeStart"},
		{IPAMConf{Subnet: "10.1.2.0/24", Gateway: "10.9.9.9"}, "gateway"},
		{IPAMConf{Ranges: [][]Range{{{Subnet: "10.1.0.0/16"}}, {{Subnet: "10.1.2.0/24"}}}}, "overlaps"},
		{IPAMConf{Ranges: [][]Range{{{Subnet: "10.1.0.0/16"}, {Subnet: "fd00::/64"}}}}, "mixes"},
	} {
		if _, err := c.conf.rangeSets(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.conf, err, c.want)
		}
	}
}

func TestRangeAllocateLayout(t *testing.T) {
	dir := t.TempDir()
	sets := testSets(t, IPAMConf{Subnet: "10.1.2.0/24", RangeStart: "10.1.2.1", RangeEnd: "10.1.2.4"})
	s, err := openStore(dir, "net")
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	var got []string
	for _, id := range []string{"a", "b", "c"} {
		ips, err := s.allocate(sets, id, "eth0")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ips[0].Address.String())
	}
	// The gateway (.1) is never given; order follows the last reserved.
	if strings.Join(got, " ") != "10.1.2.2/24 10.1.2.3/24 10.1.2.4/24" {
		t.Errorf("allocated %v", got)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "net", "10.1.2.3"))
	if string(b) != "b\r\neth0" {
		t.Errorf("file of 10.1.2.3: %q, want host-local's \"b\\r\\neth0\"", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "net", "last_reserved_ip.0")); string(b) != "10.1.2.4" {
		t.Errorf("last_reserved_ip.0 = %q", b)
	}
	// Full: the error says so (ADD turns it into code 11).
	if _, err := s.allocate(sets, "d", "eth0"); !errors.Is(err, errExhausted) {
		t.Errorf("fourth allocation: %v, want errExhausted", err)
	}
	// The same attachment again gets the address it holds.
	if ips, err := s.allocate(sets, "b", "eth0"); err != nil || ips[0].Address.IP.String() != "10.1.2.3" {
		t.Errorf("re-allocation of b: %v %v", ips, err)
	}
	// Release, then the next allocation wraps around to the freed one.
	if n, err := s.release("a", "eth0"); n != 1 || err != nil {
		t.Errorf("release a: %d %v", n, err)
	}
	if ips, err := s.allocate(sets, "d", "eth0"); err != nil || ips[0].Address.IP.String() != "10.1.2.2" {
		t.Errorf("after release: %v %v, want 10.1.2.2", ips, err)
	}
}

func TestRangeGC(t *testing.T) {
	dir := t.TempDir()
	n := &NetConf{IPAMConf: IPAMConf{Subnet: "10.1.2.0/24", DataDir: dir}}
	n.Name = "net"
	for _, id := range []string{"a", "b", "c"} {
		if _, err := rangeAdd(n, id, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := rangeGC(n, map[attachKey]bool{{"b", "eth0"}: true})
	if err != nil || removed != 2 {
		t.Fatalf("gc: removed %d, %v; want 2", removed, err)
	}
	if held, _ := rangeHeld(n, "b", "eth0"); len(held) != 1 {
		t.Errorf("b lost its address: %v", held)
	}
	if held, _ := rangeHeld(n, "a", "eth0"); len(held) != 0 {
		t.Errorf("a kept %v", held)
	}
}
