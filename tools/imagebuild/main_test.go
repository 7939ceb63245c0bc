package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestArchMustMatchTheBinary: the image's architecture is the one asked
// for, and a binary built for another one is refused (an arm64 image
// holding an amd64 binary fails only when a device runs it). The test
// binary itself stands in for devicegate: an ELF file for this machine.
func TestArchMustMatchTheBinary(t *testing.T) {
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skipf("needs a linux amd64 or arm64 test binary, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	err = build(self, other, filepath.Join(t.TempDir(), "wrong"), "", "")
	if err == nil || !strings.Contains(err.Error(), "not "+other) {
		t.Fatalf("a %s binary packaged as %s: got %v, want a refusal", runtime.GOARCH, other, err)
	}
	if err := build(self, "riscv64", filepath.Join(t.TempDir(), "unknown"), "", ""); err == nil {
		t.Fatal("-arch riscv64 was accepted")
	}
	out := filepath.Join(t.TempDir(), "image")
	if err := build(self, runtime.GOARCH, out, "", ""); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := inspectImage(out, &buf); err != nil {
		t.Fatal(err)
	}
	var s summary
	if err := json.Unmarshal(buf.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.OS != "linux" || s.Architecture != runtime.GOARCH {
		t.Errorf("image platform %s/%s, want linux/%s", s.OS, s.Architecture, runtime.GOARCH)
	}
}

// TestIndexListsEachPlatform: -index writes a layout whose index.json names
// each image with its platform, and prints index.json's own digest (what a
// registry will call the multi-platform image after crane push --index).
func TestIndexListsEachPlatform(t *testing.T) {
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skipf("needs a linux amd64 or arm64 test binary, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "image")
	if err := build(self, runtime.GOARCH, img, "", ""); err != nil {
		t.Fatal(err)
	}
	idx := filepath.Join(dir, "index")
	if err := writeIndex(idx, []string{img}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(idx, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			MediaType string `json:"mediaType"`
			Platform  *struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != "application/vnd.oci.image.index.v1+json" || len(m.Manifests) != 1 ||
		m.Manifests[0].Platform == nil || m.Manifests[0].Platform.OS != "linux" || m.Manifests[0].Platform.Architecture != runtime.GOARCH {
		t.Errorf("index.json: %s", b)
	}
}
