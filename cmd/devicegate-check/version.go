package main

import (
	"fmt"

	"runtime"
	"runtime/debug"
)

// version is the release this binary was built from, stamped by
// scripts/release.sh: go build -ldflags "-X main.version=v1.2.3".
var version string

// versionLine is what -version prints: the name, the stamped version (or
// the module version `go install …@v1.2.3` records, or "devel" for a plain
// build), and the platform it was built for.
func versionLine(name string) string {
	v := version
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
