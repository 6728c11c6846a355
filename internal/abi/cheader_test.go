package abi

import (
	"bytes"
	"os"
	"testing"
)

const headerPath = "../../csrc/nsbox_gen.h"

// TestCSection fails when the abi section of csrc/nsbox_gen.h is stale; with
// NSBOX_GENERATE=1 (go generate ./internal/abi) it rewrites that section in
// place. (cmd/nsbox's TestGeneratedHeader checks the whole file.)
func TestCSection(t *testing.T) {
	header, err := os.ReadFile(headerPath)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := ReplaceCSection(header)
	if !ok {
		t.Fatalf("%s has no %q ... %q section", headerPath, CSectionBegin, CSectionEnd)
	}
	if os.Getenv("NSBOX_GENERATE") == "1" {
		if err := os.WriteFile(headerPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(header, want) {
		t.Fatal("csrc/nsbox_gen.h is stale: run go generate ./internal/abi ./cmd/nsbox")
	}
}

func TestStagesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Stages {
		if seen[s] {
			t.Errorf("stage %s twice", s)
		}
		seen[s] = true
	}
	if Stages[0] != "OK" {
		t.Errorf("stage 0 is %s, want OK", Stages[0])
	}
}
