package main

// Protections the wiring provides, tested through run() with the
// environment a user sets: client addresses and the default rate limits,
// the server's header cap and timeouts, the key file, and (by reading the
// source) the constant-time comparisons. Each fails when its protection
// alone is removed; scripts/mutants.sh removes each in turn.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/serve"
)

// baseEnv is a minimal production-like configuration on the memory store:
// one public client "tv" and one confidential "box", the default upstream
// (never contacted by these tests).
func baseEnv(extra ...string) []string {
	return append([]string{
		"DEVICEGATE_STORE=memory",
		"DEVICEGATE_UPSTREAM_CLIENT_ID=up", "DEVICEGATE_UPSTREAM_CLIENT_SECRET=up-secret",
		`DEVICEGATE_CLIENTS=[{"client_id":"tv","name":"TV"}]`,
	}, extra...)
}

// startRun runs devicegate as main does, with args and environ, on a free
// loopback port until the test ends; it returns the base URL and the log.
func startRun(t *testing.T, environ []string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, environ, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	re := regexp.MustCompile(`msg="devicegate is ready".* listen=(127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			return "http://" + m[1], logs
		}
		select {
		case err := <-done:
			t.Fatalf("run ended: %v\n%s", err, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("devicegate did not start:\n%s", logs.String())
	return "", nil
}

// get sends a GET with an X-Forwarded-For header (if xff is not empty).
func get(t *testing.T, u, xff string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func postForm(t *testing.T, u, xff string, form url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// countedAs is the address /api/health says the caller is counted under.
func countedAs(t *testing.T, base, xff string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/health", nil)
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var h struct {
		Client string `json:"client"`
	}
	if err := json.NewDecoder(res.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h.Client
}

// TestClientAddressThroughTheWiring: with DEVICEGATE_TRUSTED_PROXY unset,
// X-Forwarded-For changes neither the address a caller is counted under
// nor its budget; with it set, the default hop count (1) takes the last
// entry, and DEVICEGATE_TRUSTED_PROXY_HOPS=2 the one before.
func TestClientAddressThroughTheWiring(t *testing.T) {
	const xff = "198.51.100.7, 203.0.113.9"
	t.Run("default: the header is ignored", func(t *testing.T) {
		base, logs := startRun(t, baseEnv())
		if got := countedAs(t, base, xff); got != "127.0.0.1" {
			t.Errorf("counted as %q with a forged X-Forwarded-For, want the connection's 127.0.0.1", got)
		}
		if !strings.Contains(logs.String(), "X-Forwarded-For is ignored") {
			t.Errorf("the start does not say the header is ignored:\n%s", logs)
		}
		// The budget (default 20 per 10 minutes) is the connection's, however
		// the header varies.
		for i := range 21 {
			res := get(t, base+"/api/verify?user_code=BBBB-BBBB", fmt.Sprintf("192.0.2.%d", i+1))
			if want := map[bool]int{true: http.StatusNotFound, false: http.StatusTooManyRequests}[i < 20]; res.StatusCode != want {
				t.Fatalf("code lookup %d with a fresh forged address: %d, want %d", i+1, res.StatusCode, want)
			}
		}
	})
	t.Run("trusted, default one hop", func(t *testing.T) {
		base, _ := startRun(t, baseEnv("DEVICEGATE_TRUSTED_PROXY=true"))
		if got := countedAs(t, base, xff); got != "203.0.113.9" {
			t.Errorf("counted as %q, want the entry the one trusted proxy appended, 203.0.113.9", got)
		}
	})
	t.Run("trusted, two hops", func(t *testing.T) {
		base, _ := startRun(t, baseEnv("DEVICEGATE_TRUSTED_PROXY=true", "DEVICEGATE_TRUSTED_PROXY_HOPS=2"))
		if got := countedAs(t, base, xff); got != "198.51.100.7" {
			t.Errorf("counted as %q, want 198.51.100.7", got)
		}
	})
}

// TestDefaultLimitsThroughTheWiring: the documented default limits hold
// on a server started with no rate settings — device authorizations
// 30/10 min and refreshes 30/10 min per address, refreshes 600/10 min per
// client (from 601 addresses behind a trusted proxy). The code-lookup
// default (20) is checked by TestClientAddressThroughTheWiring.
func TestDefaultLimitsThroughTheWiring(t *testing.T) {
	base, _ := startRun(t, baseEnv())
	for i := range 31 {
		res := postForm(t, base+"/api/authorize", "", url.Values{"client_id": {"tv"}})
		if want := map[bool]int{true: http.StatusOK, false: http.StatusTooManyRequests}[i < 30]; res.StatusCode != want {
			t.Fatalf("device authorization %d: %d, want %d", i+1, res.StatusCode, want)
		}
	}
	junk := url.Values{"client_id": {"tv"}, "grant_type": {"refresh_token"}, "refresh_token": {"junk"}}
	for i := range 31 {
		res := postForm(t, base+"/api/token", "", junk)
		if want := map[bool]int{true: http.StatusBadRequest, false: http.StatusTooManyRequests}[i < 30]; res.StatusCode != want {
			t.Fatalf("refresh %d from one address: %d, want %d", i+1, res.StatusCode, want)
		}
	}

	base, _ = startRun(t, baseEnv("DEVICEGATE_TRUSTED_PROXY=true"))
	for i := range 601 {
		xff := fmt.Sprintf("10.%d.%d.1", i/250, i%250)
		res := postForm(t, base+"/api/token", xff, junk)
		if want := map[bool]int{true: http.StatusBadRequest, false: http.StatusTooManyRequests}[i < 600]; res.StatusCode != want {
			t.Fatalf("refresh %d of one client, each from its own address: %d, want %d", i+1, res.StatusCode, want)
		}
	}
}

// TestServerLimits: the server run() starts refuses a header block over
// its 32 KiB cap (net/http allows 4 KiB of slack), and the server serve
// builds has the read-header, read, write and idle timeouts (a slow
// client is cut off; Azure cuts requests at 45 s, so writes end before).
func TestServerLimits(t *testing.T) {
	base, _ := startRun(t, baseEnv())
	req, _ := http.NewRequest(http.MethodGet, base+"/api/health", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 40<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 40 KiB header: %d, want 431", res.StatusCode)
	}
	if res := get(t, base+"/api/health", ""); res.StatusCode != http.StatusOK {
		t.Errorf("an ordinary request: %d", res.StatusCode)
	}

	srv := serve.NewServer(http.NotFoundHandler(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	for name, d := range map[string]struct {
		got, max time.Duration
	}{
		"ReadHeaderTimeout": {srv.ReadHeaderTimeout, 10 * time.Second},
		"ReadTimeout":       {srv.ReadTimeout, 30 * time.Second},
		"WriteTimeout":      {srv.WriteTimeout, 45 * time.Second},
		"IdleTimeout":       {srv.IdleTimeout, 2 * time.Minute},
	} {
		if d.got <= 0 || d.got > d.max {
			t.Errorf("%s %v, want a timeout of at most %v", name, d.got, d.max)
		}
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 32<<10 {
		t.Errorf("MaxHeaderBytes %d", srv.MaxHeaderBytes)
	}
}

// TestSecretsComparedInConstantTime reads the source: each comparison of
// a secret (a client secret, a state, a form token, a stored hash) must be
// subtle.ConstantTimeCompare or hmac.Equal, never == or !=, so its timing
// says nothing about how much of a guess was right. A timing difference
// cannot be measured reliably in a test, hence the source check.
func TestSecretsComparedInConstantTime(t *testing.T) {
	for _, c := range []struct {
		file, fn string
		operands []string // each must appear in one constant-time call's arguments
	}{
		{"internal/httpapi/api.go", "authenticateClient", []string{"secret", "c.Secret"}},
		{"internal/httpapi/verify.go", "callback", []string{"state", "cookieState"}},
		{"internal/deviceflow/refresh.go", "CheckDecisionToken", []string{"presented", "h.Hash(kindDecision, decisionInput(browserToken, recordID))"}},
		{"internal/deviceflow/refresh.go", "CheckRefresh", []string{"b.ClientID", "clientID"}},
		{"internal/deviceflow/refresh.go", "CheckRefresh", []string{"b.Upstream", "upstream"}},
		{"internal/deviceflow/service.go", "ClaimCallback", []string{"r.StateHash", "h.Hash(kindState, state)"}},
	} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, c.file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		text := func(n ast.Node) string {
			var b bytes.Buffer
			printer.Fprint(&b, fset, n)
			return b.String()
		}
		var body *ast.BlockStmt
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == c.fn {
				body = fd.Body
			}
		}
		if body == nil {
			t.Errorf("%s: no function %s (moved? update this test)", c.file, c.fn)
			continue
		}
		found := false
		ast.Inspect(body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				fn := text(n.Fun)
				if fn != "subtle.ConstantTimeCompare" && fn != "hmac.Equal" {
					return true
				}
				args := ""
				for _, a := range n.Args {
					args += text(a) + "\n"
				}
				all := true
				for _, op := range c.operands {
					all = all && strings.Contains(args, "[]byte("+op+")")
				}
				found = found || all
			case *ast.BinaryExpr:
				// An emptiness check (== "") reveals nothing of a value.
				if n.Op != token.EQL && n.Op != token.NEQ || text(n.X) == `""` || text(n.Y) == `""` {
					return true
				}
				for _, side := range []ast.Expr{n.X, n.Y} {
					s := text(side)
					for _, op := range c.operands {
						if s == op || s == "[]byte("+op+")" || s == "string("+op+")" {
							t.Errorf("%s %s: %s compared with %s at %s", c.file, c.fn, op, n.Op, fset.Position(n.Pos()))
						}
					}
				}
			}
			return true
		})
		if !found {
			t.Errorf("%s %s: %v are not compared with subtle.ConstantTimeCompare or hmac.Equal", c.file, c.fn, c.operands)
		}
	}
}
