// Package providers builds the upstream providers a configuration names:
// one *upstream.Provider per distinct upstream, each with its own callback
// (config.CallbackURLs), and the built-in demo provider of -demo. It sits
// between config and upstream, which must not know each other's types
// (config imports upstream); it serves no requests itself.
package providers

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/demo"
	"github.com/devicegate/devicegate/api/internal/upstream"
)

// Set is the providers of a configuration.
type Set struct {
	// Default serves every client without an upstream of its own; nil when
	// every client has one.
	Default *upstream.Provider
	// ByClient holds, by client_id, the providers of clients with their own.
	ByClient map[string]*upstream.Provider
	// Slowest is the longest exchange timeout among them.
	Slowest time.Duration
}

// Demo starts the built-in demo provider when cfg's upstream is "demo"
// (-demo), and points cfg at it: its client credentials, and, when no
// clients are configured, the device client "demo" and "devicegate-check".
// It returns nil for any other upstream.
func Demo(cfg *config.Config) (*demo.Server, error) {
	if cfg.Upstream.Preset != "demo" {
		return nil, nil
	}
	clientID, clientSecret := "devicegate-demo", rand.Text()
	s, err := demo.New(demo.Options{
		BaseURL: cfg.PublicURL + "/demo", ClientID: clientID, ClientSecret: clientSecret, RedirectURI: cfg.PublicURL + "/api/callback",
	})
	if err != nil {
		return nil, err
	}
	cfg.Upstream.ClientID, cfg.Upstream.ClientSecret = clientID, clientSecret
	if len(cfg.Clients) == 0 {
		// demo is the device; devicegate-check is the client the
		// deployment check uses by default (docs/DEPLOY.md has every
		// deployment add it), so the check passes against -demo as is.
		cfg.Clients = []config.Client{
			{ID: "demo", Name: "Demo device", DefaultScopes: []string{"profile"}},
			{ID: "devicegate-check", Name: "Deployment check", DefaultScopes: []string{"profile"}},
		}
	}
	return s, nil
}

// DemoHelp is what -demo prints once devicegate is ready at publicURL:
// how to walk through the flow with curl or devicegate-login.
func DemoHelp(publicURL string) string { return fmt.Sprintf(demoHelp, publicURL) }

const demoHelp = `
  Demo mode: a built-in demo provider stands in for Spotify.
  1. A device asks for a code:
       curl -s -d client_id=demo %[1]s/api/authorize
  2. Open verification_uri_complete from the answer in a browser, confirm, and sign in at the demo provider.
  3. The device polls until it gets its tokens:
       curl -s -d client_id=demo -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d device_code=DEVICE_CODE %[1]s/api/token
  Or let the bundled client play the device (code, QR code, polling) in one step:
       go run ./cmd/devicegate-login -client-id demo %[1]s

`

// Build builds the providers of cfg's clients; self is the loopback URL of
// this process, demoServer the provider Demo started (or nil). One provider
// serves each distinct upstream: clients that share an app at a provider
// share its connection pool (and an oidc issuer is discovered once). Each
// client's scope descriptions are completed from its provider's (the
// client's own words win), in cfg. Each provider's start-up line says what
// to enter in the app's settings there.
func Build(cfg *config.Config, self string, demoServer *demo.Server, logger *slog.Logger) (*Set, error) {
	callbacks := cfg.CallbackURLs()
	built := map[config.Upstream]*upstream.Provider{}
	provider := func(u config.Upstream) (*upstream.Provider, error) {
		if p, ok := built[u]; ok {
			return p, nil
		}
		p, err := New(u, callbacks[u], self, demoServer)
		if err != nil {
			return nil, err
		}
		built[u] = p
		// What to enter at the provider, in its own words: most take the
		// whole redirect URI, Strava a callback domain (preset data).
		setting, key, value := p.Registration()
		logger.Info("provider ready; enter this in your app's settings there", "provider", p.DisplayName(), "setting", setting, key, value)
		return p, nil
	}
	set := &Set{ByClient: map[string]*upstream.Provider{}, Slowest: cfg.Upstream.Timeout}
	for i := range cfg.Clients {
		c := &cfg.Clients[i]
		var p *upstream.Provider
		var err error
		if c.Upstream == nil {
			if p, err = provider(cfg.Upstream); err != nil {
				return nil, err
			}
			set.Default = p
		} else {
			if p, err = provider(*c.Upstream); err != nil {
				return nil, fmt.Errorf("client %q: %w", c.ID, err)
			}
			set.ByClient[c.ID] = p
			set.Slowest = max(set.Slowest, p.Timeout())
		}
		descriptions := p.ScopeDescriptions()
		maps.Copy(descriptions, c.ScopeDescriptions)
		c.ScopeDescriptions = descriptions
	}
	return set, nil
}

// New builds the provider of one configured upstream, whose redirect URI
// is callback. An oidc issuer is asked for its endpoints now, so a wrong
// issuer stops the start with a clear message instead of failing the first
// sign-in. The demo provider's token and account endpoints are called
// server to server, over self (loopback), not over the public URL.
func New(u config.Upstream, callback, self string, demoServer *demo.Server) (*upstream.Provider, error) {
	var preset upstream.Preset
	switch u.Preset {
	case "demo":
		if demoServer == nil {
			return nil, fmt.Errorf("upstream preset %q without a demo server", u.Preset)
		}
		preset = demoServer.Preset()
		preset.TokenURL = self + "/demo/token"
		preset.AccountURL = self + "/demo/userinfo"
	case "oidc":
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		var err error
		preset, err = upstream.Discover(ctx, u.Issuer, nil)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("oidc issuer %s: %w", u.Issuer, err)
		}
		if u.Name != "" {
			preset.DisplayName = u.Name
		}
	case "generic":
		preset, _ = upstream.Lookup("generic")
		preset.DisplayName, preset.AuthURL, preset.TokenURL, preset.PKCE = u.Name, u.AuthURL, u.TokenURL, u.PKCE
		preset.AccountURL, preset.AccountField, preset.AccountScopes = u.AccountURL, u.AccountField, strings.Fields(u.AccountScopes)
	default:
		var found bool
		if preset, found = upstream.Lookup(u.Preset); !found {
			return nil, fmt.Errorf("unknown upstream preset %q", u.Preset)
		}
	}
	return upstream.New(upstream.Options{
		Preset: preset, ClientID: u.ClientID, ClientSecret: u.ClientSecret,
		RedirectURL: callback, Timeout: u.Timeout,
	})
}
