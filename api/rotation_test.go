package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/serve"
)

// TestKeyRotationKeepsDevicesSignedIn runs the real wiring three times
// over one bolt file, as an operator rotating DEVICEGATE_SECRET_KEY would:
// under key A two devices sign in with a provider that never rotates
// refresh tokens; then B with A as DEVICEGATE_SECRET_KEY_PREVIOUS, during
// which one device refreshes; then B alone. The device that refreshed
// during the overlap keeps refreshing; the one that did not must sign in
// again — why the previous key stays for the refresh lifetime.
func TestKeyRotationKeepsDevicesSignedIn(t *testing.T) {
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		switch r.PostForm.Get("grant_type") {
		case "authorization_code":
			json.NewEncoder(w).Encode(map[string]any{"access_token": "AT-" + r.PostForm.Get("code"), "token_type": "Bearer",
				"refresh_token": "RT-" + r.PostForm.Get("code"), "expires_in": 3600})
		case "refresh_token": // never rotates
			json.NewEncoder(w).Encode(map[string]any{"access_token": "AT2", "token_type": "Bearer", "expires_in": 3600})
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer provider.Close()
	keyA := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("A", 32)))
	keyB := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("B", 32)))
	db := filepath.Join(t.TempDir(), "devicegate.db")
	// start runs the real wiring on the bolt file until stop; bolt holds
	// the file locked, so each app stops before the next one opens it.
	start := func(key, previous string) (string, func()) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + ln.Addr().String()
		env := map[string]string{
			"DEVICEGATE_PUBLIC_URL": base, "DEVICEGATE_STORE": "bolt", "DEVICEGATE_BOLT_PATH": db,
			"DEVICEGATE_SECRET_KEY": key, "DEVICEGATE_SECRET_KEY_PREVIOUS": previous,
			"DEVICEGATE_UPSTREAM": "generic", "DEVICEGATE_UPSTREAM_AUTH_URL": provider.URL + "/authorize", "DEVICEGATE_UPSTREAM_TOKEN_URL": provider.URL + "/token",
			"DEVICEGATE_UPSTREAM_CLIENT_ID": "dg", "DEVICEGATE_UPSTREAM_CLIENT_SECRET": "dg-secret",
			"DEVICEGATE_CLIENTS": `[{"client_id":"tv","name":"TV"}]`,
		}
		cfg, err := config.Load(envMap(env), false)
		if err != nil {
			t.Fatal(err)
		}
		a, err := build(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), serve.LoopbackURL(ln.Addr()))
		if err != nil {
			ln.Close()
			t.Fatal(err)
		}
		srv := &http.Server{Handler: a.handler}
		go srv.Serve(ln)
		return base, func() { srv.Close(); a.close() }
	}
	signIn := func(base string) string {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		var g struct{ DeviceCode, UserCode string }
		res, err := http.PostForm(base+"/api/authorize", url.Values{"client_id": {"tv"}})
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		json.NewDecoder(res.Body).Decode(&raw)
		res.Body.Close()
		g.DeviceCode, g.UserCode = raw["device_code"].(string), raw["user_code"].(string)
		res, err = browser.Get(base + "/api/verify?user_code=" + url.QueryEscape(g.UserCode))
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := csrfField.FindStringSubmatch(string(page))
		if m == nil {
			t.Fatalf("no form token (%d)", res.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodPost, base+"/api/verify", strings.NewReader(url.Values{"user_code": {g.UserCode}, "csrf": {m[1]}, "action": {"allow"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		res, err = browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, err := url.Parse(res.Header.Get("Location"))
		if err != nil || res.StatusCode != http.StatusFound {
			t.Fatalf("Allow: %d %v", res.StatusCode, err)
		}
		res, err = browser.Get(base + "/api/callback?code=c" + g.UserCode[:4] + "&state=" + url.QueryEscape(loc.Query().Get("state")))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		res, err = http.PostForm(base+"/api/token", url.Values{"client_id": {"tv"}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {g.DeviceCode}})
		if err != nil {
			t.Fatal(err)
		}
		var tok map[string]any
		json.NewDecoder(res.Body).Decode(&tok)
		res.Body.Close()
		rt, _ := tok["refresh_token"].(string)
		if rt == "" {
			t.Fatalf("no tokens: %v", tok)
		}
		return rt
	}
	refresh := func(base, rt string) int {
		t.Helper()
		res, err := http.PostForm(base+"/api/token", url.Values{"client_id": {"tv"}, "grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	base, stop := start(keyA, "")
	active, idle := signIn(base), signIn(base)
	if active == idle {
		t.Fatal("two sign-ins got one refresh token")
	}
	stop()
	base, stop = start(keyB, keyA)
	if st := refresh(base, active); st != http.StatusOK {
		t.Fatalf("refresh during the overlap: %d", st)
	}
	stop()
	base, stop = start(keyB, "")
	defer stop()
	for i := range 2 {
		if st := refresh(base, active); st != http.StatusOK {
			t.Errorf("refresh %d after the previous key was removed: %d, want 200", i+1, st)
		}
	}
	if st := refresh(base, idle); st != http.StatusBadRequest {
		t.Errorf("a device that did not refresh during the overlap: %d, want 400 (sign in again)", st)
	}
}
