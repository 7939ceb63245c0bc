package httpapi

import (
	"bytes"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// static serves the embedded frontend's files (the assets) the way Static
// Web Apps serves them in Azure. The pages are not files: the router
// renders "/", /device and /devices in the person's language, and every
// address that holds nothing gets notFound, the not-found page in the
// person's language (on Static Web Apps, navigationFallback rewrites such
// an address to /api/notfound).
type static struct {
	fsys     fs.FS
	notFound http.Handler
	modTime  time.Time
}

func newStatic(fsys fs.FS, notFound http.Handler) *static {
	return &static{fsys: fsys, notFound: notFound, modTime: time.Now()}
}

func (s *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if !strings.HasPrefix(name, "assets/") {
		// Only the assets are files; anything else (index.html, which
		// exists for the Static Web Apps deploy only) is no page here.
		name = ""
	}
	b, err := fs.ReadFile(s.fsys, name)
	if name == "" || err != nil {
		s.notFound.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, name, s.modTime, bytes.NewReader(b))
}
