package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Limits that keep package main the wiring (issue 22): main.go reads as the
// list of parts and how they connect, and anything longer belongs in the
// package whose job it is.
const (
	maxMainLines = 250
	maxFuncLines = 80
)

// TestMainStaysWiring fails when api/main.go grows past maxMainLines or a
// function of package main (tests aside) past maxFuncLines, counted from
// "func" to its closing brace (its doc comment not counted).
func TestMainStaysWiring(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(src), "\n"); n > maxMainLines {
		t.Errorf("main.go has %d lines, over %d: move the piece that grew to the package whose job it is", n, maxMainLines)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	longest, where := 0, ""
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			n := fset.Position(fn.End()).Line - fset.Position(fn.Type.Func).Line + 1
			if n > longest {
				longest, where = n, name+": "+fn.Name.Name
			}
			if n > maxFuncLines {
				t.Errorf("%s: func %s has %d lines, over %d", name, fn.Name.Name, n, maxFuncLines)
			}
		}
	}
	t.Logf("main.go: %d lines; longest function %s, %d lines", strings.Count(string(src), "\n"), where, longest)
}
