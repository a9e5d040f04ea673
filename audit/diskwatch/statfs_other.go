//go:build !linux

package diskwatch

import (
	"errors"
	"os"
)

// Statfs is not implemented on this platform.
func Statfs(dir string) (Usage, error) {
	return Usage{}, errors.New("diskwatch: statfs not supported on this platform")
}

func allocate(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = writeZeros(f, n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
