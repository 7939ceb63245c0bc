// Command api is devicegate: an OAuth 2.0 Device Authorization Grant
// (RFC 8628) proxy in front of providers that only offer the authorization
// code flow.
//
// The same binary runs locally (`go run ./api`, one process, bbolt store,
// embedded frontend) and in Azure as a Functions custom handler (it listens
// on FUNCTIONS_CUSTOMHANDLER_PORT when that is set). This file only wires:
// config → store → upstream → core → router → listen.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/demo"
	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/httpapi"
	"github.com/devicegate/devicegate/api/internal/pages"
	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/seal"
	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/bolt"
	"github.com/devicegate/devicegate/api/internal/store/cosmos"
	"github.com/devicegate/devicegate/api/internal/store/memory"
	"github.com/devicegate/devicegate/api/internal/upstream"
	"github.com/devicegate/devicegate/frontend"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Environ(), os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devicegate:", err)
		os.Exit(1)
	}
}

// run is devicegate with its arguments and environment (os.Environ form,
// NAME=value); it returns when ctx ends or a signal stops it.
func run(ctx context.Context, args []string, environ []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "devices" {
		return devices(ctx, args[1:], environ, os.Stdout, stderr)
	}
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	getenv := func(k string) string { return vars[k] }
	flags := flag.NewFlagSet("devicegate", flag.ContinueOnError)
	flags.SetOutput(stderr)
	demoMode := flags.Bool("demo", false, "also run a built-in demo OAuth provider and a device client \"demo\" (and \"devicegate-check\" for the deployment check), to try the whole flow locally")
	addr := flags.String("addr", "", "listen address (overrides DEVICEGATE_ADDR), e.g. 127.0.0.1:8080")
	showVersion := flags.Bool("version", false, "print the version and exit")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: devicegate [-demo] [-addr host:port] [-version]\n       devicegate devices [disconnect ID]\n\nAn OAuth 2.0 Device Authorization Grant proxy. Configured by DEVICEGATE_* environment variables (see README.md).\n\n")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, versionLine("devicegate"))
		return err
	}
	cfg, err := config.Load(listenEnv(getenv, *addr), *demoMode)
	if err != nil {
		return explainConfig(err, environ, getenv, *demoMode)
	}
	// Under the Functions host, routine lines go to stdout (see levelSplit).
	info := stderr
	if getenv("FUNCTIONS_CUSTOMHANDLER_PORT") != "" {
		info = os.Stdout
	}
	logger := newLogger(cfg, info, stderr)
	for _, w := range append(cfg.Warnings, cfg.UnknownVariables(environ)...) {
		logger.Warn(w)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listening on %s: the address is already in use (another devicegate?); choose another with -addr 127.0.0.1:8081 or DEVICEGATE_ADDR", cfg.Addr)
	}
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	app, err := build(cfg, logger, loopbackURL(ln.Addr()))
	if err != nil {
		return err
	}
	defer app.close()
	return serve(ctx, ln, app.handler, logger, func() {
		logger.Info("devicegate is ready", "url", cfg.PublicURL, "listen", ln.Addr().String(), "store", cfg.Store, "upstream", cfg.Upstream.Preset)
		if cfg.Demo {
			fmt.Fprintf(stderr, demoHelp, cfg.PublicURL)
		}
	})
}

// explainConfig adds to a configuration error what a newcomer needs next:
// the variables set under a name no setting reads (the misspelling that
// probably caused a "required" above), and, when nothing names a provider
// app or a device client yet, that -demo runs the whole flow without one.
func explainConfig(err error, environ []string, getenv func(string) string, demo bool) error {
	var le *config.LoadError
	if !errors.As(err, &le) {
		return err
	}
	msg := err.Error()
	if unknown := le.UnknownVariables(environ); len(unknown) > 0 {
		msg += "\nSet but read by no setting (misspelled?):\n" + strings.Join(unknown, "\n")
	}
	if !demo && getenv("DEVICEGATE_CLIENTS") == "" && getenv("DEVICEGATE_CLIENTS_FILE") == "" && getenv("DEVICEGATE_UPSTREAM_CLIENT_ID") == "" {
		msg += "\nTo try devicegate first, without an account at a provider, start it with -demo (go run ./api -demo, or devicegate -demo): " +
			"a built-in demo provider and device client. README.md says how to set it up for real."
	}
	return errors.New(msg)
}

