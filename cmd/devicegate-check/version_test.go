package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/devicegate/devicegate/internal/version"
)

// TestVersionFlag: -version prints internal/version's line for
// devicegate-check (stamped version, platform, Go release; tested there, and
// for the release binaries by scripts/release-check.sh) on standard output
// and needs nothing else.
func TestVersionFlag(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"-version"}, func(string) string { return "" }, &out, &out)
	if want := version.Line("devicegate-check") + "\n"; code != 0 || out.String() != want {
		t.Errorf("got %q, exit %d; want %q", out.String(), code, want)
	}
}
