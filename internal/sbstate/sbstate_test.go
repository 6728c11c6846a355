package sbstate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "web-1", "x.y_z", strings.Repeat("n", 64)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "..", ".", ".hidden", "-x", strings.Repeat("n", 65), "a b", "a\nb", "é"} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("ValidateName(%q) accepted", bad)
		}
	}
}

// TestStore: a record of a live process (this test) is listed and blocks
// its name; a record whose start time does not match (a recycled pid) is
// stale: ignored, removed, and its name free again.
func TestStore(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "sandboxes")}
	ticks, state, err := StartTicks(os.Getpid())
	if err != nil || state == 'Z' {
		t.Fatalf("StartTicks(self) = %d %c %v", ticks, state, err)
	}
	ns, err := Namespaces(os.Getpid())
	if err != nil || ns["net"] == 0 {
		t.Fatalf("Namespaces(self) = %v %v", ns, err)
	}
	l, err := s.Reserve("live")
	if err != nil {
		t.Fatal(err)
	}
	live := &Record{Name: "live", Pid: os.Getpid(), InitPid: os.Getpid(), StartTicks: ticks, Namespaces: ns, Command: []string{"x"}}
	if err := l.Add(live); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve("live"); !errors.Is(err, ErrRunning) {
		t.Errorf("second Reserve of a live name: %v, want ErrRunning", err)
	}
	l, err = s.Reserve("stale")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Add(&Record{Name: "stale", Pid: os.Getpid(), InitPid: os.Getpid(), StartTicks: ticks + 1}); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].Name != "live" {
		t.Fatalf("List = %v %v, want only the live record", list, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "stale.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale record was not removed: %v", err)
	}
	if _, err := s.Get("stale"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(stale) = %v, want ErrNotFound", err)
	}
	if r, err := s.Get("live"); err != nil || r.Pid != os.Getpid() {
		t.Errorf("Get(live) = %v %v", r, err)
	}
	if err := s.Remove(live); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(s.Dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}
