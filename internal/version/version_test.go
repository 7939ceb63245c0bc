package version

import (
	"runtime"
	"testing"
)

// TestLine: the name, the stamped version ("devel" for a plain build), the
// platform and the Go release, in that order.
func TestLine(t *testing.T) {
	for _, tc := range []struct{ stamped, want string }{
		{"", "devicegate devel " + runtime.GOOS + "/" + runtime.GOARCH},
		{"v1.2.3", "devicegate v1.2.3 " + runtime.GOOS + "/" + runtime.GOARCH},
	} {
		stamped = tc.stamped
		got := Line("devicegate")
		stamped = ""
		if want := tc.want + goarm() + " " + runtime.Version(); got != want {
			t.Errorf("stamped %q: %q, want %q", tc.stamped, got, want)
		}
	}
}
