package seal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
)

// KeyLen is the length of devicegate's secret key in bytes.
const KeyLen = 32

// NewKey reads a fresh secret key from random.
func NewKey(random io.Reader) ([]byte, error) {
	key := make([]byte, KeyLen)
	_, err := io.ReadFull(random, key)
	return key, err
}

// KeyFile returns the key kept in the file at path, or, when there is no
// file there, makes a key from random and writes it there (mode 0600);
// created says which.
//
// The key unseals every token in the database, so the file is held to what
// an SSH private key is: a regular file (no link is followed, so nobody can
// point it elsewhere) that only its owner can read; otherwise the error
// says how to fix it.
func KeyFile(path string, random io.Reader) (key []byte, created bool, err error) {
	key, err = ReadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if key, err = NewKey(random); err != nil {
		return nil, false, err
	}
	// O_EXCL: if another process created the file meanwhile, this fails
	// rather than overwrite its key; O_NOFOLLOW: a link planted at the path
	// is not followed.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if errors.Is(err, fs.ErrExist) {
		key, err = ReadKeyFile(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("writing a new secret key: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("writing a new secret key: %w", err)
	}
	return key, true, nil
}

// ReadKeyFile reads a key file, refusing a link, anything but a regular
// file, and a file group or others can read.
func ReadKeyFile(path string) ([]byte, error) {
	if fi, err := os.Lstat(path); err != nil {
		return nil, err
	} else if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s is a symbolic link; devicegate reads its key only from a regular file (replace the link with the file)", path)
	}
	// O_NOFOLLOW too, for a link swapped in after the check.
	keyFileChecked(path)
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%s can be read by other users (mode %04o): it unseals every token in the database; run: chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(string(trimNL(b)))
	if err != nil || len(key) != KeyLen {
		return nil, fmt.Errorf("%s does not hold a base64 32-byte key; delete it to make a new one", path)
	}
	return key, nil
}

// keyFileChecked runs between ReadKeyFile's check of the path and its
// opening; a test swaps a link in there, as an attacker racing the check
// would.
var keyFileChecked = func(string) {}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
