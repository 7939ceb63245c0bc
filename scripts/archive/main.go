// Command archive writes release archives and checksums that depend only on
// the files' contents, for scripts/release.sh:
//
//	go run ./scripts/archive -o X.tar.gz -prefix X/ FILE...   # or X.zip
//	go run ./scripts/archive -sums DIR                        # DIR/SHA256SUMS
//
// Every entry has the same time (SOURCE_DATE_EPOCH, default 0), owner 0:0
// with no user or group names, and mode 0755 for executables (a file whose
// owner may run it) or 0644 otherwise; entries are in the order given. The
// gzip header carries no name or time. So two builds of the same binaries
// give byte-identical archives, whatever the umask, the file times or the
// host's tar and gzip (the same Go release compresses the same way).
//
// -sums writes SHA256SUMS for every regular file in DIR, sorted by name,
// in the format `sha256sum -c` and `shasum -a 256 -c` read.
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	out := flag.String("o", "", "the archive to write: NAME.tar.gz or NAME.zip")
	prefix := flag.String("prefix", "", "folder every entry is placed in, e.g. NAME/")
	sums := flag.String("sums", "", "write SHA256SUMS for the files in this folder")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("archive: ")
	t, err := epoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		log.Fatal(err)
	}
	switch {
	case *sums != "" && *out == "":
		err = writeSums(*sums)
	case *out != "" && flag.NArg() > 0:
		err = write(*out, *prefix, flag.Args(), t)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func epoch(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a count of seconds", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// entry is one file as the archive records it.
type entry struct {
	name string
	mode int64
	body []byte
}

func read(prefix string, files []string) ([]entry, error) {
	var es []entry
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", f)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		mode := int64(0o644)
		if fi.Mode().Perm()&0o100 != 0 {
			mode = 0o755
		}
		es = append(es, entry{name: prefix + filepath.Base(f), mode: mode, body: b})
	}
	return es, nil
}

func write(out, prefix string, files []string, t time.Time) error {
	es, err := read(prefix, files)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	switch {
	case strings.HasSuffix(out, ".tar.gz"):
		err = writeTarGz(f, es, t)
	case strings.HasSuffix(out, ".zip"):
		err = writeZip(f, es, t)
	default:
		err = errors.New("the archive's name must end in .tar.gz or .zip")
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
	}
	return err
}

func writeTarGz(w io.Writer, es []entry, t time.Time) error {
	// No Name or ModTime in the gzip header (as gzip -n).
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, e := range es {
		// USTAR: no PAX access or change times, no user or group names.
		h := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: e.mode, Size: int64(len(e.body)), ModTime: t, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(e.body); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeZip(w io.Writer, es []entry, t time.Time) error {
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	for _, e := range es {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: t}
		h.SetMode(os.FileMode(e.mode))
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := fw.Write(e.body); err != nil {
			return err
		}
	}
	return zw.Close()
}

func writeSums(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var lines []string
	for _, de := range des {
		if !de.Type().IsRegular() || de.Name() == "SHA256SUMS" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		// Two spaces: binary and text mode read the same for sha256sum -c.
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+de.Name()+"\n")
	}
	if len(lines) == 0 {
		return fmt.Errorf("no files in %s", dir)
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(strings.Join(lines, "")), 0o644)
}
