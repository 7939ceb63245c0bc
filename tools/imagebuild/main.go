// Command imagebuild builds devicegate's container image without a Docker
// daemon or a base image, reproducibly, and inspects it.
//
//	imagebuild -binary dist/devicegate -out dist/image   # an OCI image layout
//	imagebuild -arch arm64 -binary … -out …              # linux/arm64 (default amd64)
//	imagebuild -index dist/multi dist/image-amd64 dist/image-arm64  # one multi-platform index
//	imagebuild -inspect dist/image                       # JSON: digest, entrypoint, user, env, size
//	imagebuild -extract dist/image -o FILE               # the binary, as the image holds it
//
// The layout keeps the exact manifest, so `crane push dist/image REF`
// publishes the digest printed here.
//
// The image is one layer on an empty base: the static binary, /etc/passwd
// and /etc/group naming an unprivileged user (65532, as distroless's
// "nonroot"), and a world-writable /tmp. Every file has a fixed owner, mode
// and time (SOURCE_DATE_EPOCH, default 0), and the config carries no build
// time, so the same binary always gives the same digest. The binary listens
// on $PORT (default 8080), which the platform may override.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	binaryPath = "/devicegate"
	uid        = 65532
	port       = "8080"
)

func main() {
	binary := flag.String("binary", "", "the static linux devicegate binary to package, built for -arch")
	arch := flag.String("arch", "amd64", "the image's architecture: amd64 or arm64 (scripts/release.sh builds both)")
	out := flag.String("out", "", "write the image here, as an OCI image layout (a new directory)")
	source := flag.String("source", "", "org.opencontainers.image.source label (the repository URL)")
	revision := flag.String("revision", "", "org.opencontainers.image.revision label (the commit)")
	inspect := flag.String("inspect", "", "print a JSON summary of the image in this OCI layout")
	extract := flag.String("extract", "", "extract the binary from the image in this OCI layout (with -o)")
	to := flag.String("o", "", "where -extract writes the binary")
	index := flag.String("index", "", "write an OCI layout here whose index lists the images of the layouts given as arguments, each with its platform (push it with crane push --index)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("imagebuild: ")
	var err error
	switch {
	case *inspect != "":
		err = inspectImage(*inspect, os.Stdout)
	case *index != "" && flag.NArg() > 0:
		err = writeIndex(*index, flag.Args())
	case *extract != "" && *to != "":
		err = extractBinary(*extract, *to)
	case *binary != "" && *out != "":
		err = build(*binary, *arch, *out, *source, *revision)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func epoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
	}
	return time.Unix(n, 0).UTC(), nil
}

// machines maps each architecture an image may have (its config's
// architecture, as the OCI image spec names GOARCH values) to the ELF
// machine its binary must be built for.
var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

func build(binary, arch, out, source, revision string) error {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	if len(bin) < 4 || string(bin[1:4]) != "ELF" {
		return errors.New("the binary is not an ELF executable (build with GOOS=linux)")
	}
	want, ok := machines[arch]
	if !ok {
		return fmt.Errorf("-arch %q: want amd64 or arm64", arch)
	}
	ef, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return err
	}
	// An image that says arm64 but holds an amd64 binary would be pulled
	// by a Raspberry Pi and fail with "exec format error".
	if ef.Machine != want {
		return fmt.Errorf("the binary is for %v, not %s (build with GOARCH=%s)", ef.Machine, arch, arch)
	}
	t, err := epoch()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: t, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(b)), ModTime: t, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, uid)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid)
	for _, step := range []func() error{
		func() error { return dir("etc/", 0o755) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return dir("tmp/", 0o1777) },
		// Read and execute only: nothing in the image is writable by the
		// user it runs as.
		func() error { return file(binaryPath[1:], 0o555, bin) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "devicegate",
		"org.opencontainers.image.description": "OAuth 2.0 Device Authorization Grant (RFC 8628) proxy",
		"org.opencontainers.image.licenses":    "MIT",
	}
	if source != "" {
		labels["org.opencontainers.image.source"] = source
	}
	if revision != "" {
		labels["org.opencontainers.image.revision"] = revision
	}
	// Config first, on an empty OCI image; then the layer, which adds its
	// diff ID and history entry.
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: t},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint:   []string{binaryPath},
			User:         fmt.Sprintf("%d:%d", uid, uid),
			Env:          []string{"PORT=" + port, "DEVICEGATE_LOG_FORMAT=json", "DEVICEGATE_STORE=cosmos"},
			ExposedPorts: map[string]struct{}{port + "/tcp": {}},
			WorkingDir:   "/tmp",
			Labels:       labels,
		},
	})
	if err != nil {
		return err
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: t}, CreatedBy: "imagebuild: devicegate binary, passwd, /tmp"}})
	if err != nil {
		return err
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("%s exists; remove it first", out)
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", out, d)
	return nil
}

// writeIndex writes a layout whose index.json lists the one image of each
// layout in layouts with its platform (from the image's config), in the
// order given: pushed with `crane push --index`, index.json itself becomes
// the multi-platform index, so its digest is known before the push and the
// same for the same images.
func writeIndex(out string, layouts []string) error {
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("%s exists; remove it first", out)
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	for _, l := range layouts {
		img, err := readImage(l)
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		if err := p.AppendImage(img, layout.WithPlatform(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant})); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "index.json"))
	if err != nil {
		return err
	}
	fmt.Printf("%s sha256:%x\n", out, sha256.Sum256(b))
	return nil
}

// readImage returns the one image of an OCI layout written by build.
func readImage(path string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(path)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("%s holds %d images, want 1", path, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}

type summary struct {
	Digest       string   `json:"digest"`
	Entrypoint   []string `json:"entrypoint"`
	User         string   `json:"user"`
	Env          []string `json:"env"`
	ExposedPorts []string `json:"exposed_ports"`
	OS           string   `json:"os"`
	Architecture string   `json:"architecture"`
	Layers       int      `json:"layers"`
	Compressed   int64    `json:"compressed_bytes"`
	Files        []string `json:"files"`
	BinaryMode   string   `json:"binary_mode"`
	BinaryOwner  int      `json:"binary_owner"`
}

func inspectImage(path string, w io.Writer) error {
	img, err := readImage(path)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	s := summary{Digest: d.String(), Entrypoint: cf.Config.Entrypoint, User: cf.Config.User, Env: cf.Config.Env,
		OS: cf.OS, Architecture: cf.Architecture, Layers: len(layers)}
	for p := range cf.Config.ExposedPorts {
		s.ExposedPorts = append(s.ExposedPorts, p)
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return err
		}
		s.Compressed += n
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		s.Files = append(s.Files, h.Name)
		if "/"+h.Name == binaryPath {
			s.BinaryMode, s.BinaryOwner = fmt.Sprintf("%04o", h.Mode&0o7777), h.Uid
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

func extractBinary(path, to string) error {
	img, err := readImage(path)
	if err != nil {
		return err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			return fmt.Errorf("%s not found in the image: %w", binaryPath, err)
		}
		if "/"+h.Name != binaryPath {
			continue
		}
		f, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
}
