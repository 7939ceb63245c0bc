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
