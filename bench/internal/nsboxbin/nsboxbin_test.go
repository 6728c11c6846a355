package nsboxbin_test

import (
	"os"
	"testing"

	"github.com/nsbox/nsbox/bench/internal/nsboxbin"
)

// NSBOX_BIN wins over everything, without a build.
func TestPathFromEnvironment(t *testing.T) {
	t.Setenv("NSBOX_BIN", "/opt/nsbox-under-test")
	var b nsboxbin.Binary
	defer b.Close()
	p, err := b.Path("../../..")
	if err != nil || p != "/opt/nsbox-under-test" {
		t.Fatalf("Path = %q, %v; want NSBOX_BIN's", p, err)
	}
}

// Without NSBOX_BIN a binary is found or built, and it exists.
func TestPathFindsOrBuilds(t *testing.T) {
	t.Setenv("NSBOX_BIN", "")
	var b nsboxbin.Binary
	defer b.Close()
	p, err := b.Path("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.IsDir() {
		t.Fatalf("Path = %q: %v", p, err)
	}
}

func ExampleBinary_Path() {
	var bin nsboxbin.Binary // one per benchmark package; Close it in TestMain
	defer bin.Close()
	if _, err := bin.Path("../.."); err != nil {
		return
	}
}
