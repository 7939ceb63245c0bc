// Package version says which release a devicegate binary was built from,
// for the -version flag of devicegate, devicegate-login and
// devicegate-check. It is outside api/internal so that cmd/ can import it.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// stamped is the release this binary was built from, stamped by
// scripts/release.sh:
//
//	go build -ldflags "-X github.com/devicegate/devicegate/internal/version.stamped=v1.2.3"
var stamped string

// Line is what -version prints: the name, the stamped version (or the
// module version `go install …@v1.2.3` records, or "devel" for a plain
// build), the platform it was built for, and the Go release.
func Line(name string) string {
	v := stamped
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return fmt.Sprintf("%s %s %s/%s%s %s", name, v, runtime.GOOS, runtime.GOARCH, goarm(), runtime.Version())
}

// goarm names the ARM level a 32-bit ARM build targets (v6 for the Pi Zero
// and 32-bit Raspberry Pi OS, v7), which runtime.GOARCH alone does not say.
func goarm() string {
	if runtime.GOARCH != "arm" {
		return ""
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" {
				return "v" + s.Value
			}
		}
	}
	return ""
}