// listenEnv returns getenv with DEVICEGATE_ADDR decided: the -addr flag
// first; else, in a container (PORT set, as Knative-style platforms and
// devicegate's Container Apps template do, and not under the Functions host,
// whose FUNCTIONS_CUSTOMHANDLER_PORT config reads itself), every interface
// on PORT, since the platform's ingress reaches the container from outside.
func listenEnv(getenv func(string) string, addrFlag string) func(string) string {
	addr := addrFlag
	if addr == "" && getenv("DEVICEGATE_ADDR") == "" && getenv("FUNCTIONS_CUSTOMHANDLER_PORT") == "" {
		if port := getenv("PORT"); port != "" {
			addr = ":" + port
		}
	}
	if addr == "" {
		return getenv
	}
	return func(k string) string {
		if k == "DEVICEGATE_ADDR" {
			return addr
		}
		return getenv(k)
	}
}

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

type app struct {
	handler http.Handler
	store   store.Store
}

func (a *app) close() { _ = a.store.Close() }

// loopbackURL is how this process reaches itself: the demo provider's
// token endpoint is called server to server, which must not depend on the
// public URL (behind Static Web Apps that URL serves only /api).
func loopbackURL(a net.Addr) string {
	port := "80"
	if ta, ok := a.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
	}
	return "http://127.0.0.1:" + port
}

