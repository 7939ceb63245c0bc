package config

import (
	"bytes"
	"encoding/base64"
	"os"
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
	m["TV_SECRET"] = "tvsecret"
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
	if c.Upstream.Name != "Acme" || c.Upstream.PKCE || cl.Secret != "tvsecret" || cl.Public() || cl.AllowsScope("c") || !cl.AllowsScope("b") ||
		c.CodeLifetime != 5*time.Minute || c.PollInterval != 10*time.Second || len(c.SecretKey) != 32 {
		t.Errorf("%+v %+v", c, cl)
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
		`entry 1 ("tv"): client_id appears twice`, "secret_env names MISSING", "entry 2: client_id is required",
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

// TestREADMEDocumentsEveryVariable keeps the README's table and Vars in
// step, so no setting goes undocumented.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars {
		if !strings.Contains(string(readme), "`"+v.Name+"`") {
			t.Errorf("README.md does not document %s", v.Name)
		}
	}
	src, _ := os.ReadFile("config.go")
	for _, v := range Vars {
		if strings.Count(string(src), `"`+v.Name+`"`) < 2 {
			t.Errorf("%s is listed in Vars but never read", v.Name)
		}
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
