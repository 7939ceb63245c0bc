// Command api is devicegate: an OAuth 2.0 Device Authorization Grant
// (RFC 8628) proxy in front of providers that only offer the authorization
// code flow.
//
// The same binary runs locally (`go run ./api`, one process, bbolt store,
// embedded frontend) and in Azure as a Functions custom handler (it listens
// on FUNCTIONS_CUSTOMHANDLER_PORT when that is set). This file only wires:
// config → store → keys → upstream → core → router → listen; each part
// lives in the package named where it is used.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/httpapi"
	"github.com/devicegate/devicegate/api/internal/pages"
	"github.com/devicegate/devicegate/api/internal/providers"
	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/seal"
	"github.com/devicegate/devicegate/api/internal/serve"
	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/backend"
	"github.com/devicegate/devicegate/frontend"
	"github.com/devicegate/devicegate/internal/version"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Environ(), os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devicegate:", err)
		os.Exit(1)
	}
}

// stdout is where -version prints (a variable so a test can read it).
var stdout io.Writer = os.Stdout

// run is devicegate with its arguments and environment (os.Environ form,
// NAME=value); it returns when ctx ends or a signal stops it.
func run(ctx context.Context, args []string, environ []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "devices" {
		return devices(ctx, args[1:], environ, os.Stdout, stderr)
	}
	getenv := config.Getenv(environ)
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
		_, err := fmt.Fprintln(stdout, version.Line("devicegate"))
		return err
	}
	cfg, err := config.Load(config.ListenEnv(getenv, *addr), *demoMode)
	if err != nil {
		return config.Explain(err, environ, *demoMode)
	}
	// Under the Functions host, routine lines go to stdout and only
	// problems to stderr, which the host logs as errors (package serve).
	info := stderr
	if getenv("FUNCTIONS_CUSTOMHANDLER_PORT") != "" {
		info = os.Stdout
	}
	logger := serve.Logger(cfg.LogLevel, cfg.LogFormat, info, stderr)
	for _, w := range append(cfg.Warnings, cfg.UnknownVariables(environ)...) {
		logger.Warn(w)
	}

	ln, err := serve.Listen(cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	app, err := build(cfg, logger, serve.LoopbackURL(ln.Addr()))
	if err != nil {
		return err
	}
	defer app.close()
	return serve.Run(ctx, ln, app.handler, logger, func() {
		logger.Info("devicegate is ready", "url", cfg.PublicURL, "listen", ln.Addr().String(), "store", cfg.Store, "upstream", cfg.Upstream.Preset)
		if cfg.Demo {
			fmt.Fprint(stderr, providers.DemoHelp(cfg.PublicURL))
		}
	})
}

type app struct {
	handler http.Handler
	store   store.Store
}

func (a *app) close() { _ = a.store.Close() }

// build wires the parts from a validated configuration; self is the
// loopback URL of this process.
func build(cfg *config.Config, logger *slog.Logger, self string) (_ *app, err error) {
	st, err := backend.Open(cfg, logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = st.Close()
		}
	}()
	key, err := secretKey(cfg, logger)
	if err != nil {
		return nil, err
	}
	demoServer, err := providers.Demo(cfg)
	if err != nil {
		return nil, err
	}
	ups, err := providers.Build(cfg, self, demoServer, logger)
	if err != nil {
		return nil, err
	}
	// A passthrough poll holds the code while it exchanges; the hold must
	// outlast the slowest exchange, or a second poll would spend the code
	// again.
	svc, err := service(cfg, st, key, ups.Slowest+5*time.Second)
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
	var def httpapi.Upstream // nil unless some client uses the default
	if ups.Default != nil {
		def = ups.Default
	}
	byClient := map[string]httpapi.Upstream{}
	for id, p := range ups.ByClient {
		byClient[id] = p
	}
	api, err := httpapi.New(httpapi.Options{
		Service: svc, Upstream: def, Upstreams: byClient, Pages: renderer,
		Clients: cfg.Client, PublicURL: cfg.PublicURL, Frontend: frontend.Files,
		Logger: logger, Now: time.Now, Rand: rand.Reader,
		Limiter: limiter, RateAuthorize: cfg.RateAuthorize, RateVerify: cfg.RateVerify,
		RateRefresh: cfg.RateRefresh, RateRefreshClient: cfg.RateRefreshClient, ProxyHops: proxyHops(cfg, logger),
		RateClientAuth: cfg.RateClientAuth, RateClientAuthClient: cfg.RateClientAuthClient,
		RatePollMisses: cfg.RatePollMisses, RateCodeMisses: cfg.RateCodeMisses,
	})
	if err != nil {
		return nil, err
	}
	if demoServer == nil {
		return &app{handler: api, store: st}, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/demo/", http.StripPrefix("/demo", demoServer.Handler()))
	mux.Handle("/", api)
	return &app{handler: mux, store: st}, nil
}

// service is the protocol core over st, keyed with key (and the previous
// key, while keys rotate); lease is its ExchangeLease (zero: the default).
// The server and "devicegate devices" share it.
func service(cfg *config.Config, st store.Store, key []byte, lease time.Duration) (*deviceflow.Service, error) {
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
	return deviceflow.New(deviceflow.Config{
		Store: st, Hasher: hasher, Previous: previous, Sealer: sealer, Now: time.Now, Rand: rand.Reader,
		Lifetime: cfg.CodeLifetime, Interval: cfg.PollInterval, ExchangeLease: lease, RefreshLifetime: cfg.RefreshLifetime,
	})
}

// secretKey returns the configured key or, for local use, the one kept in
// devicegate.key next to the bolt file (created 0600 on first start; see
// seal.KeyFile for how the file is guarded), so codes survive a restart.
// The memory store gets a fresh key per process: its records do not
// survive a restart either.
func secretKey(cfg *config.Config, logger *slog.Logger) ([]byte, error) {
	if cfg.SecretKey != nil {
		return cfg.SecretKey, nil
	}
	if cfg.Store == "memory" {
		return seal.NewKey(rand.Reader)
	}
	path := filepath.Join(filepath.Dir(cfg.BoltPath), "devicegate.key")
	key, created, err := seal.KeyFile(path, rand.Reader)
	if created {
		logger.Info("generated a secret key for local use; keep it out of backups of the database file", "file", path)
	}
	return key, err
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
