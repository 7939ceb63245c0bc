// Package config turns the environment into a validated Config.
//
// Load reads every variable, checks all of them and reports every problem at
// once, each with the variable's name (and, in the clients file, the line),
// so a person fixing a deployment sees the whole list in one go. It reads
// the clients file but writes nothing and dials nothing. Secret values never
// appear in its errors.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/upstream"
)

// Client is a device client allowed to use devicegate.
type Client struct {
	// ID is the client_id the device sends.
	ID string
	// Name is shown to the person on the confirmation screen.
	Name string
	// Scopes lists the scopes the client may ask for; empty means any.
	Scopes []string
	// DefaultScopes are used when the device asks for none.
	DefaultScopes []string
	// ScopeDescriptions are plain-language descriptions of scopes for the
	// confirmation screen. Load fills in the entry's own; main adds the
	// provider preset's for the scopes the entry does not describe.
	ScopeDescriptions map[string]string
	// SecretEnv names the variable holding the client's secret; empty makes
	// it a public client, identified by client_id alone (RFC 6749 §2.1).
	SecretEnv string
	// Secret is the value of SecretEnv, filled in by Load.
	Secret string
	// Mode is how the client's tokens are obtained: ModeProxy or
	// ModePassthrough.
	Mode Mode
	// Upstream is the provider this client signs in with; nil means the
	// deployment's default upstream (the DEVICEGATE_UPSTREAM_* variables).
	Upstream *Upstream
}

// Mode says who holds the upstream client secret.
type Mode string

const (
	// ModeProxy: devicegate holds the provider's client secret, exchanges
	// the authorization code at the callback and keeps the tokens (sealed)
	// until the device collects them. The device needs no secret at all.
	ModeProxy Mode = "proxy"
	// ModePassthrough: the device holds the provider's client secret and
	// presents it at devicegate's token endpoint; devicegate keeps only the
	// (sealed) authorization code and exchanges it with the device's secret
	// when the device polls, so the secret never rests with devicegate.
	ModePassthrough Mode = "passthrough"
)

// Public reports whether the client has no secret of its own.
func (c *Client) Public() bool { return c.Secret == "" }

// Passthrough reports whether the device presents the provider's secret.
func (c *Client) Passthrough() bool { return c.Mode == ModePassthrough }

// AllowsScope reports whether the client may ask for scope.
func (c *Client) AllowsScope(scope string) bool {
	return len(c.Scopes) == 0 || slices.Contains(c.Scopes, scope)
}

// Upstream is an OAuth 2.0 provider devicegate fronts. It is comparable, so
// clients with equal upstreams can share one connection to the provider.
type Upstream struct {
	Preset   string // a preset name, "generic", "oidc", or "demo" (set by -demo)
	Issuer   string // oidc only: endpoints come from its discovery document
	Name     string // display name; generic and oidc
	AuthURL  string // generic only
	TokenURL string // generic only
	PKCE     bool   // generic only; presets know their own
	// AccountURL, AccountField and AccountScopes (generic only) say where
	// the provider names a token's account, for the person's device list.
	AccountURL    string
	AccountField  string
	AccountScopes string // space-separated (the struct stays comparable)
	ClientID      string
	// SecretEnv names the variable ClientSecret came from (for messages).
	SecretEnv    string
	ClientSecret string
	Timeout      time.Duration
}

// Cosmos locates the Cosmos DB container of the cosmos store.
type Cosmos struct {
	ConnectionString string // wins over Endpoint/Key
	Endpoint         string
	Key              string // empty: Microsoft Entra ID (DefaultAzureCredential)
	Database         string
	Container        string
	// CreateIfMissing creates the database and container (local and
	// emulator use; in Azure the Bicep template creates them).
	CreateIfMissing bool
}

