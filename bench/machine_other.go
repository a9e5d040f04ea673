//go:build !linux

package bench

func uname() (release, version string) { return "", "" }
