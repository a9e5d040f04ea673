package chain

import (
	"io/fs"
	"os"
)

// renameCheck renames unless newpath exists. The check and the rename are
// not atomic; it is the fallback for filesystems without RENAME_NOREPLACE,
// where the writer is the only process creating files in the directory.
func renameCheck(oldpath, newpath string) error {
	if _, err := os.Lstat(newpath); err == nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrExist}
	}
	return os.Rename(oldpath, newpath)
}