// Config is devicegate's whole configuration.
type Config struct {
	// PublicURL is where people and devices reach devicegate, without a
	// trailing slash; every URL devicegate hands out starts with it.
	PublicURL string
	// Addr is the listen address.
	Addr     string
	Upstream Upstream
	Clients  []Client

	CodeLifetime time.Duration
	PollInterval time.Duration

	Store    string // "bolt", "memory" or "cosmos"
	BoltPath string
	Cosmos   Cosmos
	// TrustedProxy says a trusted front (Azure Static Web Apps) sets
	// X-Forwarded-For; only then is that header believed.
	TrustedProxy bool
	// ProxyHops is how many trusted proxies append to X-Forwarded-For; the
	// client's address is that many entries from the right.
	ProxyHops int

	// RateAuthorize limits device authorizations per client IP.
	RateAuthorize ratelimit.Rule
	// RateVerify limits code lookups (typing a code) per client IP.
	RateVerify ratelimit.Rule
	// RateRefresh and RateRefreshClient limit refresh_token grants per
	// client IP and per device client.
	RateRefresh       ratelimit.Rule
	RateRefreshClient ratelimit.Rule
	// RateClientAuth and RateClientAuthClient limit failed client
	// authentications per client IP and per device client.
	RateClientAuth       ratelimit.Rule
	RateClientAuthClient ratelimit.Rule
	// RatePollMisses limits polls of unknown device codes per client IP.
	RatePollMisses ratelimit.Rule
	// RateCodeMisses is the deployment-wide ceiling on user codes that
	// match nothing.
	RateCodeMisses ratelimit.Rule
	// RefreshLifetime is how long a refresh token stays usable through
	// devicegate without being refreshed.
	RefreshLifetime time.Duration
	// SecretKey keys code hashing; nil means "generate one next to the
	// bolt file" (local use) — main decides, config has no side effects.
	SecretKey []byte
	// PreviousKey is the secret key before the last rotation, kept so that
	// flows in progress finish.
	PreviousKey []byte

	LogLevel  string // debug, info, warn, error
	LogFormat string // text or json
	// Demo runs the built-in demo provider (flag -demo).
	Demo bool
	// Warnings are settings that are valid but probably not what was
	// meant; main logs them at start.
	Warnings []string
}

// Client returns the client with id.
func (c *Config) Client(id string) (*Client, bool) {
	for i := range c.Clients {
		if c.Clients[i].ID == id {
			return &c.Clients[i], true
		}
	}
	return nil, false
}

// Var documents one environment variable. Vars is the single list that
// Load reads and README's table is checked against.
type Var struct {
	Name, Default, Doc string
}

