package main

import (
	"bytes"
	"context"
	"runtime"
	"testing"
)

// TestVersionFlag: -version prints the stamped version and the platform on
// standard output and needs no URL or client.
func TestVersionFlag(t *testing.T) {
	for _, tc := range []struct{ stamped, want string }{
		{"", "devicegate-login devel "},
		{"v1.2.3", "devicegate-login v1.2.3 "},
	} {
		version = tc.stamped
		var out bytes.Buffer
		err := run(context.Background(), []string{"-version"}, func(string) string { return "" }, &out, &out, false)
		version = ""
		want := tc.want + runtime.GOOS + "/" + runtime.GOARCH + " " + runtime.Version() + "\n"
		if err != nil || out.String() != want {
			t.Errorf("stamped %q: got %q, %v; want %q", tc.stamped, out.String(), err, want)
		}
	}
}
