package httpapi

import (
	"bytes"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// static serves the embedded frontend the way Static Web Apps serves it in
// Azure: "/" and "/device" by name, files by path, 404.html otherwise.
type static struct {
	fsys     fs.FS
	notFound []byte
	modTime  time.Time
}

// routes maps pretty paths to files; staticwebapp.config.json has the same.
// (/device is not a file: the router sends it to the handler, which writes
// it in the person's language.)
var staticRoutes = map[string]string{
	"/": "index.html",
}

func newStatic(fsys fs.FS) *static {
	nf, _ := fs.ReadFile(fsys, "404.html")
	return &static{fsys: fsys, notFound: nf, modTime: time.Now()}
}

func (s *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := staticRoutes[r.URL.Path]
	if !ok {
		name = strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if strings.HasSuffix(name, ".html") {
			// Pages are reached by their pretty path only, as in Azure.
			name = ""
		}
	}
	b, err := fs.ReadFile(s.fsys, name)
	if name == "" || err != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(s.notFound)
		return
	}
	if strings.HasPrefix(name, "assets/") {
		w.Header().Set("Cache-Control", "public, max-age=3600")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, name, s.modTime, bytes.NewReader(b))
}
