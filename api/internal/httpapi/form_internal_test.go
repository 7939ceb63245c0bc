package httpapi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// readForm replaced r.ParseForm on every form request; it must see each
// request exactly as ParseForm did: the same values, an error in the same
// cases (a too-large body as *http.MaxBytesError), and the same count of
// body bytes (an empty chunked body is told apart by it).
func TestReadFormAsParseForm(t *testing.T) {
	big := "a=" + strings.Repeat("x", maxFormBytes-2)
	tests := []struct {
		name, method, target, body string
	}{
		{"poll", "POST", "/api/token", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=tv&device_code=abc"},
		{"escapes and plus", "POST", "/api/token", "a=%20b+c&d=%E2%82%AC"},
		{"repeated", "POST", "/api/token", "a=1&a=2&b="},
		{"bad escape", "POST", "/api/token", "a=%zz"},
		{"semicolon", "POST", "/api/token", "a=1;b=2"},
		{"bad query, good body", "POST", "/api/token?%zz", "a=1"},
		{"semicolon query", "POST", "/api/token?a=1;b=2", "a=1"},
		{"good query", "POST", "/api/token?client_id=x", "a=1"},
		{"empty", "POST", "/api/token", ""},
		{"only separators", "POST", "/api/token", "&&"},
		{"exactly the limit", "POST", "/api/token", big},
		{"one byte over", "POST", "/api/token", big + "y"},
		{"far over", "POST", "/api/token", big + strings.Repeat("y", 100<<10)},
		{"PUT", "PUT", "/api/token", "a=1"},
		{"GET with a body", "GET", "/api/verify?user_code=x", "a=1"},
	}
	for _, tc := range tests {
		for _, chunked := range []bool{false, true} {
			req := func() *http.Request {
				r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
				if chunked {
					r.ContentLength = -1
					r.Body = io.NopCloser(strings.NewReader(tc.body))
				}
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r
			}
			// What parseForm did before: ParseForm through the same
			// MaxBytesReader, counting the bytes.
			old := req()
			counted := &countReader{r: http.MaxBytesReader(httptest.NewRecorder(), old.Body, maxFormBytes)}
			old.Body = counted
			oldErr := old.ParseForm()

			form, n, err := readForm(httptest.NewRecorder(), req())
			var oldMBE, newMBE *http.MaxBytesError
			if (err == nil) != (oldErr == nil) || errors.As(err, &newMBE) != errors.As(oldErr, &oldMBE) {
				t.Errorf("%s (chunked %v): error %v, ParseForm %v", tc.name, chunked, err, oldErr)
			}
			if (n == 0) != (counted.n == 0) {
				t.Errorf("%s (chunked %v): %d bytes read, ParseForm read %d", tc.name, chunked, n, counted.n)
			}
			if oldErr == nil && !reflect.DeepEqual(form, old.PostForm) {
				t.Errorf("%s (chunked %v): form %v, ParseForm %v", tc.name, chunked, form, old.PostForm)
			}
		}
	}
}

type countReader struct {
	r io.ReadCloser
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *countReader) Close() error { return c.r.Close() }

// routed serves matched routes itself; a path gorilla/mux would redirect
// to its clean form must still be redirected, not served.
func TestCleanPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/api/token": true, "/": true, "/device/": true, "/api/callback/strava": true,
		"": false, "api/token": false, "//api/token": false, "/api//token": false, "/api/./token": false,
		"/api/x/../token": false, "/api/token/.": false, "/api/token//": false, "/..": false, "//": false,
		// Clean, but left to mux (which serves it) by the conservative check.
		"/.well-known/oauth-authorization-server": false,
	} {
		if got := cleanPath(p); got != want {
			t.Errorf("cleanPath(%q) = %v, want %v", p, got, want)
		}
	}
}
