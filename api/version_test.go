package main

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestVersionFlag: -version prints the stamped version and the platform on
// standard output, and exits before reading any configuration (the
// environment here would fail config.Load).
func TestVersionFlag(t *testing.T) {
	for _, tc := range []struct{ stamped, want string }{
		{"", "devicegate devel " + runtime.GOOS + "/" + runtime.GOARCH},
		{"v1.2.3", "devicegate v1.2.3 " + runtime.GOOS + "/" + runtime.GOARCH},
	} {
		version = tc.stamped
		var out, errs bytes.Buffer
		stdout = &out
		err := run(context.Background(), []string{"-version"}, []string{"DEVICEGATE_STORE=floppy"}, &errs)
		version, stdout = "", os.Stdout
		if err != nil {
			t.Fatalf("-version: %v (stderr %q)", err, errs.String())
		}
		if got := out.String(); !strings.HasPrefix(got, tc.want) || !strings.HasSuffix(got, runtime.Version()+"\n") {
			t.Errorf("stamped %q: printed %q, want %q… %s", tc.stamped, got, tc.want, runtime.Version())
		}
	}
}