// Vars lists every variable Load reads.
var Vars = []Var{
	{"DEVICEGATE_PUBLIC_URL", "http://<listen address>", "Public base URL people and devices use, e.g. https://devicegate.example.net. HTTPS required unless the host is a loopback address."},
	{"DEVICEGATE_ADDR", "127.0.0.1:8080", "Listen address. Ignored when FUNCTIONS_CUSTOMHANDLER_PORT is set (Azure), which makes it listen on that port."},
	{"DEVICEGATE_UPSTREAM", "spotify", "Upstream provider: a preset (spotify, strava, discord, dropbox, twitch), generic (explicit URLs) or oidc (an issuer; endpoints discovered at start)."},
	{"DEVICEGATE_UPSTREAM_ISSUER", "", "oidc: the issuer URL; its /.well-known/openid-configuration is read at start."},
	{"DEVICEGATE_UPSTREAM_NAME", "", "generic and oidc: the provider's name shown to people (\"your NAME account\"); unset, the host of the authorization URL (generic) or of the issuer (oidc)."},
	{"DEVICEGATE_UPSTREAM_AUTH_URL", "", "generic: the provider's authorization endpoint."},
	{"DEVICEGATE_UPSTREAM_TOKEN_URL", "", "generic: the provider's token endpoint."},
	{"DEVICEGATE_UPSTREAM_PKCE", "true", "generic: whether the provider supports PKCE S256."},
	{"DEVICEGATE_UPSTREAM_ACCOUNT_URL", "", "generic: a URL that answers a GET with an access token with JSON naming the account (OIDC userinfo), so people can list and disconnect their devices at /devices; unset, /devices explains that it cannot."},
	{"DEVICEGATE_UPSTREAM_ACCOUNT_FIELD", "sub", "generic: the field of the account URL's answer that identifies the account."},
	{"DEVICEGATE_UPSTREAM_ACCOUNT_SCOPES", "openid", "generic: the scopes (space-separated) a token needs to read the account URL; the /devices sign-in asks for these alone."},
	{"DEVICEGATE_UPSTREAM_CLIENT_ID", "", "Client id of devicegate's app at the provider (required unless every client names its own upstream)."},
	{"DEVICEGATE_UPSTREAM_CLIENT_SECRET", "", "Client secret of devicegate's app at the provider (required unless every client using the default upstream is in passthrough mode; never logged)."},
	{"DEVICEGATE_UPSTREAM_TIMEOUT", "10s", "Time limit for a token exchange with the provider."},
	{"DEVICEGATE_CLIENTS", "", `Device clients allowed, as JSON: [{"client_id":"tv","name":"Living-room TV","scopes":["user-read-playback-state"]}]. Every field is described in docs/FORKING.md.`},
	{"DEVICEGATE_CLIENTS_FILE", "", "The same list in a JSON file (instead of DEVICEGATE_CLIENTS); mistakes are reported with their line."},
	{"DEVICEGATE_CODE_LIFETIME", "10m", "How long device and user codes live (expires_in), 1m to 30m."},
	{"DEVICEGATE_POLL_INTERVAL", "5s", "Polling interval devices start with, whole seconds, 1s to 60s."},
	{"DEVICEGATE_STORE", "bolt", "Where records live: bolt (one local file), cosmos (Azure Cosmos DB) or memory (lost on restart)."},
	{"DEVICEGATE_BOLT_PATH", "devicegate.db", "bolt: the database file."},
	{"DEVICEGATE_COSMOS_CONNECTION_STRING", "", "cosmos: a connection string (AccountEndpoint=…;AccountKey=…;). Or set the endpoint (and key) below."},
	{"DEVICEGATE_COSMOS_ENDPOINT", "", "cosmos: the account endpoint, e.g. https://NAME.documents.azure.com:443/."},
	{"DEVICEGATE_COSMOS_KEY", "", "cosmos: the account key; unset = sign in with Microsoft Entra ID (managed identity in Azure, az login locally)."},
	{"DEVICEGATE_COSMOS_DATABASE", "devicegate", "cosmos: database name."},
	{"DEVICEGATE_COSMOS_CONTAINER", "records", "cosmos: container name (partition key /id, TTL on)."},
	{"DEVICEGATE_COSMOS_CREATE", "false", "cosmos: create the database and container when missing (local/emulator use)."},
	{"DEVICEGATE_TRUSTED_PROXY", "false", "true behind a front that sets X-Forwarded-For (Azure Static Web Apps); the client IP is then read from it."},
	{"DEVICEGATE_TRUSTED_PROXY_HOPS", "1", "With DEVICEGATE_TRUSTED_PROXY: how many trusted proxies append to X-Forwarded-For; the client IP is that many entries from the right, so a client cannot choose it (SECURITY.md)."},
	{"DEVICEGATE_SECRET_KEY", "generated", "Base64 of 32 random bytes keying the code hashes (openssl rand -base64 32). Unset locally: generated into devicegate.key next to the bolt file."},
	{"DEVICEGATE_RATE_AUTHORIZE", "30/10m", "Device authorizations allowed per client IP (COUNT/WINDOW, or off)."},
	{"DEVICEGATE_RATE_VERIFY", "20/10m", "Requests naming a user code allowed per client IP: showing a code's confirmation, Allow and Deny each count (COUNT/WINDOW, or off); what keeps guessing user codes hopeless (SECURITY.md)."},
	{"DEVICEGATE_RATE_REFRESH", "30/10m", "Refresh-token grants allowed per client IP (COUNT/WINDOW, or off)."},
	{"DEVICEGATE_RATE_REFRESH_CLIENT", "600/10m", "Refresh-token grants allowed per device client, across all addresses (COUNT/WINDOW, or off); keeps junk from reaching the provider in your app's name."},
	{"DEVICEGATE_RATE_CLIENT_AUTH", "10/10m", "Failed client authentications (wrong client secret) allowed per client IP, and eight times that per IPv4 /24 or IPv6 /48 (COUNT/WINDOW, or off); past it, requests are refused with 429 before their secret is compared."},
	{"DEVICEGATE_RATE_CLIENT_AUTH_CLIENT", "100/10m", "Failed client authentications allowed per device client, across all addresses (COUNT/WINDOW, or off); past it, that client's requests are refused with 429 before their secret is compared."},
	{"DEVICEGATE_RATE_POLL_MISSES", "30/10m", "Polls naming an unknown device code allowed per client IP (COUNT/WINDOW, or off); past it, polls are refused before the store is read."},
	{"DEVICEGATE_RATE_CODE_MISSES", "500/10m", "Deployment-wide ceiling on typed user codes that match nothing (COUNT/WINDOW, or off); past it, every address is slowed to 3 code requests a window and an error is logged (SECURITY.md)."},
	{"DEVICEGATE_REFRESH_LIFETIME", "2160h", "How long a refresh token stays usable through devicegate without a refresh (90 days); each refresh renews it, 1h to 8760h."},
	{"DEVICEGATE_SECRET_KEY_PREVIOUS", "", "The key before a rotation, base64; flows started under it still finish, and a device's refresh token found under it is moved to the current key at its next refresh. Keep it for DEVICEGATE_REFRESH_LIFETIME after the rotation, or devices that have not refreshed since must sign in again (SECURITY.md, Keys)."},
	{"DEVICEGATE_LOG_LEVEL", "info", "debug, info, warn or error."},
	{"DEVICEGATE_LOG_FORMAT", "text", "text or json."},
}

