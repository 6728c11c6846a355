package cgroup

import (
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"64m", 64 << 20}, {"64M", 64 << 20}, {"64mb", 64 << 20}, {"1g", 1 << 30}, {"4096", 4096}, {"2k", 2048}} {
		got, err := ParseBytes(c.in, false)
		if err != nil || got != c.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "-1", "0", "x", "12q", "m", "9999999999999g"} {
		if _, err := ParseBytes(bad, false); err == nil {
			t.Errorf("ParseBytes(%q) succeeded", bad)
		}
	}
	if v, err := ParseBytes("-1", true); err != nil || v != -1 {
		t.Errorf("ParseBytes(-1, swap) = %d, %v", v, err)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{64 << 20: "64 MiB", 3 << 29: "1.5 GiB", 100: "100 bytes", 2048: "2 KiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q; want %q", n, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		l    Limits
		want string
	}{
		{Limits{Memory: -1}, "negative"},
		{Limits{MemorySwap: 10}, "needs a memory limit"},
		{Limits{Memory: 20, MemorySwap: 10}, "below"},
		{Limits{Pids: -2}, "negative"},
		{Limits{CPUs: 0.001}, "minimum"},
	} {
		if err := c.l.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v; want %q", c.l, err, c.want)
		}
	}
	if err := (Limits{Memory: 1 << 20, MemorySwap: -1, Pids: 5, CPUs: 0.5}).Validate(); err != nil {
		t.Error(err)
	}
}

// The hierarchies of this machine, as mountinfo lists them: every v1
// controller the limits use is found (or the v2 mount has it).
func TestMounts(t *testing.T) {
	ms, err := mounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Skip("no cgroup mounted")
	}
	for _, m := range ms {
		if m.dir == "" || !strings.HasPrefix(m.dir, "/") {
			t.Errorf("mount %+v: bad dir", m)
		}
	}
}

func TestUnescape(t *testing.T) {
	if got := unescape(`/a\040b\011c`); got != "/a b\tc" {
		t.Errorf("unescape = %q", got)
	}
}
