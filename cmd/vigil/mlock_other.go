//go:build !linux

package main

import "errors"

func mlockall() error { return errors.New("not supported on this platform") }
