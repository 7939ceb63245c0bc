package frontend

import (
	"io/fs"
	"os"
	"strings"
	"testing"
)

func TestFilesPresentAndCSPSafe(t *testing.T) {
	for _, name := range []string{"assets/app.css", "assets/device.js", "assets/favicon.svg"} {
		if _, err := fs.Stat(Files, name); err != nil {
			t.Errorf("%s missing: %v", name, err)
		}
	}
	// The pages are rendered by the handler; the one HTML file left is
	// the stand-by index.html the Static Web Apps deploy requires.
	if _, err := fs.Stat(Files, "index.html"); err == nil {
		t.Error("index.html is embedded: the handler renders / itself")
	}
	pages, _ := fs.Glob(os.DirFS("."), "*.html")
	if len(pages) != 1 || pages[0] != "index.html" {
		t.Errorf("HTML files in frontend/: %v, want index.html alone", pages)
	}
	for _, p := range pages {
		b, _ := os.ReadFile(p)
		s := string(b)
		if strings.Contains(s, "<style") || strings.Contains(s, " style=") || strings.Contains(s, "onclick=") || strings.Contains(s, "javascript:") {
			t.Errorf("%s has inline style or script", p)
		}
		for _, tag := range strings.Split(s, "<script")[1:] {
			if !strings.HasPrefix(tag, ` src="/assets/`) {
				t.Errorf("%s has an inline script", p)
			}
		}
		if strings.Contains(s, `src="http`) || strings.Contains(s, `href="http`) {
			t.Errorf("%s loads something from another host", p)
		}
	}
}
