package atomicfile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nsbox/nsbox/internal/atomicfile"
)

// A reader of state.json sees the old content or the new, never a part.
func ExampleWriteFile() {
	dir, err := os.MkdirTemp("", "atomicfile-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.json")
	if err := atomicfile.WriteFile(path, []byte(`{"pid": 42}`), 0o644); err != nil {
		panic(err)
	}
	b, _ := os.ReadFile(path)
	fmt.Println(string(b))
	// Output: {"pid": 42}
}
