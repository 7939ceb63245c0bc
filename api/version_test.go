package main

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/devicegate/devicegate/internal/version"
)

// TestVersionFlag: -version prints internal/version's line for devicegate
// (stamped version, platform, Go release; tested there, and for the
// release binaries by scripts/release-check.sh) on standard output, and
// exits before reading any configuration (the environment here would fail
// config.Load).
func TestVersionFlag(t *testing.T) {
	var out, errs bytes.Buffer
	stdout = &out
	t.Cleanup(func() { stdout = os.Stdout })
	err := run(context.Background(), []string{"-version"}, []string{"DEVICEGATE_STORE=floppy"}, &errs)
	if want := version.Line("devicegate") + "\n"; err != nil || out.String() != want {
		t.Errorf("-version: printed %q, %v (stderr %q); want %q", out.String(), err, errs.String(), want)
	}
}