// Load reads the configuration through getenv (os.Getenv in production, a
// map in tests), and the clients file from disk. demo says whether -demo was given: it supplies a demo
// upstream and client, so no upstream variable is needed.
func Load(getenv func(string) string, demo bool) (*Config, error) {
	return LoadFrom(getenv, os.ReadFile, demo)
}

// LoadFrom is Load with the file reader injected (for
// DEVICEGATE_CLIENTS_FILE), so tests need no files on disk.
func LoadFrom(getenv func(string) string, readFile func(string) ([]byte, error), demo bool) (*Config, error) {
	l := &loader{getenv: getenv, readFile: readFile}
	c := &Config{Demo: demo}
	l.listen(c)
	l.defaultUpstream(c)
	l.clients(c)
	l.flow(c)
	l.store(c)
	l.front(c)
	l.keys(c)
	l.logging(c)
	l.warnings(c)
	if len(l.errs) > 0 {
		return nil, &LoadError{err: fmt.Errorf("invalid configuration:\n%w", errors.Join(l.errs...)), partial: c}
	}
	c.Warnings = l.warns
	return c, nil
}

// LoadError is an invalid configuration: every problem found, one per
// line. It also knows what was read before the problems were counted, so
// that a misspelled variable can be named alongside the problem it
// probably causes ("DEVICEGATE_CLIENTS: required" next to
// "DEVICEGATE_CLEINTS: no such setting").
type LoadError struct {
	err     error
	partial *Config
}

func (e *LoadError) Error() string { return e.err.Error() }
func (e *LoadError) Unwrap() error { return e.err }

// UnknownVariables is Config.UnknownVariables for the configuration as far
// as it could be read.
func (e *LoadError) UnknownVariables(environ []string) []string {
	return e.partial.UnknownVariables(environ)
}

// loader reads variables and collects every problem (errs) and every
// setting that works but probably not as meant (warns), each prefixed with
// the variable's name.
type loader struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	errs     []error
	warns    []string
}

