package main

// Guessing attacks tried through the real wiring (config.Load → build →
// the router), with the default limits: issue "no secret guessed, no
// prefix of the internet with a budget of its own". SECURITY.md names them.

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/serve"
)

// serveAppLogs is serveApp with the app's log kept for the test.
func serveAppLogs(t *testing.T, cfg *config.Config) (string, *syncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	a, err := build(cfg, slog.New(slog.NewTextHandler(logs, nil)), serve.LoopbackURL(ln.Addr()))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); a.close() })
	return "http://" + ln.Addr().String(), logs
}

// postFrom posts a form as if from address ip (X-Forwarded-For, read when
// DEVICEGATE_TRUSTED_PROXY is true) and returns the status, Retry-After
// and the answer's error code.
func postFrom(t *testing.T, base, path, ip string, form url.Values, header ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(res.Body)
	json.Unmarshal(b, &e)
	return res.StatusCode, res.Header.Get("Retry-After"), e.Error
}

// getFrom gets path as if from address ip and returns the status; the
// entry form sends a typed code this way (a posted code is redirected here).
func getFrom(t *testing.T, base, path, ip string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("X-Forwarded-For", ip)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

const strongDeviceSecret = "q0vN8mZ1c3YxT2pLr6W9sHk4uJdF7eGaBiC5oQyXlPw="

func confidentialConfig(t *testing.T, extra map[string]string) *config.Config {
	t.Helper()
	env := map[string]string{
		"DEVICEGATE_STORE":   "memory",
		"DEVICEGATE_CLIENTS": `[{"client_id":"console","name":"Console","scopes":["profile"],"secret_env":"CONSOLE_SECRET"},{"client_id":"demo","name":"Demo device","scopes":["profile"]}]`,
		"CONSOLE_SECRET":     strongDeviceSecret,
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.Load(envMap(env), true)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestClientSecretGuessingLimited: 300 wrong client secrets from one
// address, at the device authorization endpoint and at the token endpoint
// (device_code and refresh_token grants): with the default budget (10
// failures per address per 10 minutes) 10 are compared and answered
// invalid_client, the rest 429 slow_down with Retry-After — the right
// secret too, since it is refused before it is compared — while another
// address still authenticates. Each failure is logged with the client and
// the address, never the value tried.
func TestClientSecretGuessingLimited(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		form       url.Values
	}{
		{"authorize", "/api/authorize", url.Values{}},
		{"device_code", "/api/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"x"}}},
		{"refresh_token", "/api/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, logs := serveAppLogs(t, confidentialConfig(t, map[string]string{"DEVICEGATE_TRUSTED_PROXY": "true"}))
			compared, limited := 0, 0
			for i := range 300 {
				form := url.Values{"client_id": {"console"}, "client_secret": {fmt.Sprintf("guess-%04d", i)}}
				for k, v := range tc.form {
					form[k] = v
				}
				st, retry, code := postFrom(t, base, tc.path, "203.0.113.66", form)
				switch {
				case st == http.StatusUnauthorized && code == "invalid_client":
					compared++
				case st == http.StatusTooManyRequests && code == "slow_down" && retry != "":
					limited++
				default:
					t.Fatalf("guess %d: %d %s (Retry-After %q)", i, st, code, retry)
				}
			}
			if compared != 10 || limited != 290 {
				t.Errorf("300 guesses: %d compared, %d limited; want 10 and 290", compared, limited)
			}
			right := url.Values{"client_id": {"console"}, "client_secret": {strongDeviceSecret}}
			for k, v := range tc.form {
				right[k] = v
			}
			if st, _, code := postFrom(t, base, tc.path, "203.0.113.66", right); st != http.StatusTooManyRequests {
				t.Errorf("the right secret from the blocked address: %d %s, want 429 (refused before comparing)", st, code)
			}
			if st, _, code := postFrom(t, base, tc.path, "198.51.100.7", right); st == http.StatusUnauthorized || st == http.StatusTooManyRequests {
				t.Errorf("the right secret from another address: %d %s", st, code)
			}
			log := logs.String()
			if n := strings.Count(log, `msg="client authentication failed" client_id=console address=203.0.113.66`); n != 10 {
				t.Errorf("%d failures logged, want 10:\n%s", n, log)
			}
			if strings.Contains(log, "guess-0") || strings.Contains(log, strongDeviceSecret) {
				t.Error("a secret reached the log")
			}
		})
	}
}

// TestClientSecretGuessingLimitedPerClient: guesses spread over many
// addresses (each under its own budget) still meet the client's budget,
// 100 failures per 10 minutes by default, after which every address is
// refused before comparing.
func TestClientSecretGuessingLimitedPerClient(t *testing.T) {
	base, _ := serveAppLogs(t, confidentialConfig(t, map[string]string{"DEVICEGATE_TRUSTED_PROXY": "true"}))
	compared := 0
	for i := range 300 {
		ip := fmt.Sprintf("10.%d.%d.1", i/200, i%200) // 300 /24s
		form := url.Values{"client_id": {"console"}, "client_secret": {fmt.Sprintf("guess-%04d", i)}}
		if st, _, _ := postFrom(t, base, "/api/authorize", ip, form); st == http.StatusUnauthorized {
			compared++
		}
	}
	if compared != 100 {
		t.Errorf("300 guesses from 300 networks: %d compared, want the client's 100", compared)
	}
	st, _, _ := postFrom(t, base, "/api/authorize", "192.0.2.200", url.Values{"client_id": {"console"}, "client_secret": {strongDeviceSecret}})
	if st != http.StatusTooManyRequests {
		t.Errorf("the right secret while the client is over its budget: %d, want 429", st)
	}
}

// TestPrefixBudgetsThroughTheWiring: 2,500 guessed user codes from 100
// /64s of one /48 (each /64 in a /56 of its own) reach the store at most
// the /48's budget: 8 × DEVICEGATE_RATE_VERIFY (20) = 160.
func TestPrefixBudgetsThroughTheWiring(t *testing.T) {
	base, _ := serveAppLogs(t, confidentialConfig(t, map[string]string{"DEVICEGATE_TRUSTED_PROXY": "true"}))
	processed := 0
	for i := range 2500 {
		ip := fmt.Sprintf("2001:db8:77:%x00::%x", i%100, i+1)
		if st := getFrom(t, base, "/api/verify?user_code="+guessedCode(i), ip); st != http.StatusTooManyRequests {
			processed++
		}
	}
	if processed > 160 {
		t.Errorf("2,500 guesses from 100 /64s of one /48: %d processed, want at most 160", processed)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// TestPublicURLWithDefaultPort: with DEVICEGATE_PUBLIC_URL=https://Host:443
// (accepted at start), a browser's honest Allow — Origin https://host, as
// browsers serialise it — goes on to the provider instead of being taken
// for a cross-site post.
func TestPublicURLWithDefaultPort(t *testing.T) {
	cfg := confidentialConfig(t, map[string]string{
		"DEVICEGATE_PUBLIC_URL": "https://Devicegate.Example:443/",
		"DEVICEGATE_SECRET_KEY": "q0vN8mZ1c3YxT2pLr6W9sHk4uJdF7eGaBiC5oQyXlPw=",
	})
	base, _ := serveAppLogs(t, cfg)
	res, err := http.PostForm(base+"/api/authorize", url.Values{"client_id": {"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		UserCode string `json:"user_code"`
		URI      string `json:"verification_uri"`
	}
	json.NewDecoder(res.Body).Decode(&g)
	res.Body.Close()
	if g.URI != "https://devicegate.example/device" {
		t.Errorf("verification_uri %q", g.URI)
	}
	res, err = http.Get(base + "/api/verify?user_code=" + url.QueryEscape(g.UserCode))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on the confirmation (%d)", res.StatusCode)
	}
	// The cookies are Secure (__Host-): a browser sends them to the https
	// origin; here they are passed by hand over the loopback.
	var cookies []string
	for _, c := range res.Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	st, _, _ := postFrom(t, base, "/api/verify", "", url.Values{"user_code": {g.UserCode}, "csrf": {string(m[1])}, "action": {"allow"}},
		"Origin", "https://devicegate.example", "Sec-Fetch-Site", "same-origin", "Cookie", strings.Join(cookies, "; "))
	if st != http.StatusFound {
		t.Errorf("honest Allow with Origin https://devicegate.example: %d, want 302 to the provider", st)
	}
}

// TestJunkPollsThroughTheWiring: with the default budget
// (DEVICEGATE_RATE_POLL_MISSES=30/10m), 100 polls of unknown device codes
// from one address get 30 invalid_grant answers and 70 429s.
func TestJunkPollsThroughTheWiring(t *testing.T) {
	base, _ := serveAppLogs(t, confidentialConfig(t, map[string]string{"DEVICEGATE_TRUSTED_PROXY": "true"}))
	counts := map[int]int{}
	for i := range 100 {
		st, _, _ := postFrom(t, base, "/api/token", "203.0.113.40", url.Values{"client_id": {"demo"},
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {fmt.Sprintf("junk-%d", i)}})
		counts[st]++
	}
	if counts[http.StatusBadRequest] != 30 || counts[http.StatusTooManyRequests] != 70 {
		t.Errorf("100 junk polls: %v, want 30 × 400 and 70 × 429", counts)
	}
}

// TestCodeMissCeilingThroughTheWiring: with the defaults
// (DEVICEGATE_RATE_VERIFY=20/10m, DEVICEGATE_RATE_CODE_MISSES=500/10m),
// 600 guessed codes from 30 networks, each within its own budget, cross
// the ceiling: it is logged as an error, and an address that never
// guessed gets 3 requests naming a code, not 20.
func TestCodeMissCeilingThroughTheWiring(t *testing.T) {
	base, logs := serveAppLogs(t, confidentialConfig(t, map[string]string{"DEVICEGATE_TRUSTED_PROXY": "true"}))
	for i := range 600 {
		ip := fmt.Sprintf("10.0.%d.1", i/20)
		getFrom(t, base, "/api/verify?user_code="+guessedCode(i), ip)
	}
	if !strings.Contains(logs.String(), `level=ERROR msg="ceiling of failed user-code lookups crossed`) {
		t.Error("crossing the ceiling was not logged as an error")
	}
	processed := 0
	for i := range 20 {
		if st := getFrom(t, base, "/api/verify?user_code="+guessedCode(5000+i), "192.0.2.77"); st != http.StatusTooManyRequests {
			processed++
		}
	}
	if processed != 3 {
		t.Errorf("a fresh address past the ceiling: %d processed, want 3", processed)
	}
}

// guessedCode is the i-th guessed user code: valid in shape, almost surely
// no live code.
func guessedCode(i int) string {
	const alphabet = "BCDFGHJKLMNPQRSTVWXZ"
	b := []byte("BBBBBBBB")
	for j := 7; j >= 0 && i > 0; j-- {
		b[j] = alphabet[i%len(alphabet)]
		i /= len(alphabet)
	}
	return string(b[:4]) + "-" + string(b[4:])
}
