package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// files writes an executable and a text file with the given permissions
// and modification time, as two checkouts with different umasks and clocks
// would have them.
func files(t *testing.T, exeMode, docMode os.FileMode, mtime time.Time) []string {
	dir := t.TempDir()
	exe, doc := filepath.Join(dir, "tool"), filepath.Join(dir, "LICENSE")
	for _, f := range []struct {
		path string
		mode os.FileMode
		body string
	}{{exe, exeMode, "\x7fELF binary"}, {doc, docMode, "MIT"}} {
		if err := os.WriteFile(f.path, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f.path, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f.path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return []string{exe, doc}
}

// TestArchivesAreReproducible: the same contents give byte-identical
// archives whatever the files' times and group/other permission bits, and
// every entry has the fixed time, owner 0 and a normalised mode.
func TestArchivesAreReproducible(t *testing.T) {
	t0 := time.Unix(1700000000, 0).UTC()
	for _, ext := range []string{".tar.gz", ".zip"} {
		t.Run(ext, func(t *testing.T) {
			a := filepath.Join(t.TempDir(), "a"+ext)
			b := filepath.Join(t.TempDir(), "b"+ext)
			if err := write(a, "x/", files(t, 0o755, 0o644, time.Now()), t0); err != nil {
				t.Fatal(err)
			}
			if err := write(b, "x/", files(t, 0o775, 0o664, time.Unix(1, 0)), t0); err != nil {
				t.Fatal(err)
			}
			ab, _ := os.ReadFile(a)
			bb, _ := os.ReadFile(b)
			if !bytes.Equal(ab, bb) {
				t.Fatalf("two archives of the same contents differ")
			}
			got := list(t, ab, ext)
			want := "x/tool 0755 0:0 " + t0.Format(time.RFC3339) + "\nx/LICENSE 0644 0:0 " + t0.Format(time.RFC3339) + "\n"
			if got != want {
				t.Errorf("entries:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func list(t *testing.T, b []byte, ext string) string {
	t.Helper()
	var s strings.Builder
	if ext == ".zip" {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			s.WriteString(f.Name + " " + fmtMode(int64(f.Mode().Perm())) + " 0:0 " + f.Modified.UTC().Format(time.RFC3339) + "\n")
		}
		return s.String()
	}
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if gz.Name != "" || !gz.ModTime.IsZero() {
		t.Errorf("gzip header has name %q, time %v; want neither (as gzip -n)", gz.Name, gz.ModTime)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner names %q:%q", h.Name, h.Uname, h.Gname)
		}
		s.WriteString(h.Name + " " + fmtMode(h.Mode) + " " + strconv.Itoa(h.Uid) + ":" + strconv.Itoa(h.Gid) + " " + h.ModTime.UTC().Format(time.RFC3339) + "\n")
	}
	return s.String()
}

func fmtMode(m int64) string { return fmt.Sprintf("%04o", m) }

// TestSums: SHA256SUMS lists every file but itself, sorted by name, in
// sha256sum's format.
func TestSums(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.zip", "a.tar.gz", "SHA256SUMS"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeSums(dir); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	const x = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
	if want := x + "  a.tar.gz\n" + x + "  b.zip\n"; string(got) != want {
		t.Errorf("SHA256SUMS:\n%s\nwant:\n%s", got, want)
	}
}
