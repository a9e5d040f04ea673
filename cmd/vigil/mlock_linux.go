package main

import "syscall"

func mlockall() error { return syscall.Mlockall(syscall.MCL_CURRENT | syscall.MCL_FUTURE) }
