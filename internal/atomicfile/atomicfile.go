// Package atomicfile replaces a file's content so that a reader sees the old
// or the new content, never a part: the data goes to a temporary file in the
// same directory, which is then renamed over the target. There is no fsync:
// the rename is atomic against concurrent readers, not against a power loss.
//
// No privileges are needed beyond write access to the directory. When a write
// fails, the temporary file (named ".<base>.tmp*" next to the target) is
// removed; a leftover one after a crash can be deleted by hand.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data through a temporary file in the same
// directory (created with mode 0755 if missing) and a rename; the file gets
// mode perm. Errors read "create directory DIR: ..." or "write PATH: ...".
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename this fails harmlessly
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
