package main

import (
	"fmt"
	"io"
	"strings"

	"rsc.io/qr"
)

// quiet is the light margin around the code, in modules: the four the QR
// standard asks for, as a dark terminal gives scanners no light of its own.
const quiet = 4

// writeQR draws text as a QR code with half-block characters, two module
// rows per line, light modules drawn as blocks: on the usual dark terminal
// that gives dark modules on a light ground, as scanners expect.
func writeQR(w io.Writer, text string) error {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, renderQR(code))
	return err
}

func renderQR(code *qr.Code) string {
	light := func(x, y int) bool { return !code.Black(x, y) } // outside the code is light
	var b strings.Builder
	for y := -quiet; y < code.Size+quiet; y += 2 {
		b.WriteString("  ")
		for x := -quiet; x < code.Size+quiet; x++ {
			top, bottom := light(x, y), light(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// parseQR reads a drawing made by renderQR back into a module matrix
// (true = dark), for tests and for anyone checking what was drawn.
func parseQR(s string) ([][]bool, error) {
	var rows [][]bool
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		line = strings.TrimPrefix(line, "  ")
		var top, bottom []bool
		for _, r := range line {
			switch r {
			case '█':
				top, bottom = append(top, false), append(bottom, false)
			case '▀':
				top, bottom = append(top, false), append(bottom, true)
			case '▄':
				top, bottom = append(top, true), append(bottom, false)
			case ' ':
				top, bottom = append(top, true), append(bottom, true)
			default:
				return nil, fmt.Errorf("unexpected %q in the drawing", r)
			}
		}
		rows = append(rows, top, bottom)
	}
	return rows, nil
}
