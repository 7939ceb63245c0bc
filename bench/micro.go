package main

import (
	"fmt"
	"os/exec"
	"strings"
)

// microLine is one `go test -bench` result.
type microLine struct {
	Pkg, Name           string
	NsOp                float64
	BytesOp, AllocsOp   int64
	HasBytes, HasAllocs bool
	Iterations          int64
	Raw                 string
}

var microPackages = []string{"./api/internal/deviceflow/", "./api/internal/oauth/"}

// runMicro runs the *_bench_test.go benchmarks with -benchmem.
func runMicro(root, benchtime string) ([]microLine, string, error) {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", benchtime, "-count", "1"}, microPackages...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	command := "go " + strings.Join(args, " ")
	if err != nil {
		return nil, command, fmt.Errorf("%s: %v\n%s", command, err, out)
	}
	var lines []microLine
	pkg := ""
	for l := range strings.SplitSeq(string(out), "\n") {
		if p, ok := strings.CutPrefix(l, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/devicegate/devicegate/")
			continue
		}
		if !strings.HasPrefix(l, "Benchmark") {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		m := microLine{Pkg: pkg, Name: f[0], Raw: l}
		fmt.Sscan(f[1], &m.Iterations)
		for i := 2; i+1 < len(f); i += 2 {
			switch f[i+1] {
			case "ns/op":
				fmt.Sscan(f[i], &m.NsOp)
			case "B/op":
				fmt.Sscan(f[i], &m.BytesOp)
				m.HasBytes = true
			case "allocs/op":
				fmt.Sscan(f[i], &m.AllocsOp)
				m.HasAllocs = true
			}
		}
		lines = append(lines, m)
	}
	if len(lines) == 0 {
		return nil, command, fmt.Errorf("%s printed no benchmark lines:\n%s", command, out)
	}
	return lines, command, nil
}