// build wires the parts from a validated configuration; self is the
// loopback URL of this process.
func build(cfg *config.Config, logger *slog.Logger, self string) (*app, error) {
	st, err := openStore(cfg, logger)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = st.Close()
		}
	}()

	key, err := secretKey(cfg, logger)
	if err != nil {
		return nil, err
	}
	hasher, err := deviceflow.NewHasher(key)
	if err != nil {
		return nil, err
	}
	var previous []*deviceflow.Hasher
	var previousSeal [][]byte
	if cfg.PreviousKey != nil {
		h, err := deviceflow.NewHasher(cfg.PreviousKey)
		if err != nil {
			return nil, err
		}
		previous = append(previous, h)
		previousSeal = append(previousSeal, seal.DeriveKey(cfg.PreviousKey))
	}
	sealer, err := seal.New(rand.Reader, seal.DeriveKey(key), previousSeal...)
	if err != nil {
		return nil, err
	}
	var demoServer *demo.Server
	if cfg.Upstream.Preset == "demo" {
		clientID, clientSecret := "devicegate-demo", rand.Text()
		demoServer, err = demo.New(demo.Options{
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
	}
	// One provider per distinct upstream: clients that share an app at a
	// provider share its connection pool (and an oidc issuer is discovered
	// once). Each has its own callback (see callbacks).
	callbacks := callbackURLs(cfg)
	built := map[config.Upstream]*upstream.Provider{}
	provider := func(u config.Upstream) (*upstream.Provider, error) {
		if p, ok := built[u]; ok {
			return p, nil
		}
		p, err := newProvider(u, callbacks[u], self, demoServer)
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
	var def httpapi.Upstream
	byClient := map[string]httpapi.Upstream{}
	slowest := cfg.Upstream.Timeout
	for i := range cfg.Clients {
		c := &cfg.Clients[i]
		var p *upstream.Provider
		if c.Upstream == nil {
			if p, err = provider(cfg.Upstream); err != nil {
				return nil, err
			}
			def = p
		} else {
			if p, err = provider(*c.Upstream); err != nil {
				return nil, fmt.Errorf("client %q: %w", c.ID, err)
			}
			byClient[c.ID] = p
			slowest = max(slowest, p.Timeout())
		}
		// The client's own scope descriptions win over its provider's.
		descriptions := p.ScopeDescriptions()
		maps.Copy(descriptions, c.ScopeDescriptions)
		c.ScopeDescriptions = descriptions
	}

	svc, err := deviceflow.New(deviceflow.Config{
		Store: st, Hasher: hasher, Previous: previous, Sealer: sealer, Now: time.Now, Rand: rand.Reader,
		Lifetime: cfg.CodeLifetime, Interval: cfg.PollInterval,
		// A passthrough poll holds the code while it exchanges; the hold
		// must outlast the slowest exchange, or a second poll would spend
		// the code again.
		ExchangeLease:   slowest + 5*time.Second,
		RefreshLifetime: cfg.RefreshLifetime,
	})
	if err != nil {
		return nil, err
	}

	var limiter *ratelimit.Limiter
	if ctr, ok := st.(store.Counter); ok {
		limiter = ratelimit.New(ctr, logger)
	} else {
		logger.Warn("this store keeps no rate-limit counts; rate limits are off")
	}

	renderer, err := pages.New()
	if err != nil {
		return nil, err
	}
	site, err := fs.Sub(frontend.Files, ".")
	if err != nil {
		return nil, err
	}
	api, err := httpapi.New(httpapi.Options{
		Service: svc, Upstream: def, Upstreams: byClient, Pages: renderer,
		Clients: cfg.Client, PublicURL: cfg.PublicURL, Frontend: site,
		Logger: logger, Now: time.Now, Rand: rand.Reader,
		Limiter: limiter, RateAuthorize: cfg.RateAuthorize, RateVerify: cfg.RateVerify,
		RateRefresh: cfg.RateRefresh, RateRefreshClient: cfg.RateRefreshClient, ProxyHops: proxyHops(cfg, logger),
		RateClientAuth: cfg.RateClientAuth, RateClientAuthClient: cfg.RateClientAuthClient,
		RatePollMisses: cfg.RatePollMisses, RateCodeMisses: cfg.RateCodeMisses,
	})
	if err != nil {
		return nil, err
	}
	handler := api
	if demoServer != nil {
		mux := http.NewServeMux()
		mux.Handle("/demo/", http.StripPrefix("/demo", demoServer.Handler()))
		mux.Handle("/", api)
		handler = mux
	}
	ok = true
	return &app{handler: handler, store: st}, nil
}

// callbackURLs gives each distinct upstream of cfg its own redirect URI,
// so that the callback knows which provider an answer came from (mix-up
// defence, RFC 9700 §4.4.2). The default upstream — and any upstream of a
// deployment that has only one — keeps <public URL>/api/callback, so apps
// registered before keep working; every other one gets
// /api/callback/<name>, its preset name (or, for generic and oidc, its
// host), with its client id added where two would share a name.
func callbackURLs(cfg *config.Config) map[config.Upstream]string {
	var others []config.Upstream
	hasDefault := len(cfg.Clients) == 0
	for _, c := range cfg.Clients {
		switch {
		case c.Upstream == nil:
			hasDefault = true
		case !slices.Contains(others, *c.Upstream) && *c.Upstream != cfg.Upstream:
			others = append(others, *c.Upstream)
		}
	}
	base := cfg.PublicURL + "/api/callback"
	out := map[config.Upstream]string{cfg.Upstream: base}
	if !hasDefault && len(others) == 1 {
		out[others[0]] = base
		return out
	}
	names := map[string]int{}
	for _, u := range others {
		names[callbackName(u)]++
	}
	for _, u := range others {
		name := callbackName(u)
		if names[name] > 1 {
			name += "-" + slug(u.ClientID)
		}
		out[u] = base + "/" + name
	}
	return out
}

// callbackName is an upstream's part of its callback path.
func callbackName(u config.Upstream) string {
	switch u.Preset {
	case "generic":
		return slug(upstream.HostOf(u.AuthURL))
	case "oidc":
		return slug(upstream.HostOf(u.Issuer))
	}
	return slug(u.Preset)
}

// slug keeps letters, digits, dots and hyphens, so a name is one clean
// path segment.
func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// proxyHops is how many X-Forwarded-For entries are trusted, said once in
// the log so a wrong setting is visible (the deployment check verifies it
// from outside).
func proxyHops(cfg *config.Config, logger *slog.Logger) int {
	if !cfg.TrustedProxy {
		logger.Info("client addresses come from the connection; X-Forwarded-For is ignored (DEVICEGATE_TRUSTED_PROXY=false)")
		return 0
	}
	logger.Info("client addresses come from X-Forwarded-For, counted from the right", "trusted_hops", cfg.ProxyHops)
	return cfg.ProxyHops
}

// newProvider builds the provider of one configured upstream. An oidc
// issuer is asked for its endpoints now, so a wrong issuer stops the start
// with a clear message instead of failing the first sign-in.
func newProvider(u config.Upstream, callback, self string, demoServer *demo.Server) (*upstream.Provider, error) {
	var preset upstream.Preset
	switch u.Preset {
	case "demo":
		preset = demoServer.Preset()
		// The token endpoint is called server to server, over loopback.
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

func openStore(cfg *config.Config, logger *slog.Logger) (store.Store, error) {
	switch cfg.Store {
	case "cosmos":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return cosmos.New(ctx, cosmos.Options{
			ConnectionString: cfg.Cosmos.ConnectionString, Endpoint: cfg.Cosmos.Endpoint, Key: cfg.Cosmos.Key,
			Database: cfg.Cosmos.Database, Container: cfg.Cosmos.Container, CreateIfMissing: cfg.Cosmos.CreateIfMissing,
			Now: time.Now, Logger: logger,
		})
	case "memory":
		return memory.New(time.Now), nil
	case "bolt":
		st, err := bolt.Open(cfg.BoltPath, bolt.Options{Now: time.Now, Logger: logger})
		if errors.Is(err, bolt.ErrLocked) {
			return nil, fmt.Errorf("%w\nAnother devicegate is running from this folder (on another port, or in another terminal). Stop it, "+
				"or run this one with DEVICEGATE_STORE=memory (nothing kept across restarts), or start it from another folder "+
				"(or point DEVICEGATE_BOLT_PATH at another file)", err)
		}
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	return nil, fmt.Errorf("unknown store %q", cfg.Store)
}

// secretKey returns the configured key or, for local use, one kept in
// devicegate.key next to the bolt file (created 0600 on first start), so
// codes survive a restart. The memory store gets a fresh key per process:
// its records do not survive a restart either.
//
// The key unseals every token in the database file, so the file is held
// to what an SSH private key is: it must be a regular file (no link is
// followed, so nobody can point it elsewhere) that only its owner can
// read; otherwise devicegate refuses to start and says how to fix it.
func secretKey(cfg *config.Config, logger *slog.Logger) ([]byte, error) {
	if cfg.SecretKey != nil {
		return cfg.SecretKey, nil
	}
	if cfg.Store == "memory" {
		return randomKey()
	}
	path := filepath.Join(filepath.Dir(cfg.BoltPath), "devicegate.key")
	key, err := readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if key, err = randomKey(); err != nil {
		return nil, err
	}
	// O_EXCL: if another process created the file meanwhile, this fails
	// rather than overwrite its key; O_NOFOLLOW: a link planted at the path
	// is not followed.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("writing a new secret key: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing a new secret key: %w", err)
	}
	logger.Info("generated a secret key for local use; keep it out of backups of the database file", "file", path)
	return key, nil
}

// readKeyFile reads the local key file, refusing a link, anything but a
// regular file, and a file group or others can read.
func readKeyFile(path string) ([]byte, error) {
	if fi, err := os.Lstat(path); err != nil {
		return nil, err
	} else if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s is a symbolic link; devicegate reads its key only from a regular file (replace the link with the file)", path)
	}
	// O_NOFOLLOW too, for a link swapped in after the check.
	keyFileChecked(path)
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%s can be read by other users (mode %04o): it unseals every token in the database; run: chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(string(trimNL(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s does not hold a base64 32-byte key; delete it to make a new one", path)
	}
	return key, nil
}

// keyFileChecked runs between readKeyFile's check of the path and its
// opening; a test swaps a link in there, as an attacker racing the check
// would.
var keyFileChecked = func(string) {}

func randomKey() ([]byte, error) {
	key := make([]byte, 32)
	_, err := io.ReadFull(rand.Reader, key)
	return key, err
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// newLogger writes records below Warn to info and the others to errs.
func newLogger(cfg *config.Config, info, errs io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	handler := func(w io.Writer) slog.Handler {
		if cfg.LogFormat == "json" {
			return slog.NewJSONHandler(w, opts)
		}
		return slog.NewTextHandler(w, opts)
	}
	if info == errs {
		return slog.New(handler(errs))
	}
	return slog.New(levelSplit{low: handler(info), high: handler(errs)})
}

// newServer is the HTTP server serve runs: its timeouts keep slow clients
// from holding connections (a header must arrive within 5 s, a whole
// request within 15 s), and headers are capped at 32 KiB.
func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      40 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// serve runs the HTTP server until ctx ends or SIGINT/SIGTERM arrives, then
// lets requests in flight finish. The timeouts keep slow clients from
// holding connections: Azure cuts requests at 45 s anyway.
func serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger, ready func()) error {
	srv := newServer(h, logger)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ready()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down; letting requests in flight finish")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
