package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/devicegate/devicegate/internal/version"
)

// TestVersionFlag: -version prints internal/version's line for
// devicegate-login (stamped version, platform, Go release; tested there, and
// for the release binaries by scripts/release-check.sh) on standard output
// and needs nothing else.
func TestVersionFlag(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-version"}, func(string) string { return "" }, &out, &out, false)
	if want := version.Line("devicegate-login") + "\n"; err != nil || out.String() != want {
		t.Errorf("got %q, %v; want %q", out.String(), err, want)
	}
}
