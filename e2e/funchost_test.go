package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// functionsHost is the key in newStack's extra settings that runs
// devicegate under the Functions host stand-in (cmd/funchost) in the mode
// it names, "swa" or "flex", from a package laid out as scripts/assemble.sh
// lays out dist/api and dist/functionapp.
const functionsHost = "functions host mode"

var funchostBuild struct {
	once sync.Once
	path string
	err  error
}

// funchostBinary builds the stand-in once for the whole run.
func funchostBinary(t *testing.T) string {
	t.Helper()
	funchostBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "devicegate-e2e-")
		if err != nil {
			funchostBuild.err = err
			return
		}
		funchostBuild.path = filepath.Join(dir, "funchost")
		if out, err := exec.Command("go", "build", "-o", funchostBuild.path, "./cmd/funchost").CombinedOutput(); err != nil {
			funchostBuild.err = fmt.Errorf("building funchost: %v\n%s", err, out)
		}
	})
	if funchostBuild.err != nil {
		t.Fatal(funchostBuild.err)
	}
	return funchostBuild.path
}

// functionsHostCommand lays out the Functions package of mode around the
// devicegate binary and returns the stand-in's command serving it on addr.
func functionsHostCommand(t *testing.T, mode, binary, addr string) *exec.Cmd {
	t.Helper()
	app := t.TempDir()
	src := map[string]string{"swa": "../api", "flex": "../api/functionapp"}[mode]
	hostJSON := map[string]string{"swa": "../host.json", "flex": "../api/functionapp/host.json"}[mode]
	if src == "" {
		t.Fatalf("unknown functions host mode %q", mode)
	}
	cp := func(from, to string, perm os.FileMode) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, perm); err != nil {
			t.Fatal(err)
		}
	}
	cp(hostJSON, filepath.Join(app, "host.json"), 0o644)
	cp("../api/launch.sh", filepath.Join(app, "launch.sh"), 0o644)
	cp(binary, filepath.Join(app, "handler"), 0o755)
	functions, _ := filepath.Glob(filepath.Join(src, "*", "function.json"))
	for _, f := range functions {
		cp(f, filepath.Join(app, filepath.Base(filepath.Dir(f)), "function.json"), 0o644)
	}
	if len(functions) == 0 {
		t.Fatalf("no function.json under %s", src)
	}
	return exec.Command(funchostBinary(t), "-mode", mode, "-root", app, "-addr", addr)
}

// chunkedClient sends every request body chunked, without Content-Length,
// as a device client does whose body length Go's client cannot know.
func chunkedClient() *http.Client {
	return &http.Client{Transport: chunkedTransport{http.DefaultTransport}}
}

type chunkedTransport struct{ next http.RoundTripper }

func (c chunkedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.ContentLength != 0 {
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(struct{ io.Reader }{r.Body})
		r.ContentLength = -1
		r.GetBody = nil
	}
	return c.next.RoundTrip(r)
}

// Flex Consumption as the stand-in plays it, alone in front: pages,
// assets, /.well-known and the API on one origin, a whole flow with a real
// browser, the zitadel provider, and golang.org/x/oauth2 as a device whose
// every POST is chunked — which the proxying host passes (docs/DEPLOY.md,
// "Functions host mode").
func TestFlexConsumptionChunkedDeviceClient(t *testing.T) {
	t.Parallel()
	s := newStack(t, map[string]string{functionsHost: "flex"})

	for path, want := range map[string]string{"/": "text/html", "/device": "text/html", "/assets/app.css": "text/css"} {
		res, err := http.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), want) || res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s through the Flex host: %d %q, CSP %q", path, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Security-Policy"))
		}
	}
	res, err := http.Get(s.base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	json.NewDecoder(res.Body).Decode(&meta)
	res.Body.Close()
	if meta["device_authorization_endpoint"] != s.base+"/api/authorize" || meta["token_endpoint"] != s.base+"/api/token" {
		t.Errorf("metadata through the Flex host: %v", meta)
	}

	cfg := oauth2Config(s)
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), oauth2.HTTPClient, chunkedClient()), 90*time.Second)
	defer cancel()
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("chunked device authorization through the Flex host: %v", err)
	}
	s.remember(da.DeviceCode, da.UserCode)
	approveOnPhone(t, da, "flex-phone")
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("chunked token requests through the Flex host: %v", err)
	}
	s.remember(tok.AccessToken, tok.RefreshToken)
	if info := s.userinfo(tok.AccessToken); info["sub"] == nil {
		t.Errorf("userinfo: %v", info)
	}
}

// Static Web Apps' managed functions as the stand-in plays them (request
// forwarding): a chunked POST never reaches devicegate — the host's own
// client refuses to send the rebuilt request and the host answers 500 —
// while a POST whose body arrives empty, its Content-Type dropped, gets
// devicegate's invalid_request naming Content-Length; a POST with
// Content-Length works.
func TestStaticWebAppsHostBodies(t *testing.T) {
	t.Parallel()
	s := newStack(t, map[string]string{functionsHost: "swa"})
	form := url.Values{"client_id": {"tv"}}.Encode()
	post := func(client *http.Client, path string, body io.Reader) (int, map[string]any, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.base+path, body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		if dc, _ := m["device_code"].(string); dc != "" {
			s.remember(dc, fmt.Sprint(m["user_code"]))
		}
		return res.StatusCode, m, string(b)
	}

	status, m, _ := post(http.DefaultClient, "/api/authorize", strings.NewReader(form))
	if status != 200 || m["device_code"] == nil {
		t.Fatalf("POST with Content-Length through the forwarding host: %d %v", status, m["error"])
	}
	poll := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {"tv"}, "device_code": {m["device_code"].(string)}}.Encode()
	if status, m, _ := post(http.DefaultClient, "/api/token", strings.NewReader(poll)); status != 400 || m["error"] != "authorization_pending" {
		t.Errorf("token POST with Content-Length through the forwarding host: %d %v", status, m["error"])
	}
	for path, body := range map[string]string{"/api/authorize": form, "/api/token": poll} {
		if status, _, got := post(chunkedClient(), path, strings.NewReader(body)); status != 500 || got != "" {
			t.Errorf("chunked POST %s through the forwarding host: %d %q, want the host's empty 500", path, status, got)
		}
		status, m, _ := post(http.DefaultClient, path, strings.NewReader(""))
		if d, _ := m["error_description"].(string); status != 400 || m["error"] != "invalid_request" || !strings.Contains(d, "Content-Length") {
			t.Errorf("empty POST %s through the forwarding host: %d %v", path, status, m)
		}
	}
}