func (l *loader) bad(name, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

func (l *loader) warn(name, format string, args ...any) {
	l.warns = append(l.warns, name+": "+fmt.Sprintf(format, args...))
}

func (l *loader) get(name string) string { return strings.TrimSpace(l.getenv(name)) }

func (l *loader) or(name, def string) string {
	if v := l.get(name); v != "" {
		return v
	}
	return def
}

// duration reads a duration in [lo, hi]; a value out of range is reported
// once, as such.
func (l *loader) duration(name string, def, lo, hi time.Duration) time.Duration {
	v := l.get(name)
	if v == "" {
		return def
	}
	d, err := parseDuration(v)
	if err != nil {
		l.bad(name, "%q is not a duration (use e.g. 10m, 90s or a number of seconds)", v)
		return def
	}
	if d < lo || d > hi {
		l.bad(name, "%v is out of range [%v, %v]", d, lo, hi)
		return def
	}
	return d
}

func (l *loader) boolean(name string, def bool) bool {
	v := l.get(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.bad(name, "%q is not true or false", v)
	}
	return b
}

func (l *loader) rule(name, def string) ratelimit.Rule {
	r, err := ratelimit.ParseRule(l.or(name, def))
	if err != nil {
		l.bad(name, "%v", err)
	}
	return r
}

func (l *loader) key(name string) []byte {
	v := l.get(name)
	if v == "" {
		return nil
	}
	k, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		k, err = base64.RawStdEncoding.DecodeString(v)
	}
	switch {
	case err != nil:
		l.bad(name, "not valid base64 (make one with: openssl rand -base64 32)")
	case len(k) != 32:
		l.bad(name, "decodes to %d bytes, want 32 (make one with: openssl rand -base64 32)", len(k))
	default:
		return k
	}
	return nil
}

// listen reads where devicegate listens and the URL it hands out.
func (l *loader) listen(c *Config) {
	c.Addr = l.or("DEVICEGATE_ADDR", "127.0.0.1:8080")
	if port := l.get("FUNCTIONS_CUSTOMHANDLER_PORT"); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			l.bad("FUNCTIONS_CUSTOMHANDLER_PORT", "%q is not a port number", port)
		}
		c.Addr = ":" + port
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		l.bad("DEVICEGATE_ADDR", "%q is not host:port", c.Addr)
	}

	c.PublicURL = strings.TrimRight(l.get("DEVICEGATE_PUBLIC_URL"), "/")
	if c.PublicURL != "" {
		// Browsers send the origin in its normal form (RFC 6454 §6.1:
		// lower-case scheme and host, no default port); a URL typed as
		// https://Host:443 must compare equal to it, and every URL handed
		// out is built from the normal form.
		c.PublicURL = NormalizeOrigin(c.PublicURL)
	}
	if c.PublicURL == "" {
		host, port, _ := net.SplitHostPort(c.Addr)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	if err := checkPublicURL(c.PublicURL); err != nil {
		l.bad("DEVICEGATE_PUBLIC_URL", "%v", err)
	}
}

// defaultUpstream reads the DEVICEGATE_UPSTREAM_* variables.
func (l *loader) defaultUpstream(c *Config) {
	up := &c.Upstream
	up.Timeout = l.duration("DEVICEGATE_UPSTREAM_TIMEOUT", 10*time.Second, time.Second, 40*time.Second)
	if c.Demo {
		up.Preset = "demo"
		return
	}
	up.Preset = strings.ToLower(l.or("DEVICEGATE_UPSTREAM", "spotify"))
	up.ClientID = l.get("DEVICEGATE_UPSTREAM_CLIENT_ID")
	up.SecretEnv = "DEVICEGATE_UPSTREAM_CLIENT_SECRET"
	up.ClientSecret = l.getenv("DEVICEGATE_UPSTREAM_CLIENT_SECRET")
	switch up.Preset {
	case "oidc":
		up.Issuer = l.get("DEVICEGATE_UPSTREAM_ISSUER")
		up.Name = l.get("DEVICEGATE_UPSTREAM_NAME")
		if err := checkEndpoint(up.Issuer, "oidc"); err != nil {
			l.bad("DEVICEGATE_UPSTREAM_ISSUER", "%v", err)
		}
	case "generic":
		up.AuthURL = l.get("DEVICEGATE_UPSTREAM_AUTH_URL")
		// Unnamed, the provider is called by its authorization URL's host,
		// as an unnamed oidc issuer is by its own: pages say "your
		// {provider} account", which a placeholder such as "your
		// provider" would make "your your provider account".
		up.Name = l.or("DEVICEGATE_UPSTREAM_NAME", upstream.HostOf(up.AuthURL))
		up.TokenURL = l.get("DEVICEGATE_UPSTREAM_TOKEN_URL")
		for _, name := range []string{"DEVICEGATE_UPSTREAM_AUTH_URL", "DEVICEGATE_UPSTREAM_TOKEN_URL"} {
			if err := checkEndpoint(l.get(name), "generic"); err != nil {
				l.bad(name, "%v", err)
			}
		}
		up.PKCE = l.boolean("DEVICEGATE_UPSTREAM_PKCE", true)
		up.AccountURL = l.get("DEVICEGATE_UPSTREAM_ACCOUNT_URL")
		up.AccountField = l.or("DEVICEGATE_UPSTREAM_ACCOUNT_FIELD", "sub")
		up.AccountScopes = l.or("DEVICEGATE_UPSTREAM_ACCOUNT_SCOPES", "openid")
		if up.AccountURL != "" {
			if err := checkEndpoint(up.AccountURL, "generic"); err != nil {
				l.bad("DEVICEGATE_UPSTREAM_ACCOUNT_URL", "%v", err)
			}
		}
	default:
		if _, ok := upstream.Lookup(up.Preset); !ok {
			l.bad("DEVICEGATE_UPSTREAM", "unknown preset %q (choose one of %s, or oidc)", up.Preset, strings.Join(upstream.Names(), ", "))
		}
	}
}

