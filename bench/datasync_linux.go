package main

import (
	"os"
	"syscall"
)

// datasync is fdatasync(2), what bbolt's commit calls on Linux.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
