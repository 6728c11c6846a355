// Package nsboxbin finds the nsbox binary a benchmark times: the one named
// by NSBOX_BIN, else the Makefile's bin/nsbox (make test and make bench
// build it first, so benchmarks time what make build ships), else a fresh
// build from the library's module (the repository root, whose go.sum
// covers the CLI's dependencies).
package nsboxbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Binary is found or built once, on the first call of Path. The zero
// value is ready to use; Close removes a fresh build.
type Binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Path returns the binary's path. root is the repository's root relative
// to the benchmark package's folder ("../.." for bench/NAME).
func (b *Binary) Path(root string) (string, error) {
	b.once.Do(func() { b.path, b.err = b.find(root) })
	return b.path, b.err
}

// Need is Path for a benchmark package in bench/NAME (the repository's root
// is "../.."): it returns the binary's path, or fails tb.
func (b *Binary) Need(tb testing.TB) string {
	tb.Helper()
	p, err := b.Path(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func (b *Binary) find(root string) (string, error) {
	if p := os.Getenv("NSBOX_BIN"); p != "" {
		return p, nil
	}
	made, err := filepath.Abs(filepath.Join(root, "bin", "nsbox"))
	if err != nil {
		return "", fmt.Errorf("find nsbox: %w", err)
	}
	if _, err := os.Stat(made); err == nil {
		return made, nil
	}
	if b.dir, err = os.MkdirTemp("", "nsbox-bench"); err != nil {
		return "", fmt.Errorf("build nsbox: %w", err)
	}
	out := filepath.Join(b.dir, "nsbox")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/nsbox")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build nsbox: %w: %s", err, msg)
	}
	return out, nil
}

// Run runs a benchmark package's tests and benchmarks, then Close: a
// package's TestMain is os.Exit(bin.Run(m)).
func (b *Binary) Run(m *testing.M) int {
	defer b.Close()
	return m.Run()
}

// Close removes the binary if Path built it.
func (b *Binary) Close() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}
