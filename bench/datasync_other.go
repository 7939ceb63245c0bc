//go:build !linux

package main

import "os"

// datasync is fsync where fdatasync(2) is not in package syscall.
func datasync(f *os.File) error { return f.Sync() }
