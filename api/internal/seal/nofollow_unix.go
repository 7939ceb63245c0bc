//go:build unix

package seal

import "syscall"

// oNoFollow makes opening the key file fail on a symbolic link.
const oNoFollow = syscall.O_NOFOLLOW
