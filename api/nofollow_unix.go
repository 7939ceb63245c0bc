//go:build unix

package main

import "syscall"

// oNoFollow makes opening the key file fail on a symbolic link.
const oNoFollow = syscall.O_NOFOLLOW
