package main

import (
	"bytes"
	"context"
	"runtime"
	"testing"
)

// TestVersionFlag: -version prints the stamped version and the platform on
// standard output, exits 0 and needs no URL.
func TestVersionFlag(t *testing.T) {
	for _, tc := range []struct{ stamped, want string }{
		{"", "devicegate-check devel "},
		{"v1.2.3", "devicegate-check v1.2.3 "},
	} {
		version = tc.stamped
		var out bytes.Buffer
		code := run(context.Background(), []string{"-version"}, func(string) string { return "" }, &out, &out)
		version = ""
		want := tc.want + runtime.GOOS + "/" + runtime.GOARCH + " " + runtime.Version() + "\n"
		if code != 0 || out.String() != want {
			t.Errorf("stamped %q: got %q, exit %d; want %q", tc.stamped, out.String(), code, want)
		}
	}
}
