package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// TestKeyFileGuarded: a key file others can read, or a link in its place,
// stops the start with the fix; a new key file is created 0600, never
// through a link.
func TestKeyFileGuarded(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	cfg := &config.Config{Store: "bolt", BoltPath: filepath.Join(dir, "devicegate.db")}
	path := filepath.Join(dir, "devicegate.key")
	if _, err := secretKey(cfg, log); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		os.Chmod(path, mode)
		_, err := secretKey(cfg, log)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	if _, err := secretKey(cfg, log); err != nil {
		t.Errorf("mode 0600: %v", err)
	}

	// A link planted where the key would be created is neither followed
	// to create the key nor read.
	dir2 := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, filepath.Join(dir2, "devicegate.key")); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	cfg2 := &config.Config{Store: "bolt", BoltPath: filepath.Join(dir2, "devicegate.db")}
	if _, err := secretKey(cfg2, log); err == nil || !strings.Contains(err.Error(), "only from a regular file") {
		t.Errorf("dangling link: %v", err)
	}
	if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a key was written through the link")
	}
	os.WriteFile(target, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))), 0o600)
	if _, err := secretKey(cfg2, log); err == nil || !strings.Contains(err.Error(), "only from a regular file") {
		t.Errorf("link to a key: %v", err)
	}
}

// TestCallbackURLs: one provider keeps /api/callback; with several, the
// default keeps it and each other gets its own path, named after it.
func TestCallbackURLs(t *testing.T) {
	spotify := config.Upstream{Preset: "spotify", ClientID: "sp"}
	strava1 := config.Upstream{Preset: "strava", ClientID: "s-1"}
	strava2 := config.Upstream{Preset: "strava", ClientID: "s 2"}
	lab := config.Upstream{Preset: "oidc", Issuer: "https://id.lab.example:8443/realm", ClientID: "lab"}
	gen := config.Upstream{Preset: "generic", AuthURL: "https://auth.example.org/authorize", ClientID: "g"}
	const base = "https://gate.example/api/callback"
	tests := []struct {
		name    string
		clients []config.Client
		want    map[config.Upstream]string
	}{
		{"no clients", nil, map[config.Upstream]string{spotify: base}},
		{"default only", []config.Client{{ID: "tv"}}, map[config.Upstream]string{spotify: base}},
		{"one own upstream, no default client", []config.Client{{ID: "bike", Upstream: &strava1}}, map[config.Upstream]string{strava1: base}},
		{"default and others", []config.Client{{ID: "tv"}, {ID: "bike", Upstream: &strava1}, {ID: "lab", Upstream: &lab}, {ID: "g", Upstream: &gen}},
			map[config.Upstream]string{spotify: base, strava1: base + "/strava", lab: base + "/id.lab.example", gen: base + "/auth.example.org"}},
		{"two apps of one preset", []config.Client{{ID: "a", Upstream: &strava1}, {ID: "b", Upstream: &strava2}},
			map[config.Upstream]string{spotify: base, strava1: base + "/strava-s-1", strava2: base + "/strava-s-2"}},
		{"a client naming the default upstream", []config.Client{{ID: "tv"}, {ID: "radio", Upstream: &spotify}}, map[config.Upstream]string{spotify: base}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{PublicURL: "https://gate.example", Upstream: spotify, Clients: tc.clients}
			got := callbackURLs(cfg)
			for u, want := range tc.want {
				if got[u] != want {
					t.Errorf("%s/%s: %q, want %q", u.Preset, u.ClientID, got[u], want)
				}
			}
		})
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

// TestServeShutsDownGracefully: when the context ends (as on SIGTERM), a
// request in flight still gets its answer, and serve returns cleanly.
func TestServeShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The request stays in flight until the test has seen the shutdown
	// begin: events ordered by channels, not by a sleep.
	started, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, ln, slow, slog.New(slog.NewTextHandler(&logs, nil)), func() {})
	}()
	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
	// Shutdown has begun once the listener is closed: new connections are
	// refused while the request is still in flight. The budget only guards
	// against hanging.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("the listener still accepts a minute after the context ended")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("serve returned (%v) while a request was in flight", err)
	default:
	}
	close(release)
	if body := <-got; body != "finished" {
		t.Errorf("in-flight request got %q", body)
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Error("shutdown not logged")
	}
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
	a, err := build(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), loopbackURL(ln.Addr()))
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

// TestLoggerSplitsByLevel: routine records go to info, warnings and errors
// to errs, with attributes and groups carried to both.
func TestLoggerSplitsByLevel(t *testing.T) {
	var info, errs bytes.Buffer
	l := newLogger(&config.Config{LogLevel: "info", LogFormat: "json"}, &info, &errs).With("instance", "a").WithGroup("g")
	l.Debug("hidden")
	l.Info("routine", "k", 1)
	l.Warn("odd")
	l.Error("broken")
	if got := info.String(); !strings.Contains(got, `"msg":"routine","instance":"a","g":{"k":1}`) || strings.Contains(got, "odd") || strings.Contains(got, "hidden") {
		t.Errorf("info got %q", got)
	}
	if got := errs.String(); !strings.Contains(got, `"msg":"odd"`) || !strings.Contains(got, `"msg":"broken"`) || strings.Contains(got, "routine") {
		t.Errorf("errs got %q", got)
	}
}

// TestListenEnv: -addr wins, then DEVICEGATE_ADDR; PORT (a container
// platform's variable) means every interface, but not under the Functions
// host, whose port variable config reads itself.
func TestListenEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		flag string
		want string
	}{
		{map[string]string{"PORT": "8080"}, "", ":8080"},
		{map[string]string{"PORT": "8080", "DEVICEGATE_ADDR": "127.0.0.1:9"}, "", "127.0.0.1:9"},
		{map[string]string{"PORT": "8080"}, "127.0.0.1:7", "127.0.0.1:7"},
		{map[string]string{"PORT": "8080", "FUNCTIONS_CUSTOMHANDLER_PORT": "7071"}, "", ""},
		{map[string]string{}, "", ""},
	}
	for _, tt := range tests {
		if got := listenEnv(envMap(tt.env), tt.flag)("DEVICEGATE_ADDR"); got != tt.want {
			t.Errorf("%v, -addr %q: DEVICEGATE_ADDR %q, want %q", tt.env, tt.flag, got, tt.want)
		}
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

// TestSecondDemoInOneFolder: the bolt file is locked by the first
// devicegate; the second is told what to do about it.
func TestSecondDemoInOneFolder(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Load(envMap(map[string]string{"DEVICEGATE_BOLT_PATH": filepath.Join(dir, "devicegate.db")}), true)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	first, err := openStore(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = openStore(cfg, logger)
	if err == nil {
		t.Fatal("a second store opened the locked file")
	}
	for _, want := range []string{"locked by another devicegate process", "Stop it", "DEVICEGATE_STORE=memory", "another folder"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
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
