//go:build !linux

package chain

import "os"

func renameNoReplace(oldpath, newpath string) error { return renameCheck(oldpath, newpath) }

func linkCount(os.FileInfo) (uint64, bool) { return 0, false }