// clients reads the device clients from DEVICEGATE_CLIENTS or the clients
// file, then checks that the default upstream has the credentials the
// clients using it need.
func (l *loader) clients(c *Config) {
	up := &c.Upstream
	rawClients, fileClients := l.get("DEVICEGATE_CLIENTS"), l.get("DEVICEGATE_CLIENTS_FILE")
	switch {
	case rawClients != "" && fileClients != "":
		l.bad("DEVICEGATE_CLIENTS_FILE", "set either DEVICEGATE_CLIENTS or DEVICEGATE_CLIENTS_FILE, not both")
	case fileClients != "":
		data, err := l.readFile(fileClients)
		if err != nil {
			l.bad("DEVICEGATE_CLIENTS_FILE", "cannot read %s: %v", fileClients, unwrapPathError(err))
			break
		}
		clients, problems := parseClients(data, fileClients, l.getenv, up.Timeout)
		c.Clients = clients
		for _, p := range problems {
			l.bad("DEVICEGATE_CLIENTS_FILE", "%s", p)
		}
	case rawClients != "":
		clients, problems := parseClients([]byte(rawClients), "", l.getenv, up.Timeout)
		c.Clients = clients
		for _, p := range problems {
			l.bad("DEVICEGATE_CLIENTS", "%s", p)
		}
	case !c.Demo:
		l.bad("DEVICEGATE_CLIENTS", `required (or DEVICEGATE_CLIENTS_FILE): at least one device client, e.g. [{"client_id":"tv","name":"Living-room TV"}]`)
	}
	// The default upstream's credentials are needed only by the clients
	// that use it: its client id by all of them, its secret by those in
	// proxy mode (in passthrough mode the device presents the secret).
	// A list that could not be read says nothing about which clients use
	// the default upstream; its own problems are reported instead.
	listBroken := (rawClients != "" || fileClients != "") && len(c.Clients) == 0
	if !c.Demo && !listBroken && (len(c.Clients) == 0 || slices.ContainsFunc(c.Clients, func(cl Client) bool { return cl.Upstream == nil })) {
		if up.ClientID == "" {
			l.bad("DEVICEGATE_UPSTREAM_CLIENT_ID", "required: the client id of your app at the provider")
		}
		if up.ClientSecret == "" && (len(c.Clients) == 0 || slices.ContainsFunc(c.Clients, func(cl Client) bool { return cl.Upstream == nil && !cl.Passthrough() })) {
			l.bad("DEVICEGATE_UPSTREAM_CLIENT_SECRET", "required: the client secret of your app at the provider")
		}
	}
}

// flow reads the code lifetime and the polling interval.
func (l *loader) flow(c *Config) {
	c.CodeLifetime = l.duration("DEVICEGATE_CODE_LIFETIME", 10*time.Minute, time.Minute, 30*time.Minute)
	c.PollInterval = l.duration("DEVICEGATE_POLL_INTERVAL", 5*time.Second, time.Second, time.Minute)
	if c.PollInterval%time.Second != 0 {
		l.bad("DEVICEGATE_POLL_INTERVAL", "%v is not a whole number of seconds", c.PollInterval)
	}
}

