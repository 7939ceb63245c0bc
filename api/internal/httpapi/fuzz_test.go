package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fuzzEndpoint feeds arbitrary requests to one endpoint. Whatever arrives,
// devicegate must not panic, must not answer 5xx (the store is healthy
// here), and every 4xx from the API must carry an RFC error code.
func fuzzEndpoint(f *testing.F, method, path string, seeds []string) {
	for _, s := range seeds {
		f.Add(s, "application/x-www-form-urlencoded", "", "")
	}
	f.Add("client_id=tv", "application/json", "", "Basic dHY6eA==")
	f.Add("", "", "user_code=BCDF-GHJK&state=x&code=y", "")
	f.Add("%%%", "application/x-www-form-urlencoded; charset=\x00", "%zz", "Basic !!!")
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, body, ctype, query, auth string) {
		target := path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(method, "http://devicegate.test"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.URL.RawQuery = query
		req.RequestURI = target
		if ctype != "" {
			req.Header["Content-Type"] = []string{ctype}
		}
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		req.Header.Set("Origin", "http://devicegate.test")
		rec := httptest.NewRecorder()
		h.srv.Config.Handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s answered %d: %s", method, path, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["error"] == "" || m["error"] == nil {
				t.Fatalf("4xx without an RFC error code: %s", rec.Body)
			}
		}
	})
}

func FuzzAuthorize(f *testing.F) {
	fuzzEndpoint(f, http.MethodPost, "/api/authorize", []string{"client_id=tv", "client_id=tv&scope=streaming", "client_id=bike&scope=read", "client_id=kiosk&client_secret=x", "client_id=console&client_secret=s3cret", "client_id=tv&client_id=x", "scope=%20"})
}

func FuzzToken(f *testing.F) {
	fuzzEndpoint(f, http.MethodPost, "/api/token", []string{
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=tv&device_code=abc",
		"grant_type=refresh_token&client_id=tv", "grant_type=refresh_token&client_id=tv&refresh_token=RT-x", "grant_type=refresh_token&client_id=tv&refresh_token=zz", "grant_type=&device_code=", "client_id=console&client_secret=x&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=1",
		"client_id=kiosk&client_secret=up-secret&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=1",
		"client_id=kiosk&grant_type=refresh_token&refresh_token=RT-x", "client_id=bike&grant_type=refresh_token&refresh_token=RT-x",
	})
}

func FuzzVerify(f *testing.F) {
	fuzzEndpoint(f, http.MethodPost, "/api/verify", []string{"user_code=BCDF-GHJK", "user_code=bcdf%20ghjk&action=allow&csrf=x", "action=deny", "user_code=%3Cscript%3E"})
}

func FuzzCallback(f *testing.F) {
	fuzzEndpoint(f, http.MethodGet, "/api/callback", []string{"", "x"})
}
