package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyFileIsCreatedOnceWithMode0600: the first call makes the key and
// a 0600 file, later calls read the same key back (a trailing newline,
// CRLF too, is fine), and a damaged file is refused with the fix.
func TestKeyFileIsCreatedOnceWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devicegate.key")
	k1, created, err := KeyFile(path, rand.Reader)
	if err != nil || !created || len(k1) != KeyLen {
		t.Fatalf("first call: %v created %v, %d bytes", err, created, len(k1))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	k2, created, err := KeyFile(path, rand.Reader)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Errorf("second call: %v created %v, same key %v", err, created, bytes.Equal(k1, k2))
	}
	os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k1)+"\r\n"), 0o600)
	if k3, err := ReadKeyFile(path); err != nil || !bytes.Equal(k1, k3) {
		t.Errorf("CRLF-terminated file: %v", err)
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, _, err := KeyFile(path, rand.Reader); err == nil || !strings.Contains(err.Error(), "delete it to make a new one") {
		t.Errorf("a damaged key file: %v", err)
	}
}

// TestKeyFileGuarded: a key file others can read, or a link in its place,
// is refused with the fix; a new key file is never created through a link.
func TestKeyFileGuarded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devicegate.key")
	if _, _, err := KeyFile(path, rand.Reader); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		os.Chmod(path, mode)
		_, _, err := KeyFile(path, rand.Reader)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	if _, _, err := KeyFile(path, rand.Reader); err != nil {
		t.Errorf("mode 0600: %v", err)
	}

	// A link planted where the key would be created is neither followed
	// to create the key nor read.
	path2 := filepath.Join(t.TempDir(), "devicegate.key")
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, path2); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	if _, _, err := KeyFile(path2, rand.Reader); err == nil || !strings.Contains(err.Error(), "only from a regular file") {
		t.Errorf("dangling link: %v", err)
	}
	if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a key was written through the link")
	}
	os.WriteFile(target, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, KeyLen))), 0o600)
	if _, _, err := KeyFile(path2, rand.Reader); err == nil || !strings.Contains(err.Error(), "only from a regular file") {
		t.Errorf("link to a key: %v", err)
	}
}

// TestKeyFileLinkSwappedInAfterTheCheck: a link put in place of the key
// file between ReadKeyFile's check and its opening (an attacker racing the
// check) is not followed: O_NOFOLLOW makes the open fail.
func TestKeyFileLinkSwappedInAfterTheCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devicegate.key")
	if _, _, err := KeyFile(path, rand.Reader); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(t.TempDir(), "attacker.key")
	attackerKey := bytes.Repeat([]byte{7}, KeyLen)
	os.WriteFile(planted, []byte(base64.StdEncoding.EncodeToString(attackerKey)), 0o600)
	keyFileChecked = func(p string) {
		os.Remove(p)
		if err := os.Symlink(planted, p); err != nil {
			t.Skip("no symbolic links here:", err)
		}
	}
	t.Cleanup(func() { keyFileChecked = func(string) {} })
	key, _, err := KeyFile(path, rand.Reader)
	if err == nil || bytes.Equal(key, attackerKey) {
		t.Errorf("a link swapped in after the check was followed: key from %s, err %v", path, err)
	}
}