// store reads the store backend and its settings.
func (l *loader) store(c *Config) {
	c.Store = strings.ToLower(l.or("DEVICEGATE_STORE", "bolt"))
	c.BoltPath = l.or("DEVICEGATE_BOLT_PATH", "devicegate.db")
	c.Cosmos = Cosmos{
		ConnectionString: l.getenv("DEVICEGATE_COSMOS_CONNECTION_STRING"),
		Endpoint:         l.get("DEVICEGATE_COSMOS_ENDPOINT"),
		Key:              l.getenv("DEVICEGATE_COSMOS_KEY"),
		Database:         l.or("DEVICEGATE_COSMOS_DATABASE", "devicegate"),
		Container:        l.or("DEVICEGATE_COSMOS_CONTAINER", "records"),
		CreateIfMissing:  l.boolean("DEVICEGATE_COSMOS_CREATE", false),
	}
	switch c.Store {
	case "bolt", "memory":
	case "cosmos":
		if c.Cosmos.ConnectionString == "" && c.Cosmos.Endpoint == "" {
			l.bad("DEVICEGATE_COSMOS_ENDPOINT", "required for the cosmos store (or set DEVICEGATE_COSMOS_CONNECTION_STRING)")
		}
		if c.Cosmos.Endpoint != "" {
			if u, err := url.Parse(c.Cosmos.Endpoint); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
				l.bad("DEVICEGATE_COSMOS_ENDPOINT", "%q is not an https URL", c.Cosmos.Endpoint)
			}
		}
	default:
		l.bad("DEVICEGATE_STORE", "unknown store %q (choose bolt, cosmos or memory)", c.Store)
	}
}

// front reads what concerns the requests themselves: the trusted proxy in
// front, the rate limits, and how long refresh tokens stay usable.
func (l *loader) front(c *Config) {
	c.TrustedProxy = l.boolean("DEVICEGATE_TRUSTED_PROXY", false)
	c.ProxyHops = 1
	if v := l.get("DEVICEGATE_TRUSTED_PROXY_HOPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5 {
			l.bad("DEVICEGATE_TRUSTED_PROXY_HOPS", "%q is not a number from 1 to 5", v)
		}
		c.ProxyHops = n
	}
	c.RateAuthorize = l.rule("DEVICEGATE_RATE_AUTHORIZE", "30/10m")
	c.RateVerify = l.rule("DEVICEGATE_RATE_VERIFY", "20/10m")
	c.RateRefresh = l.rule("DEVICEGATE_RATE_REFRESH", "30/10m")
	c.RateRefreshClient = l.rule("DEVICEGATE_RATE_REFRESH_CLIENT", "600/10m")
	c.RateClientAuth = l.rule("DEVICEGATE_RATE_CLIENT_AUTH", "10/10m")
	c.RateClientAuthClient = l.rule("DEVICEGATE_RATE_CLIENT_AUTH_CLIENT", "100/10m")
	c.RatePollMisses = l.rule("DEVICEGATE_RATE_POLL_MISSES", "30/10m")
	c.RateCodeMisses = l.rule("DEVICEGATE_RATE_CODE_MISSES", "500/10m")
	c.RefreshLifetime = l.duration("DEVICEGATE_REFRESH_LIFETIME", 90*24*time.Hour, time.Hour, 365*24*time.Hour)
}

// keys reads the secret key and the one before a rotation.
func (l *loader) keys(c *Config) {
	c.SecretKey = l.key("DEVICEGATE_SECRET_KEY")
	c.PreviousKey = l.key("DEVICEGATE_SECRET_KEY_PREVIOUS")
	// A generated key is for one machine trying things out. In production —
	// in Azure, on a public HTTPS address, or with a store shared by several
	// instances — every instance must use the same configured key.
	if c.SecretKey == nil && l.get("DEVICEGATE_SECRET_KEY") == "" &&
		(l.get("FUNCTIONS_CUSTOMHANDLER_PORT") != "" || strings.HasPrefix(c.PublicURL, "https://") || c.Store == "cosmos") {
		l.bad("DEVICEGATE_SECRET_KEY", "required in production (Azure, an https public URL, or the cosmos store); make one with: openssl rand -base64 32")
	}
}

