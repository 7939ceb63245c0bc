package frontend

import (
	"io/fs"
	"strings"
	"testing"
)

func TestFilesPresentAndCSPSafe(t *testing.T) {
	for _, name := range []string{"index.html", "404.html", "assets/app.css", "assets/device.js", "assets/favicon.svg"} {
		if _, err := fs.Stat(Files, name); err != nil {
			t.Errorf("%s missing: %v", name, err)
		}
	}
	pages, _ := fs.Glob(Files, "*.html")
	for _, p := range pages {
		b, _ := fs.ReadFile(Files, p)
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
