package shellpeer

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestWrite: both files are written, executable, and the script parses.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sandbox.sh", "udhcpc.sh"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm()&0o100 == 0 {
			t.Fatalf("%s: %v, mode %v", name, err, fi)
		}
	}
	if out, err := exec.Command("sh", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("sh -n %s: %v: %s", path, err, out)
	}
}