func (l *loader) logging(c *Config) {
	c.LogLevel = strings.ToLower(l.or("DEVICEGATE_LOG_LEVEL", "info"))
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		l.bad("DEVICEGATE_LOG_LEVEL", "%q is not debug, info, warn or error", c.LogLevel)
	}
	c.LogFormat = strings.ToLower(l.or("DEVICEGATE_LOG_FORMAT", "text"))
	if c.LogFormat != "text" && c.LogFormat != "json" {
		l.bad("DEVICEGATE_LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
}

// warnings notes settings that are valid but will not work as a newcomer
// expects: a public URL a phone cannot reach, or one the provider refuses.
func (l *loader) warnings(c *Config) {
	if l.get("DEVICEGATE_PUBLIC_URL") == "" && l.get("FUNCTIONS_CUSTOMHANDLER_PORT") == "" {
		if host, _, err := net.SplitHostPort(c.Addr); err == nil && (host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified()) {
			l.warn("DEVICEGATE_ADDR", "%s listens on every interface, but without DEVICEGATE_PUBLIC_URL devicegate hands out %s, which a phone cannot reach; set DEVICEGATE_PUBLIC_URL to the https address people use (plain http works for loopback only)", c.Addr, c.PublicURL)
		}
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Hostname() != "localhost" {
		return
	}
	seen := map[string]bool{}
	for _, up := range c.upstreams() {
		p, ok := upstream.Lookup(up.Preset)
		if !ok || !p.RefusesLocalhost || seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		ip := "http://127.0.0.1"
		if u.Port() != "" {
			ip += ":" + u.Port()
		}
		l.warn("DEVICEGATE_PUBLIC_URL", "%s refuses redirect URIs on localhost, so sign-ins would fail at %[1]s; use the loopback IP instead: DEVICEGATE_PUBLIC_URL=%[2]s, and register %[2]s/api/callback", p.DisplayName, ip)
	}
}

// upstreams lists the upstreams in use: the default one if a client uses
// it (or no client is configured), and each client's own.
func (c *Config) upstreams() []Upstream {
	var ups []Upstream
	if len(c.Clients) == 0 || slices.ContainsFunc(c.Clients, func(cl Client) bool { return cl.Upstream == nil }) {
		ups = append(ups, c.Upstream)
	}
	for _, cl := range c.Clients {
		if cl.Upstream != nil {
			ups = append(ups, *cl.Upstream)
		}
	}
	return ups
}

// parseDuration accepts Go durations ("10m", "1m30s") and plain seconds.
func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

// checkPublicURL insists on HTTPS except for loopback hosts: cookies,
// redirects and tokens must not travel in clear over a network.
func checkPublicURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%q is not an absolute http(s) URL", v)
	}
	if u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("%q must be scheme://host[:port] with no path, query or fragment", v)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q must use https (plain http is allowed only for loopback addresses)", v)
	}
	return nil
}

// NormalizeOrigin returns scheme://host[:port] of an absolute http(s) URL
// in the form RFC 6454 §6.1 serialises an origin: scheme and host in lower
// case, the port dropped when it is the scheme's default (80, 443), and
// nothing after the authority but what was there (the path, query and
// fragment are left for checkPublicURL to refuse). Anything that does not
// parse is returned unchanged.
func NormalizeOrigin(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return v
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	if u.Path == "/" {
		u.Path = ""
	}
	return u.String()
}

// checkEndpoint checks a URL setting of the kind ("generic", "oidc")
// upstream.
func checkEndpoint(v, kind string) error {
	if v == "" {
		return fmt.Errorf("required for the %s upstream", kind)
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%q is not an absolute http(s) URL", v)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q must use https", v)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validClientID(id string) bool {
	if len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
			return false
		}
	}
	return true
}

// ValidScope reports whether s is an RFC 6749 §3.3 scope token.
func ValidScope(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}
