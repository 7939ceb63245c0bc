package config

import (
	"bytes"
	"encoding/base64"
	"flag"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func base() map[string]string {
	return map[string]string{
		"DEVICEGATE_UPSTREAM_CLIENT_ID":     "cid",
		"DEVICEGATE_UPSTREAM_CLIENT_SECRET": "csecret-value",
		"DEVICEGATE_CLIENTS":                `[{"client_id":"tv","name":"TV"}]`,
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(base()), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" || c.Upstream.Preset != "spotify" ||
		c.CodeLifetime != 10*time.Minute || c.PollInterval != 5*time.Second || c.Store != "bolt" ||
		c.BoltPath != "devicegate.db" || c.SecretKey != nil || c.RateVerify.String() != "20/10m0s" || c.RateAuthorize.Limit != 30 || c.LogLevel != "info" || c.Upstream.Timeout != 10*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	// The defaults SECURITY.md's arithmetic and promises rest on.
	if c.TrustedProxy || c.ProxyHops != 1 || c.RateRefresh.String() != "30/10m0s" || c.RateRefreshClient.String() != "600/10m0s" ||
		c.RateAuthorize.String() != "30/10m0s" || c.RefreshLifetime != 90*24*time.Hour {
		t.Errorf("security defaults: trusted proxy %v, hops %d, refresh %v per address and %v per client, authorize %v, refresh lifetime %v",
			c.TrustedProxy, c.ProxyHops, c.RateRefresh, c.RateRefreshClient, c.RateAuthorize, c.RefreshLifetime)
	}
	cl, ok := c.Client("tv")
	if !ok || cl.Name != "TV" || !cl.Public() || !cl.AllowsScope("anything") {
		t.Errorf("client %+v", cl)
	}
	if _, ok := c.Client("nope"); ok {
		t.Error("unknown client found")
	}
}

func TestProductionNeedsAKey(t *testing.T) {
	for name, set := range map[string][2]string{
		"azure":  {"FUNCTIONS_CUSTOMHANDLER_PORT", "7071"},
		"https":  {"DEVICEGATE_PUBLIC_URL", "https://gate.example.net"},
		"cosmos": {"DEVICEGATE_STORE", "cosmos"},
	} {
		m := base()
		m[set[0]] = set[1]
		m["DEVICEGATE_COSMOS_CONNECTION_STRING"] = "AccountEndpoint=https://x/;AccountKey=a2V5;"
		if _, err := Load(env(m), false); err == nil || !strings.Contains(err.Error(), "DEVICEGATE_SECRET_KEY: required in production") {
			t.Errorf("%s without a key: %v", name, err)
		}
	}
}

func TestAzurePortWins(t *testing.T) {
	m := base()
	m["DEVICEGATE_SECRET_KEY"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	m["DEVICEGATE_SECRET_KEY_PREVIOUS"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{4}, 32))
	m["FUNCTIONS_CUSTOMHANDLER_PORT"] = "7071"
	m["DEVICEGATE_PUBLIC_URL"] = "https://gate.example.net/"
	c, err := Load(env(m), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":7071" || c.PublicURL != "https://gate.example.net" || len(c.PreviousKey) != 32 {
		t.Errorf("addr %q url %q", c.Addr, c.PublicURL)
	}
}

func TestDemoNeedsNoUpstream(t *testing.T) {
	c, err := Load(env(map[string]string{}), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Upstream.Preset != "demo" || !c.Demo {
		t.Errorf("%+v", c)
	}
}

func TestGenericAndClientsFile(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	m := base()
	m["DEVICEGATE_UPSTREAM"] = "Generic"
	m["DEVICEGATE_UPSTREAM_NAME"] = "Acme"
	m["DEVICEGATE_UPSTREAM_AUTH_URL"] = "https://acme.test/auth"
	m["DEVICEGATE_UPSTREAM_TOKEN_URL"] = "http://127.0.0.1:9/token"
	m["DEVICEGATE_UPSTREAM_PKCE"] = "false"
	m["DEVICEGATE_CLIENTS"] = `[{"client_id":"tv","name":"TV","scopes":["a","b"],"default_scopes":["a"],"secret_env":"TV_SECRET"}]`
	m["TV_SECRET"] = strongSecret
	m["DEVICEGATE_SECRET_KEY"] = key
	m["DEVICEGATE_CODE_LIFETIME"] = "300"
	m["DEVICEGATE_SECRET_KEY_PREVIOUS"] = "bm8="
	m["DEVICEGATE_POLL_INTERVAL"] = "10s"
	if _, err := Load(env(m), false); err == nil || !strings.Contains(err.Error(), "DEVICEGATE_SECRET_KEY_PREVIOUS: decodes to 2 bytes") {
		t.Errorf("short previous key: %v", err)
	}
	delete(m, "DEVICEGATE_SECRET_KEY_PREVIOUS")
	c, err := Load(env(m), false)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := c.Client("tv")
	if c.Upstream.Name != "Acme" || c.Upstream.PKCE || cl.Secret != strongSecret || cl.Public() || cl.AllowsScope("c") || !cl.AllowsScope("b") ||
		c.CodeLifetime != 5*time.Minute || c.PollInterval != 10*time.Second || len(c.SecretKey) != 32 {
		t.Errorf("%+v %+v", c, cl)
	}
}

// TestGenericProviderNamedByItsHost: a generic provider without a name is
// called by its authorization URL's host, never by a placeholder that the
// pages' "your {provider} account" would turn into "your your provider
// account"; a name given wins. The same holds in a clients file.
func TestGenericProviderNamedByItsHost(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"", "login.acme.test"},
		{"Acme", "Acme"},
	} {
		m := base()
		m["DEVICEGATE_UPSTREAM"] = "generic"
		m["DEVICEGATE_UPSTREAM_AUTH_URL"] = "https://login.acme.test:8443/oauth/authorize"
		m["DEVICEGATE_UPSTREAM_TOKEN_URL"] = "https://login.acme.test:8443/oauth/token"
		if tc.name != "" {
			m["DEVICEGATE_UPSTREAM_NAME"] = tc.name
		}
		m["DEVICEGATE_CLIENTS"] = `[{"client_id":"tv","name":"TV"},{"client_id":"kiosk","mode":"passthrough","upstream":{"preset":"generic","client_id":"k",` +
			`"auth_url":"https://id.kiosk.test/authorize","token_url":"https://id.kiosk.test/token"}}]`
		c, err := Load(env(m), false)
		if err != nil {
			t.Fatal(err)
		}
		if c.Upstream.Name != tc.want {
			t.Errorf("DEVICEGATE_UPSTREAM_NAME=%q: the provider is called %q, want %q", tc.name, c.Upstream.Name, tc.want)
		}
		kiosk, _ := c.Client("kiosk")
		if kiosk.Upstream == nil || kiosk.Upstream.Name != "id.kiosk.test" {
			t.Errorf("a clients file's unnamed generic provider: %+v", kiosk.Upstream)
		}
	}
}

// TestEveryProblemAtOnce: one Load reports each bad variable by name, and
// never echoes a secret.
func TestEveryProblemAtOnce(t *testing.T) {
	m := map[string]string{
		"DEVICEGATE_PUBLIC_URL":             "http://gate.example.net",
		"DEVICEGATE_ADDR":                   "nonsense",
		"DEVICEGATE_UPSTREAM":               "myspace",
		"DEVICEGATE_UPSTREAM_CLIENT_SECRET": "super-secret-value",
		"DEVICEGATE_CLIENTS":                `[{"client_id":"tv"},{"client_id":"tv","secret_env":"MISSING"},{"name":"x","scopes":["bad scope\""],"default_scopes":["z"]}]`,
		"DEVICEGATE_CODE_LIFETIME":          "forever",
		"DEVICEGATE_POLL_INTERVAL":          "1500ms",
		"DEVICEGATE_STORE":                  "postgres",
		"DEVICEGATE_SECRET_KEY":             "c2hvcnQ=",
		"DEVICEGATE_LOG_LEVEL":              "loud",
		"DEVICEGATE_LOG_FORMAT":             "xml",
		"DEVICEGATE_UPSTREAM_TIMEOUT":       "2h",
		"DEVICEGATE_RATE_VERIFY":            "lots",
	}
	_, err := Load(env(m), false)
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"DEVICEGATE_PUBLIC_URL: ", "must use https",
		"DEVICEGATE_ADDR: ", "DEVICEGATE_UPSTREAM: unknown preset", "DEVICEGATE_UPSTREAM_CLIENT_ID: required",
		`entry 2 ("tv"): client_id appears twice`, "secret_env names MISSING", "entry 3: client_id is required",
		`is not a valid scope`, `default scope "z" is not in scopes`,
		"DEVICEGATE_CODE_LIFETIME: ", "DEVICEGATE_POLL_INTERVAL: ", "DEVICEGATE_STORE: ",
		"DEVICEGATE_SECRET_KEY: decodes to 5 bytes", "DEVICEGATE_LOG_LEVEL: ", "DEVICEGATE_LOG_FORMAT: ", "DEVICEGATE_UPSTREAM_TIMEOUT: ", "DEVICEGATE_RATE_VERIFY: ",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "super-secret-value") {
		t.Error("a secret value appears in the error")
	}
}

func TestBadClientsJSON(t *testing.T) {
	for _, raw := range []string{`{`, `{"client_id":"tv"}`, `[]`, `[{"client_id":"tv","colour":"red"}]`, `[{"client_id":"t v"}]`} {
		m := base()
		m["DEVICEGATE_CLIENTS"] = raw
		if _, err := Load(env(m), false); err == nil || !strings.Contains(err.Error(), "DEVICEGATE_CLIENTS") {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

func TestPublicURLRules(t *testing.T) {
	tests := map[string]bool{
		"https://gate.example.net":      true,
		"http://127.0.0.1:8080":         true,
		"http://localhost:8080":         true,
		"http://[::1]:8080":             true,
		"http://gate.example.net":       false,
		"https://gate.example.net/path": false,
		"https://gate.example.net?x=1":  false,
		"ftp://gate.example.net":        false,
		"gate.example.net":              false,
	}
	for u, ok := range tests {
		if err := checkPublicURL(u); (err == nil) != ok {
			t.Errorf("%s: %v", u, err)
		}
	}
}

var update = flag.Bool("update", false, "rewrite the generated tables in README.md and docs/FORKING.md")

// TestReferenceIsCurrent keeps the configuration reference in README.md and
// docs/FORKING.md equal to what the code documents (go test -update
// rewrites them), so the docs cannot drift from the code.
func TestReferenceIsCurrent(t *testing.T) {
	tables := map[string]string{"variables": VariablesTable(), "client-fields": ClientFieldsTable(), "presets": PresetsTable()}
	for file, sections := range map[string][]string{
		"../../../README.md":       {"variables"},
		"../../../docs/FORKING.md": {"presets", "variables", "client-fields"},
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		for _, name := range sections {
			begin := "<!-- BEGIN " + name + " (generated by: go test ./api/internal/config -update) -->\n"
			end := "<!-- END " + name + " -->"
			i, j := strings.Index(doc, begin), strings.Index(doc, end)
			if i < 0 || j < i {
				t.Errorf("%s: no %q … %q section", file, begin, end)
				continue
			}
			if got := doc[i+len(begin) : j]; got != tables[name] {
				if *update {
					doc = doc[:i+len(begin)] + tables[name] + doc[j:]
					continue
				}
				t.Errorf("%s: the %s table is out of date; run go test ./api/internal/config -update", file, name)
			}
		}
		if *update {
			if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestEverySettingIsDocumented fails when Load reads a variable Vars does
// not list, or Vars lists one Load never reads, or a clients-file field has
// no entry in ClientFields.
func TestEverySettingIsDocumented(t *testing.T) {
	read := map[string]bool{}
	scenarios := []map[string]string{
		base(),
		{"DEVICEGATE_UPSTREAM": "generic", "DEVICEGATE_STORE": "cosmos", "DEVICEGATE_CLIENTS_FILE": "c.json"},
		{"DEVICEGATE_UPSTREAM": "oidc"},
	}
	for _, m := range scenarios {
		_, _ = LoadFrom(func(k string) string { read[k] = true; return m[k] }, func(string) ([]byte, error) { return []byte("[]"), nil }, false)
	}
	documented := map[string]bool{}
	for _, v := range Vars {
		documented[v.Name] = true
		if !read[v.Name] {
			t.Errorf("%s is listed in Vars but never read", v.Name)
		}
	}
	for k := range read {
		// Azure sets FUNCTIONS_CUSTOMHANDLER_PORT; the others are named by
		// secret_env and client_secret_env in the clients list.
		if !documented[k] && k != "FUNCTIONS_CUSTOMHANDLER_PORT" {
			t.Errorf("Load reads %s, which Vars does not document", k)
		}
	}

	var paths []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			paths = append(paths, prefix+name)
			if ft := f.Type; ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
				walk(prefix+name+".", ft.Elem())
			}
		}
	}
	walk("", reflect.TypeFor[ClientJSON]())
	var fields []string
	for _, f := range ClientFields {
		fields = append(fields, f.Path)
	}
	slices.Sort(paths)
	slices.Sort(fields)
	if !slices.Equal(paths, fields) {
		t.Errorf("client fields %v, documented %v", paths, fields)
	}
}

func TestCosmosStore(t *testing.T) {
	m := base()
	m["DEVICEGATE_STORE"] = "cosmos"
	if _, err := Load(env(m), false); err == nil || !strings.Contains(err.Error(), "DEVICEGATE_COSMOS_ENDPOINT: required") {
		t.Errorf("cosmos without endpoint: %v", err)
	}
	m["DEVICEGATE_COSMOS_ENDPOINT"] = "http://cosmos.example.net"
	if _, err := Load(env(m), false); err == nil || !strings.Contains(err.Error(), "not an https URL") {
		t.Errorf("plain-http endpoint: %v", err)
	}
	m["DEVICEGATE_COSMOS_ENDPOINT"] = "https://acct.documents.azure.com:443/"
	m["DEVICEGATE_COSMOS_CREATE"] = "yes please"
	if _, err := Load(env(m), false); err == nil || !strings.Contains(err.Error(), "DEVICEGATE_COSMOS_CREATE") {
		t.Errorf("bad bool: %v", err)
	}
	m["DEVICEGATE_COSMOS_CREATE"] = "true"
	m["DEVICEGATE_TRUSTED_PROXY"] = "1"
	m["DEVICEGATE_SECRET_KEY"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	c, err := Load(env(m), false)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cosmos.CreateIfMissing || c.Cosmos.Database != "devicegate" || c.Cosmos.Container != "records" || !c.TrustedProxy {
		t.Errorf("%+v", c)
	}
}

func TestUpstreamPresets(t *testing.T) {
	for _, name := range []string{"spotify", "strava", "discord", "dropbox", "twitch", "Twitch"} {
		m := base()
		m["DEVICEGATE_UPSTREAM"] = name
		if _, err := Load(env(m), false); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	m := base()
	m["DEVICEGATE_UPSTREAM"] = "oidc"
	if _, err := Load(env(m), false); err == nil || !strings.Contains(err.Error(), "DEVICEGATE_UPSTREAM_ISSUER: required for the oidc upstream") {
		t.Errorf("oidc without issuer: %v", err)
	}
	m["DEVICEGATE_UPSTREAM_ISSUER"] = "https://accounts.example.com"
	c, err := Load(env(m), false)
	if err != nil || c.Upstream.Issuer != "https://accounts.example.com" {
		t.Errorf("oidc: %+v %v", c, err)
	}
	m["DEVICEGATE_UPSTREAM"] = "myspace"
	if _, err := Load(env(m), false); err == nil || !strings.Contains(err.Error(), "discord, dropbox, generic, spotify, strava, twitch, or oidc") {
		t.Errorf("unknown preset: %v", err)
	}
}

func files(m map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if v, ok := m[name]; ok {
			return []byte(v), nil
		}
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
	}
}

// TestClientsFile: several clients, each with its own upstream and mode,
// from a file; the default upstream's credentials are then not needed.
func TestClientsFile(t *testing.T) {
	const file = `[
  {"client_id": "tv", "name": "Living-room TV", "upstream": {"preset": "spotify", "client_id": "sp-id", "client_secret_env": "SPOTIFY_SECRET"}},
  {"client_id": "bike", "name": "Bike computer", "scopes": ["read", "activity:read"], "default_scopes": ["read"],
   "upstream": {"preset": "strava", "client_id": "12345", "client_secret_env": "STRAVA_SECRET"}},
  {"client_id": "kiosk", "mode": "passthrough", "upstream": {"preset": "generic", "name": "Acme", "client_id": "acme-id",
   "auth_url": "https://acme.test/authorize", "token_url": "https://acme.test/token", "pkce": false}},
  {"client_id": "sso", "upstream": {"preset": "oidc", "issuer": "https://login.example.com", "client_id": "o", "client_secret_env": "OIDC_SECRET"}}
]`
	m := map[string]string{
		"DEVICEGATE_CLIENTS_FILE": "clients.json",
		"SPOTIFY_SECRET":          "s1", "STRAVA_SECRET": "s2", "OIDC_SECRET": "s3",
	}
	c, err := LoadFrom(env(m), files(map[string]string{"clients.json": file}), false)
	if err != nil {
		t.Fatal(err)
	}
	tv, _ := c.Client("tv")
	bike, _ := c.Client("bike")
	kiosk, _ := c.Client("kiosk")
	sso, _ := c.Client("sso")
	if tv.Upstream.Preset != "spotify" || tv.Upstream.ClientSecret != "s1" || tv.Mode != ModeProxy || tv.Passthrough() {
		t.Errorf("tv %+v %+v", tv, tv.Upstream)
	}
	if bike.Upstream.Preset != "strava" || bike.Upstream.ClientID != "12345" || bike.Upstream.ClientSecret != "s2" || bike.Upstream.Timeout != 10*time.Second {
		t.Errorf("bike %+v", bike.Upstream)
	}
	if !kiosk.Passthrough() || kiosk.Upstream.ClientSecret != "" || kiosk.Upstream.PKCE || kiosk.Upstream.AuthURL != "https://acme.test/authorize" || kiosk.Name != "kiosk" {
		t.Errorf("kiosk %+v %+v", kiosk, kiosk.Upstream)
	}
	if sso.Upstream.Issuer != "https://login.example.com" || sso.Upstream.SecretEnv != "OIDC_SECRET" {
		t.Errorf("sso %+v", sso.Upstream)
	}

	// Both sources at once, and a missing file.
	m["DEVICEGATE_CLIENTS"] = `[{"client_id":"x"}]`
	if _, err := LoadFrom(env(m), files(nil), false); err == nil || !strings.Contains(err.Error(), "not both") || !strings.Contains(err.Error(), "DEVICEGATE_CLIENTS_FILE: cannot read clients.json: file does not exist") && !strings.Contains(err.Error(), "not both") {
		t.Errorf("both: %v", err)
	}
	delete(m, "DEVICEGATE_CLIENTS")
	if _, err := LoadFrom(env(m), files(nil), false); err == nil || !strings.Contains(err.Error(), "DEVICEGATE_CLIENTS_FILE: cannot read clients.json: file does not exist") {
		t.Errorf("missing file: %v", err)
	}
}

// TestClientsFileMistakes: every mistake at once, each with its line.
func TestClientsFileMistakes(t *testing.T) {
	const file = `[
  {"client_id": "tv", "upstream": {"preset": "myspace", "client_id": "a", "client_secret_env": "UNSET"}},
  {"client_id": "pt", "mode": "passthrough", "secret_env": "PT_SECRET",
   "upstream": {"preset": "spotify", "client_id": "b", "client_secret_env": "SPOTIFY_SECRET"}},
  {"client_id": "gen", "mode": "sideways", "upstream": {"preset": "generic", "client_id": "c", "client_secret_env": "SPOTIFY_SECRET", "auth_url": "ftp://x"}},
  {"client_id": "sp", "upstream": {"preset": "spotify", "token_url": "https://x.test/t", "issuer": "https://i.test"}},
  {"client_id": "typo", "scope": ["a"], "scopes": ["a"], "default_scopes": ["b"], "upstream": {"preset": "spotify", "clientid": "x", "client_secret_env": "SPOTIFY_SECRET"}},
  {"client_id": 7},
  {"client_id": "tv"}
]`
	m := map[string]string{"DEVICEGATE_CLIENTS_FILE": "clients.json", "SPOTIFY_SECRET": "s", "PT_SECRET": "p"}
	_, err := LoadFrom(env(m), files(map[string]string{"clients.json": file}), false)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		`clients.json:2:3: entry 1 ("tv"): upstream.preset "myspace" is unknown`,
		`clients.json:2:3: entry 1 ("tv"): upstream.client_secret_env names UNSET, which is unset or empty`,
		`clients.json:3:3: entry 2 ("pt"): secret_env cannot be used in passthrough mode`,
		`clients.json:3:3: entry 2 ("pt"): upstream.client_secret_env cannot be used in passthrough mode`,
		`clients.json:5:3: entry 3 ("gen"): mode "sideways" is not proxy or passthrough`,
		`clients.json:5:3: entry 3 ("gen"): upstream.token_url: required`,
		`clients.json:5:3: entry 3 ("gen"): upstream.auth_url: "ftp://x" is not an absolute http(s) URL`,
		`clients.json:6:3: entry 4 ("sp"): upstream.auth_url, token_url and pkce apply to the generic preset only`,
		`clients.json:6:3: entry 4 ("sp"): upstream.issuer applies to the oidc preset only`,
		`clients.json:6:3: entry 4 ("sp"): upstream.client_id is required`,
		`clients.json:6:3: entry 4 ("sp"): upstream.client_secret_env is required`,
		// An unknown field no longer hides the entry's other mistakes.
		`clients.json:7:3: entry 5 ("typo"): unknown field "scope" (did you mean "scopes"?)`,
		`clients.json:7:3: entry 5 ("typo"): unknown field "upstream.clientid" (did you mean "upstream.client_id"?)`,
		`clients.json:7:3: entry 5 ("typo"): default scope "b" is not in scopes`,
		`clients.json:7:3: entry 5 ("typo"): upstream.client_id is required`,
		`clients.json:8:3: entry 6: client_id must be a string, not a JSON number`,
		`clients.json:9:3: entry 7 ("tv"): client_id appears twice`,
		// tv uses the default upstream, which then needs its credentials.
		"DEVICEGATE_UPSTREAM_CLIENT_ID: required",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}

	for name, tc := range map[string]struct{ file, want string }{
		"described scope not allowed": {`[{"client_id":"tv","scopes":["a"],"scope_descriptions":{"b":"Bee"}}]`, `clients.json:1:2: entry 1 ("tv"): scope_descriptions: "b" is not in scopes`},
		"empty description":           {`[{"client_id":"tv","scope_descriptions":{"a":" "}}]`, `clients.json:1:2: entry 1 ("tv"): scope_descriptions: the description of "a" must be 1 to 200 characters`},
		"long description":            {`[{"client_id":"tv","scope_descriptions":{"a":"` + strings.Repeat("x", 201) + `"}}]`, `clients.json:1:2: entry 1 ("tv"): scope_descriptions: the description of "a" must be 1 to 200 characters`},
		"bad described scope":         {`[{"client_id":"tv","scope_descriptions":{"a b":"Bee"}}]`, `clients.json:1:2: entry 1 ("tv"): scope_descriptions: "a b" is not a valid scope`},
		"descriptions not an object":  {`[{"client_id":"tv","scope_descriptions":["a"]}]`, `clients.json:1:2: entry 1: scope_descriptions must be an object, not a JSON array`},
		"syntax":                      {"[\n  {\"client_id\": \"tv\",}\n]", "clients.json:2:22: not valid JSON: invalid character '}'"},
		"object":                      {`{"client_id": "tv"}`, "clients.json:1:1: not a JSON array of clients"},
		"cut":                         {"[\n {\"client_id\": \"tv\"", "clients.json:2:19: not valid JSON: the text ends in the middle"},
		"trailing":                    {"[{\"client_id\": \"tv\"}]\n]", "clients.json:2:1: unexpected text after the list"},
		"empty":                       {"[ ]", "clients.json:1:1: the list is empty"},
	} {
		_, err := LoadFrom(env(m), files(map[string]string{"clients.json": tc.file}), false)
		if err == nil || !strings.Contains(err.Error(), "DEVICEGATE_CLIENTS_FILE: "+tc.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestPassthroughOnDefaultUpstream: a passthrough client on the default
// upstream needs its client id but not its secret.
func TestPassthroughOnDefaultUpstream(t *testing.T) {
	m := map[string]string{
		"DEVICEGATE_UPSTREAM_CLIENT_ID": "cid",
		"DEVICEGATE_CLIENTS":            `[{"client_id":"tv","mode":"passthrough"}]`,
	}
	c, err := Load(env(m), false)
	if err != nil {
		t.Fatal(err)
	}
	if tv, _ := c.Client("tv"); !tv.Passthrough() || tv.Upstream != nil {
		t.Errorf("%+v", tv)
	}
	m["DEVICEGATE_CLIENTS"] = `[{"client_id":"tv","mode":"passthrough"},{"client_id":"radio"}]`
	if _, err := Load(env(m), false); err == nil || !strings.Contains(err.Error(), "DEVICEGATE_UPSTREAM_CLIENT_SECRET: required") {
		t.Errorf("proxy client without the secret: %v", err)
	}
}

// FuzzParseClients: whatever a clients file holds, parsing does not panic,
// every problem names the file and a line:column inside it, and a list
// without problems is usable (ids present and unique, upstreams complete).
func FuzzParseClients(f *testing.F) {
	for _, seed := range []string{
		`[{"client_id":"tv","name":"TV","scopes":["a"],"default_scopes":["a"]}]`,
		`[{"client_id":"pt","mode":"passthrough","upstream":{"preset":"strava","client_id":"1"}}]`,
		`[{"client_id":"g","upstream":{"preset":"generic","client_id":"1","client_secret_env":"S","auth_url":"https://a/x","token_url":"https://a/t","pkce":false}}]`,
		`[{"client_id":"o","upstream":{"preset":"oidc","issuer":"https://id.example","client_id":"1","client_secret_env":"S"}}]`,
		"[\n  {\"client_id\": \"tv\",}\n]", `{}`, `[1, "x", null]`, `[{"client_id":"tv"}] x`, "", "\xff",
	} {
		f.Add(seed)
	}
	getenv := func(k string) string {
		if k == "S" {
			return "secret"
		}
		return ""
	}
	pos := regexp.MustCompile(`^clients\.json:(\d+):(\d+): `)
	f.Fuzz(func(t *testing.T, data string) {
		clients, problems := parseClients([]byte(data), "clients.json", getenv, 10*time.Second)
		lines := strings.Count(data, "\n") + 1
		for _, p := range problems {
			m := pos.FindStringSubmatch(p)
			if m == nil {
				t.Fatalf("problem without a position: %q", p)
			}
			if line, _ := strconv.Atoi(m[1]); line < 1 || line > lines {
				t.Fatalf("problem at line %d of a %d-line file: %q", line, lines, p)
			}
		}
		if len(problems) > 0 {
			return
		}
		seen := map[string]bool{}
		for _, c := range clients {
			if c.ID == "" || seen[c.ID] {
				t.Fatalf("accepted a missing or repeated client_id: %+v", clients)
			}
			seen[c.ID] = true
			if c.Upstream != nil && (c.Upstream.Preset == "" || c.Upstream.ClientID == "") {
				t.Fatalf("accepted an incomplete upstream: %+v", c.Upstream)
			}
			if c.Passthrough() && (c.Secret != "" || (c.Upstream != nil && c.Upstream.ClientSecret != "")) {
				t.Fatalf("a passthrough client holds a secret: %+v", c)
			}
		}
	})
}

// TestInlineClientsHavePositions: DEVICEGATE_CLIENTS is usually one long
// line; its mistakes carry line:column as the clients file's do.
func TestInlineClientsHavePositions(t *testing.T) {
	for name, tc := range map[string]struct{ raw, want string }{
		"syntax": {`[{"client_id":"tv"},{"client_id":"radio",}]`, `DEVICEGATE_CLIENTS: 1:42: not valid JSON: invalid character '}'`},
		"entry":  {`[{"client_id":"tv"}, {"client_id":"radio","colour":"red"}]`, `DEVICEGATE_CLIENTS: 1:22: entry 2 ("radio"): unknown field "colour"`},
		"lines":  {"[\n {\"client_id\":\"tv\"},\n {\"client_id\":\"tv\"}\n]", `DEVICEGATE_CLIENTS: 3:2: entry 2 ("tv"): client_id appears twice`},
		"object": {`{"client_id":"tv"}`, `DEVICEGATE_CLIENTS: 1:1: not a JSON array of clients`},
		"empty":  {`[ ]`, `DEVICEGATE_CLIENTS: 1:1: the list is empty`},
	} {
		m := base()
		m["DEVICEGATE_CLIENTS"] = tc.raw
		if _, err := Load(env(m), false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}

// TestEachProblemOnce: a bad duration is reported once, with the reason
// that matters.
func TestEachProblemOnce(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"DEVICEGATE_POLL_INTERVAL", "500ms", "DEVICEGATE_POLL_INTERVAL: 500ms is out of range [1s, 1m0s]"},
		{"DEVICEGATE_POLL_INTERVAL", "1500ms", "DEVICEGATE_POLL_INTERVAL: 1.5s is not a whole number of seconds"},
		{"DEVICEGATE_POLL_INTERVAL", "2m", "DEVICEGATE_POLL_INTERVAL: 2m0s is out of range [1s, 1m0s]"},
		{"DEVICEGATE_POLL_INTERVAL", "soon", `DEVICEGATE_POLL_INTERVAL: "soon" is not a duration`},
		{"DEVICEGATE_CODE_LIFETIME", "10s", "DEVICEGATE_CODE_LIFETIME: 10s is out of range [1m0s, 30m0s]"},
	} {
		m := base()
		m[tc.name] = tc.value
		_, err := Load(env(m), false)
		if err == nil {
			t.Errorf("%s=%s accepted", tc.name, tc.value)
			continue
		}
		if n := strings.Count(err.Error(), tc.name+":"); n != 1 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: reported %d times, want once as %q:\n%v", tc.name, tc.value, n, tc.want, err)
		}
	}
}

// TestWarnings: settings that load but will not work as meant are named,
// with what to do instead; good settings warn about nothing.
func TestWarnings(t *testing.T) {
	const spotifyClient = `[{"client_id":"tv","upstream":{"preset":"spotify","client_id":"s","client_secret_env":"S"}}]`
	for _, tc := range []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"defaults", nil, nil},
		{"all interfaces", map[string]string{"DEVICEGATE_ADDR": "0.0.0.0:8080"},
			[]string{"DEVICEGATE_ADDR: 0.0.0.0:8080 listens on every interface, but without DEVICEGATE_PUBLIC_URL devicegate hands out http://127.0.0.1:8080, which a phone cannot reach"}},
		{"all interfaces, IPv6", map[string]string{"DEVICEGATE_ADDR": "[::]:9000"}, []string{"hands out http://127.0.0.1:9000, which a phone cannot reach"}},
		{"no host", map[string]string{"DEVICEGATE_ADDR": ":8080"}, []string{"DEVICEGATE_ADDR: :8080 listens on every interface"}},
		{"all interfaces with a public URL", map[string]string{"DEVICEGATE_ADDR": "0.0.0.0:8080", "DEVICEGATE_PUBLIC_URL": "https://gate.example.net", "DEVICEGATE_SECRET_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32))}, nil},
		{"localhost with Spotify", map[string]string{"DEVICEGATE_PUBLIC_URL": "http://localhost:8080"},
			[]string{"DEVICEGATE_PUBLIC_URL: Spotify refuses redirect URIs on localhost, so sign-ins would fail at Spotify; use the loopback IP instead: DEVICEGATE_PUBLIC_URL=http://127.0.0.1:8080, and register http://127.0.0.1:8080/api/callback"}},
		{"localhost with Strava", map[string]string{"DEVICEGATE_PUBLIC_URL": "http://localhost:8080", "DEVICEGATE_UPSTREAM": "strava"}, nil},
		{"localhost, a client on Spotify", map[string]string{"DEVICEGATE_PUBLIC_URL": "http://localhost", "DEVICEGATE_UPSTREAM": "strava", "DEVICEGATE_CLIENTS": spotifyClient, "S": "x"},
			[]string{"use the loopback IP instead: DEVICEGATE_PUBLIC_URL=http://127.0.0.1, and register"}},
		{"127.0.0.1 with Spotify", map[string]string{"DEVICEGATE_PUBLIC_URL": "http://127.0.0.1:8080"}, nil},
	} {
		m := base()
		maps.Copy(m, tc.set)
		c, err := Load(env(m), false)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(c.Warnings) != len(tc.want) {
			t.Errorf("%s: warnings %q, want %d", tc.name, c.Warnings, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(c.Warnings[i], w) {
				t.Errorf("%s: warning %q lacks %q", tc.name, c.Warnings[i], w)
			}
		}
	}
	if c, err := Load(env(map[string]string{"DEVICEGATE_PUBLIC_URL": "http://localhost:8080"}), true); err != nil || len(c.Warnings) != 0 {
		t.Errorf("demo on localhost: %v %q", err, c.Warnings)
	}
}

// TestUnknownVariables: a misspelled DEVICEGATE_* name is named with the
// closest real one; real names, the clients' secret variables and other
// programs' variables are not.
func TestUnknownVariables(t *testing.T) {
	m := base()
	m["DEVICEGATE_CLIENTS"] = `[{"client_id":"tv","secret_env":"DEVICEGATE_TV_SECRET"}]`
	m["DEVICEGATE_TV_SECRET"] = strongSecret
	c, err := Load(env(m), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ env, want string }{
		{"DEVICEGATE_UPSTREAM_CLIENTID=abc", "DEVICEGATE_UPSTREAM_CLIENTID: no such setting; ignored (did you mean DEVICEGATE_UPSTREAM_CLIENT_ID?)"},
		{"DEVICEGATE_POLL_INTERVALL=5s", "DEVICEGATE_POLL_INTERVALL: no such setting; ignored (did you mean DEVICEGATE_POLL_INTERVAL?)"},
		{"DEVICEGATE_PUBLICURL=https://x", "(did you mean DEVICEGATE_PUBLIC_URL?)"},
		{"DEVICEGATE_UPSTREAM_SECRET=super-secret-value", "DEVICEGATE_UPSTREAM_SECRET: no such setting; ignored (did you mean DEVICEGATE_UPSTREAM_CLIENT_SECRET?)"},
		{"DEVICEGATE_COLOUR=blue", "DEVICEGATE_COLOUR: no such setting; ignored"},
		{"DEVICEGATE_CLIENT_ID=tv", "DEVICEGATE_CLIENT_ID: read by devicegate-login, not by the server"},
		{"DEVICEGATE_ADDR=127.0.0.1:1", ""},
		{"DEVICEGATE_TV_SECRET=x", ""},
		{"DEVICEGATE_TEST_COSMOS=AccountEndpoint=x", ""},
		{"FUNCTIONS_CUSTOMHANDLER_PORT=1", ""},
		{"PATH=/usr/bin", ""},
	} {
		got := c.UnknownVariables([]string{tc.env})
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%s: warned %q", tc.env, got)
		case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
			t.Errorf("%s: got %q, want %q", tc.env, got, tc.want)
		case len(got) == 1 && strings.Contains(got[0], "super-secret-value"):
			t.Errorf("%s: a value reached the warning", tc.env)
		}
	}
	if len(c.UnknownVariables([]string{"DEVICEGATE_COLOUR=1", "DEVICEGATE_ADDR=x", "DEVICEGATE_SHAPE=2"})) != 2 {
		t.Error("not one warning per unknown name")
	}
}

// strongSecret is what openssl rand -base64 32 prints.
const strongSecret = "q0vN8mZ1c3YxT2pLr6W9sHk4uJdF7eGaBiC5oQyXlPw="

// TestWeakClientSecretRefused: a device client's secret under 128 bits of
// estimated entropy stops the start, with the variable named, no value
// shown, and how to make a good one; what openssl rand prints passes.
func TestWeakClientSecretRefused(t *testing.T) {
	for _, weak := range []string{"4711", "s3cret", "correcthorse", strings.Repeat("ab", 40), "Passw0rd!Passw0rd!"} {
		m := base()
		m["DEVICEGATE_CLIENTS"] = `[{"client_id":"tv","secret_env":"TV_SECRET"}]`
		m["TV_SECRET"] = weak
		_, err := Load(env(m), false)
		if err == nil {
			t.Errorf("secret of %d characters (%d bits estimated) accepted", len(weak), SecretBits(weak))
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "TV_SECRET") || !strings.Contains(msg, "openssl rand -base64 32") || strings.Contains(msg, weak) {
			t.Errorf("message %q: want the variable and openssl rand -base64 32, never the value", msg)
		}
	}
	for _, strong := range []string{strongSecret, "3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a"} {
		if bits := SecretBits(strong); bits < MinSecretBits {
			t.Errorf("a random 32-byte secret scores %d bits", bits)
		}
		m := base()
		m["DEVICEGATE_CLIENTS"] = `[{"client_id":"tv","secret_env":"TV_SECRET"}]`
		m["TV_SECRET"] = strong
		if _, err := Load(env(m), false); err != nil {
			t.Errorf("strong secret refused: %v", err)
		}
	}
}

// TestPublicURLNormalised: the public URL is kept as browsers serialise
// its origin (RFC 6454 §6.1), so the Origin check and every URL handed
// out agree with what a browser sends.
func TestPublicURLNormalised(t *testing.T) {
	for in, want := range map[string]string{
		"https://Host.Example:443":  "https://host.example",
		"https://host.example/":     "https://host.example",
		"HTTPS://HOST.example:8443": "https://host.example:8443",
		"http://127.0.0.1:80":       "http://127.0.0.1",
		"http://[::1]:8080/":        "http://[::1]:8080",
	} {
		m := base()
		m["DEVICEGATE_PUBLIC_URL"] = in
		m["DEVICEGATE_SECRET_KEY"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
		c, err := Load(env(m), false)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if c.PublicURL != want {
			t.Errorf("%s became %s, want %s", in, c.PublicURL, want)
		}
	}
}
