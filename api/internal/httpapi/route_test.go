package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// The router dispatches matched routes without gorilla/mux's ServeHTTP
// (routed); everything else still goes through it, so a path that is not
// in clean form is redirected to the clean one as mux always did, and
// never served.
func TestUncleanPathRedirects(t *testing.T) {
	h := newHarness(t)
	for path, want := range map[string]string{
		"/api//token":       "/api/token",
		"/api/./token":      "/api/token",
		"/api/x/../token":   "/api/token",
		"/api/health/../..": "/",
	} {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader("client_id=tv"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := h.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != want {
			t.Errorf("%s: %d Location %q, want 301 to %q", path, res.StatusCode, res.Header.Get("Location"), want)
		}
	}
}

// A poll goes straight to the token handler (routed), without mux's
// Match: only POST on exactly /api/token does, which is the request mux
// would send there; every other method or a path that is not exactly it
// gets what mux answers (405 with Allow, 404).
func TestTokenRouteAsMuxChooses(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodPost, "/api/token", http.StatusBadRequest, ""}, // the token handler: no grant_type
		{http.MethodPost, "/api/%74oken", http.StatusBadRequest, ""},
		{http.MethodPost, "/api/token?x=1", http.StatusBadRequest, ""},
		{http.MethodGet, "/api/token", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPut, "/api/token", http.StatusMethodNotAllowed, "POST"},
		{"post", "/api/token", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPost, "/api/token/", http.StatusNotFound, ""},
		{http.MethodPost, "/api/TOKEN", http.StatusNotFound, ""},
		{http.MethodPost, "/api/tokens", http.StatusNotFound, ""},
		{http.MethodPost, "/api/authorize", http.StatusOK, ""},
	} {
		req, _ := http.NewRequest(c.method, h.srv.URL+c.path, strings.NewReader("client_id=tv"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res := h.do(req, h.browser)
		if res.StatusCode != c.status || res.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q; want %d Allow %q: %s", c.method, c.path, res.StatusCode, res.Header.Get("Allow"), c.status, c.allow, res.body)
		}
		if c.status == http.StatusBadRequest && !strings.Contains(string(res.body), "grant_type is required") {
			t.Errorf("%s %s: %s; want the token handler's answer", c.method, c.path, res.body)
		}
	}
}
