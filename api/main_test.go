package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/serve"
)

func envMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunReportsEveryConfigProblem(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), nil, []string{"DEVICEGATE_STORE=floppy"}, &out)
	if err == nil {
		t.Fatal("run accepted a bad configuration")
	}
	for _, want := range []string{"DEVICEGATE_UPSTREAM_CLIENT_ID", "DEVICEGATE_UPSTREAM_CLIENT_SECRET", "DEVICEGATE_CLIENTS", "DEVICEGATE_STORE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
}

func TestRunHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-help"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "-demo") || !strings.Contains(out.String(), "DEVICEGATE_") {
		t.Errorf("help: %s", out.String())
	}
}

func TestSecretKeyIsGeneratedOnceWithMode0600(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{Store: "bolt", BoltPath: filepath.Join(dir, "devicegate.db")}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	k1, err := secretKey(cfg, log)
	if err != nil || len(k1) != 32 {
		t.Fatalf("%v %d", err, len(k1))
	}
	fi, err := os.Stat(filepath.Join(dir, "devicegate.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	k2, _ := secretKey(cfg, log)
	if !bytes.Equal(k1, k2) {
		t.Error("the key changed across starts")
	}
	os.WriteFile(filepath.Join(dir, "devicegate.key"), []byte("garbage"), 0o600)
	if _, err := secretKey(cfg, log); err == nil {
		t.Error("a damaged key file was accepted")
	}
	cfg.SecretKey = bytes.Repeat([]byte{1}, 32)
	if k, _ := secretKey(cfg, log); !bytes.Equal(k, cfg.SecretKey) {
		t.Error("the configured key was not used")
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoWiring runs the real wiring (-demo, memory store) on a free
// port and walks the device side to authorization_pending.
// serveApp builds the app from cfg, serves it on a loopback port until the
// test ends, and returns its base URL.
func serveApp(t *testing.T, cfg *config.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
	t.Cleanup(func() { srv.Close(); a.close() })
	return "http://" + ln.Addr().String()
}

func TestDemoWiring(t *testing.T) {
	cfg, err := config.Load(envMap(map[string]string{"DEVICEGATE_STORE": "memory"}), true)
	if err != nil {
		t.Fatal(err)
	}
	base := serveApp(t, cfg)
	for path, want := range map[string]int{"/api/health": 200, "/device": 200, "/demo/demo.css": 200, "/.well-known/oauth-authorization-server": 200} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s: %d", path, res.StatusCode)
		}
	}
	// demo is the device; devicegate-check is the deployment check's
	// default client, so the check passes against -demo as it is.
	for _, client := range []string{"demo", "devicegate-check"} {
		res, err := http.PostForm(base+"/api/authorize", map[string][]string{"client_id": {client}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("authorize %s: %d", client, res.StatusCode)
		}
	}
}

// TestProvidersPerClient: a clients list naming several providers builds
// one provider each, discovers an oidc issuer at start, and sends each
// client's person to its own provider.
func TestProvidersPerClient(t *testing.T) {
	op := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"code_challenge_methods_supported":["S256"]}`,
			"http://"+r.Host, "http://"+r.Host+"/authorize", "http://"+r.Host+"/token")
	}))
	defer op.Close()
	clients := `[
	  {"client_id":"tv","name":"TV","default_scopes":["user-read-currently-playing","user-top-read","x-custom"],
	   "scope_descriptions":{"user-top-read":"Show your favourites on the TV"}},
	  {"client_id":"kiosk","name":"Kiosk","mode":"passthrough"},
	  {"client_id":"bike","name":"Bike","default_scopes":["activity:read"],"upstream":{"preset":"strava","client_id":"s-1","client_secret_env":"STRAVA_SECRET"}},
	  {"client_id":"lab","name":"Lab","default_scopes":["openid"],"upstream":{"preset":"oidc","issuer":"` + op.URL + `","name":"Lab ID","client_id":"lab-1","client_secret_env":"LAB_SECRET"}}
	]`
	env := map[string]string{
		"DEVICEGATE_STORE": "memory", "DEVICEGATE_CLIENTS": clients,
		"DEVICEGATE_UPSTREAM_CLIENT_ID": "sp-1", "DEVICEGATE_UPSTREAM_CLIENT_SECRET": "sp-secret",
		"STRAVA_SECRET": "st-secret", "LAB_SECRET": "lab-secret",
	}
	cfg, err := config.Load(envMap(env), false)
	if err != nil {
		t.Fatal(err)
	}
	base := serveApp(t, cfg)

	// Each confirmation names the client's provider and describes its
	// scopes: the client's own words first, then the preset's, else the
	// identifier alone.
	for _, tc := range []struct {
		client, provider string
		want, not        []string
	}{
		{"tv", "Spotify", []string{
			`<li class="described">See the track playing right now <code>user-read-currently-playing</code></li>`,
			`<li class="described">Show your favourites on the TV <code>user-top-read</code></li>`,
			`<li><code>x-custom</code></li>`}, []string{"See your top artists and tracks"}},
		{"kiosk", "Spotify", nil, nil},
		{"bike", "Strava", []string{`See your activities shown to everyone and to followers <code>activity:read</code>`}, nil},
		{"lab", "Lab ID", []string{`Confirm who you are <code>openid</code>`}, nil},
	} {
		client, provider := tc.client, tc.provider
		res, err := http.PostForm(base+"/api/authorize", url.Values{"client_id": {client}})
		if err != nil {
			t.Fatal(err)
		}
		var g struct {
			URI string `json:"verification_uri_complete"`
		}
		json.NewDecoder(res.Body).Decode(&g)
		res.Body.Close()
		u, _ := url.Parse(g.URI)
		res, err = http.Get(base + "/api/verify?" + u.RawQuery)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(page), provider) {
			t.Errorf("%s: confirmation %d does not name %s", client, res.StatusCode, provider)
		}
		for _, want := range tc.want {
			if !strings.Contains(string(page), want) {
				t.Errorf("%s: confirmation lacks %s", client, want)
			}
		}
		for _, not := range tc.not {
			if strings.Contains(string(page), not) {
				t.Errorf("%s: confirmation still says %q", client, not)
			}
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, origin := range []string{"https://accounts.spotify.com", "https://www.strava.com", op.URL} {
			if !strings.Contains(csp, origin) {
				t.Errorf("form-action lacks %s: %s", origin, csp)
			}
		}
	}

	// An issuer that does not answer stops the start, naming the issuer.
	op.Close()
	cfg, _ = config.Load(envMap(env), false)
	if _, err := build(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), `client "lab"`) || !strings.Contains(err.Error(), op.URL) {
		t.Errorf("unreachable issuer: %v", err)
	}
}

// TestRunStartMessages: the start names misspelled variables with the
// real name, and a port in use suggests how to pick another.
func TestRunStartMessages(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var out syncBuffer
	err = run(context.Background(), []string{"-demo"}, []string{
		"DEVICEGATE_STORE=memory", "DEVICEGATE_ADDR=" + busy.Addr().String(), "DEVICEGATE_UPSTREAM_CLIENTID=abc",
	}, &out)
	if err == nil || !strings.Contains(err.Error(), "the address is already in use") || !strings.Contains(err.Error(), "-addr 127.0.0.1:8081 or DEVICEGATE_ADDR") {
		t.Errorf("port in use: %v", err)
	}
	if !strings.Contains(out.String(), `level=WARN msg="DEVICEGATE_UPSTREAM_CLIENTID: no such setting; ignored (did you mean DEVICEGATE_UPSTREAM_CLIENT_ID?)"`) {
		t.Errorf("no warning for the misspelled name:\n%s", out.String())
	}

	// The same start on a free port serves, and stops with its context.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out2 syncBuffer
	go func() {
		done <- run(ctx, []string{"-demo", "-addr", "127.0.0.1:0"}, []string{"DEVICEGATE_STORE=memory"}, &out2)
	}()
	deadline := time.Now().Add(time.Minute) // against hanging only: a loaded machine starts slowly
	for !strings.Contains(out2.String(), "devicegate is ready") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil || strings.Contains(out2.String(), "level=WARN") || !strings.Contains(out2.String(), "devicegate is ready") {
		t.Errorf("free port: %v\n%s", err, out2.String())
	}
}

// TestConfigErrorsNameMisspellingsAndDemo: a newcomer's first start. The
// misspelled variable is named next to the "required" it causes, not only
// when the start succeeds; with nothing configured at all, -demo is
// suggested; once a provider app is configured, it is not.
func TestConfigErrorsNameMisspellingsAndDemo(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), nil, []string{"DEVICEGATE_CLEINTS=[]", "HOME=/nowhere"}, &out)
	if err == nil {
		t.Fatal("run accepted a configuration without clients")
	}
	msg := err.Error()
	for _, want := range []string{
		"DEVICEGATE_CLIENTS: required",
		"DEVICEGATE_CLEINTS: no such setting; ignored (did you mean DEVICEGATE_CLIENTS?)",
		"start it with -demo (go run ./api -demo",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q:\n%s", want, msg)
		}
	}
	err = run(context.Background(), nil, []string{"DEVICEGATE_UPSTREAM_CLIENT_ID=abc", "DEVICEGATE_STORE=floppy"}, &out)
	if err == nil || strings.Contains(err.Error(), "-demo") || strings.Contains(err.Error(), "misspelled") {
		t.Errorf("a configured provider app: %v", err)
	}
}

// TestStartLineSaysWhatEachProviderAsks: the start-up line for each
// provider says what to enter at it, in its words: the redirect URI for
// Spotify, the callback domain for Strava.
func TestStartLineSaysWhatEachProviderAsks(t *testing.T) {
	env := map[string]string{
		"DEVICEGATE_STORE": "memory", "DEVICEGATE_PUBLIC_URL": "http://127.0.0.1:8080",
		"DEVICEGATE_CLIENTS": `[{"client_id":"tv","name":"TV"},
		  {"client_id":"bike","name":"Bike","upstream":{"preset":"strava","client_id":"s-1","client_secret_env":"STRAVA_SECRET"}}]`,
		"DEVICEGATE_UPSTREAM_CLIENT_ID": "sp-1", "DEVICEGATE_UPSTREAM_CLIENT_SECRET": "sp-secret", "STRAVA_SECRET": "st-secret",
	}
	cfg, err := config.Load(envMap(env), false)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	a, err := build(cfg, slog.New(slog.NewTextHandler(&logs, nil)), "http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	for _, want := range []string{
		`msg="provider ready; enter this in your app's settings there" provider=Spotify setting="Redirect URIs" redirect_uri=http://127.0.0.1:8080/api/callback`,
		`msg="provider ready; enter this in your app's settings there" provider=Strava setting="Authorization Callback Domain" callback_domain=127.0.0.1`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("start-up lines lack %s:\n%s", want, logs.String())
		}
	}
}
