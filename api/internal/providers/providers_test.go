package providers

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/config"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestNew: each kind of upstream becomes its provider — a preset by name,
// generic from its settings, the demo over loopback — and an unknown
// preset, or the demo without its server, stops the start.
func TestNew(t *testing.T) {
	p, err := New(config.Upstream{Preset: "spotify", ClientID: "sp"}, "https://gate.example/api/callback", "", nil)
	if err != nil || p.DisplayName() != "Spotify" || p.RedirectURL() != "https://gate.example/api/callback" {
		t.Fatalf("spotify: %v", err)
	}
	g, err := New(config.Upstream{Preset: "generic", Name: "Lab", AuthURL: "https://auth.example.org/authorize", TokenURL: "https://auth.example.org/token", ClientID: "g"},
		"https://gate.example/api/callback/auth.example.org", "", nil)
	if err != nil || g.DisplayName() != "Lab" || g.Identity() != "https://auth.example.org/token g" ||
		!strings.HasPrefix(g.AuthCodeURL("s", "v", nil), "https://auth.example.org/authorize?") {
		t.Fatalf("generic: %v", err)
	}
	if _, err := New(config.Upstream{Preset: "floppy"}, "https://gate.example/api/callback", "", nil); err == nil || !strings.Contains(err.Error(), `"floppy"`) {
		t.Errorf("unknown preset: %v", err)
	}
	if _, err := New(config.Upstream{Preset: "demo"}, "https://gate.example/api/callback", "", nil); err == nil {
		t.Error("the demo preset without its server was accepted")
	}

	cfg := &config.Config{PublicURL: "https://gate.example", Upstream: config.Upstream{Preset: "demo"}}
	d, err := Demo(cfg)
	if err != nil || d == nil {
		t.Fatal(err)
	}
	p, err = New(cfg.Upstream, "https://gate.example/api/callback", "http://127.0.0.1:8080", d)
	if err != nil || !strings.HasPrefix(p.Identity(), "http://127.0.0.1:8080/demo/token ") ||
		!strings.HasPrefix(p.AuthCodeURL("s", "v", nil), "https://gate.example/demo/authorize?") {
		t.Errorf("demo: %v", err)
	}
}

// TestDemo: -demo gets the demo provider's credentials and, with no
// clients configured, the demo device and the deployment check's client;
// configured clients are kept; any other upstream gets no demo server.
func TestDemo(t *testing.T) {
	cfg := &config.Config{PublicURL: "https://gate.example", Upstream: config.Upstream{Preset: "demo"}}
	if _, err := Demo(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream.ClientID == "" || cfg.Upstream.ClientSecret == "" || len(cfg.Clients) != 2 ||
		cfg.Clients[0].ID != "demo" || cfg.Clients[1].ID != "devicegate-check" {
		t.Errorf("demo configuration: %+v", cfg)
	}
	own := &config.Config{PublicURL: "https://gate.example", Upstream: config.Upstream{Preset: "demo"}, Clients: []config.Client{{ID: "tv"}}}
	if _, err := Demo(own); err != nil || len(own.Clients) != 1 {
		t.Errorf("configured clients replaced: %v %+v", err, own.Clients)
	}
	if d, err := Demo(&config.Config{Upstream: config.Upstream{Preset: "spotify"}}); d != nil || err != nil {
		t.Errorf("spotify: demo server %v, %v", d, err)
	}
}

// TestBuild: clients sharing an upstream share one provider; a client with
// its own gets its own, under its id; the slowest timeout is kept; scope
// descriptions come from the provider unless the client words them.
func TestBuild(t *testing.T) {
	strava := config.Upstream{Preset: "strava", ClientID: "s-1", Timeout: 40 * time.Second}
	cfg := &config.Config{
		PublicURL: "https://gate.example",
		Upstream:  config.Upstream{Preset: "spotify", ClientID: "sp", Timeout: 10 * time.Second},
		Clients: []config.Client{
			{ID: "tv", ScopeDescriptions: map[string]string{"user-top-read": "Show your favourites"}},
			{ID: "radio"},
			{ID: "bike", Upstream: &strava},
		},
	}
	set, err := Build(cfg, "http://127.0.0.1:1", nil, discard)
	if err != nil {
		t.Fatal(err)
	}
	if set.Default == nil || set.Default.DisplayName() != "Spotify" || len(set.ByClient) != 1 || set.ByClient["bike"].DisplayName() != "Strava" {
		t.Fatalf("providers: %+v", set)
	}
	if set.ByClient["bike"].RedirectURL() != "https://gate.example/api/callback/strava" || set.Default.RedirectURL() != "https://gate.example/api/callback" {
		t.Errorf("callbacks: %s, %s", set.Default.RedirectURL(), set.ByClient["bike"].RedirectURL())
	}
	if set.Slowest != 40*time.Second {
		t.Errorf("slowest %v", set.Slowest)
	}
	if got := cfg.Clients[0].ScopeDescriptions["user-top-read"]; got != "Show your favourites" {
		t.Errorf("the client's own description lost: %q", got)
	}
	if cfg.Clients[1].ScopeDescriptions["user-top-read"] == "" || cfg.Clients[1].ScopeDescriptions["user-top-read"] == "Show your favourites" {
		t.Errorf("radio's description: %q", cfg.Clients[1].ScopeDescriptions["user-top-read"])
	}

	only := &config.Config{PublicURL: "https://gate.example", Upstream: config.Upstream{Preset: "spotify"}, Clients: []config.Client{{ID: "bike", Upstream: &strava}}}
	if set, err := Build(only, "", nil, discard); err != nil || set.Default != nil {
		t.Errorf("every client with its own upstream: default %v, %v", set.Default, err)
	}
	bad := config.Upstream{Preset: "floppy"}
	only.Clients = []config.Client{{ID: "lab", Upstream: &bad}}
	if _, err := Build(only, "", nil, discard); err == nil || !strings.Contains(err.Error(), `client "lab"`) {
		t.Errorf("an unknown preset of a client: %v", err)
	}
}
