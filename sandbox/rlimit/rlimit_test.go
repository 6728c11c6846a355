package rlimit

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Limit
	}{
		{"nofile=64", Limit{unix.RLIMIT_NOFILE, 64, 64}},
		{"NOFILE=64:128", Limit{unix.RLIMIT_NOFILE, 64, 128}},
		{"core=0:unlimited", Limit{unix.RLIMIT_CORE, 0, Unlimited}},
		{"rlimit_nproc=10:20", Limit{unix.RLIMIT_NPROC, 10, 20}},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"nofile", "fly=1", "nofile=-1", "nofile=x", "nofile=10:5", "nofile=1:"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestCheck(t *testing.T) {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	if err := Check(Limit{unix.RLIMIT_NOFILE, cur.Max, cur.Max}); err != nil {
		t.Errorf("the caller's own hard limit: %v", err)
	}
	if cur.Max == Unlimited {
		t.Skip("nofile hard limit is unlimited here")
	}
	err := Check(Limit{unix.RLIMIT_NOFILE, 1, cur.Max + 1})
	if err == nil || !strings.Contains(err.Error(), format(cur.Max+1)) || !strings.Contains(err.Error(), format(cur.Max)) {
		t.Errorf("Check above the hard limit: %v; want an error naming both limits", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"nofile=1:2", "core=unlimited", "x=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s)
		if err == nil && l.Soft > l.Hard {
			t.Fatalf("Parse(%q) = %+v: soft above hard", s, l)
		}
	})
}
