package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// bar is one bar of a chart.
type bar struct {
	Label string
	Value float64
	Note  string // printed after the value, e.g. "p99 1.2 ms"
	Color string
}

// barChartSVG draws a horizontal bar chart: no scripts, no external fonts
// or services, readable in a browser and on GitHub.
func barChartSVG(title, unit string, bars []bar) string {
	const (
		width   = 760
		left    = 190 // label column
		right   = 40
		top     = 48
		rowH    = 44
		barH    = 26
		bottomH = 34
	)
	height := top + rowH*len(bars) + bottomH
	maxV := 0.0
	for _, b := range bars {
		maxV = math.Max(maxV, b.Value)
	}
	if maxV <= 0 {
		maxV = 1
	}
	scale := niceCeil(maxV)
	plotW := float64(width - left - right)
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="13">`+"\n", width, height, width, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&s, `<text x="%d" y="26" font-size="15" font-weight="600" fill="#111">%s</text>`+"\n", 12, html.EscapeString(title))
	// grid lines and axis labels at quarters
	for i := 0; i <= 4; i++ {
		x := float64(left) + plotW*float64(i)/4
		v := scale * float64(i) / 4
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3e3e3"/>`+"\n", x, top-6, x, top+rowH*len(bars))
		fmt.Fprintf(&s, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555" font-size="11">%s</text>`+"\n", x, top+rowH*len(bars)+16, html.EscapeString(humanNumber(v)))
	}
	fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end" fill="#555" font-size="11">%s</text>`+"\n", width-right, height-4, html.EscapeString(unit))
	for i, b := range bars {
		y := top + rowH*i
		w := plotW * b.Value / scale
		color := b.Color
		if color == "" {
			color = "#4a78c2"
		}
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end" fill="#111">%s</text>`+"\n", left-10, y+barH/2+5, html.EscapeString(b.Label))
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s" rx="2"/>`+"\n", left, y, w, barH, color)
		label := humanNumber(b.Value)
		if b.Note != "" {
			label += "  (" + b.Note + ")"
		}
		// the value sits inside a long bar, after a short one
		if w > plotW*0.55 {
			fmt.Fprintf(&s, `<text x="%.1f" y="%d" text-anchor="end" fill="#fff">%s</text>`+"\n", float64(left)+w-6, y+barH/2+5, html.EscapeString(label))
		} else {
			fmt.Fprintf(&s, `<text x="%.1f" y="%d" fill="#111">%s</text>`+"\n", float64(left)+w+6, y+barH/2+5, html.EscapeString(label))
		}
	}
	s.WriteString("</svg>\n")
	return s.String()
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// humanNumber prints 12345 as "12 345" style thousands, small values plainly.
func humanNumber(v float64) string {
	if v >= 1000 {
		n := int64(math.Round(v))
		str := fmt.Sprint(n)
		var out []byte
		for i, c := range []byte(str) {
			if i > 0 && (len(str)-i)%3 == 0 {
				out = append(out, ',')
			}
			out = append(out, c)
		}
		return string(out)
	}
	if v == math.Trunc(v) {
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}
