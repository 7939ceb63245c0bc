package httpapi_test

// Guessing attacks on secrets and codes, each written to fail before its
// fix (issue "no secret guessed, no prefix of the internet with a budget of
// its own"). SECURITY.md names them; api/guess_test.go tries the same
// through the real wiring with the default limits.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/store/faulty"
	"github.com/devicegate/devicegate/api/internal/store/memory"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

var tenMin = func(n int) ratelimit.Rule { return ratelimit.Rule{Limit: n, Window: 10 * time.Minute} }

func fromIP(ip string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("X-Forwarded-For", ip) }
}

// TestJunkPollsLimitedBeforeTheStore: polls naming device codes that
// match nothing are counted per address; once the budget (5) is spent,
// the address's polls are answered 429 slow_down with Retry-After without
// reading the store, and a device elsewhere polls on.
func TestJunkPollsLimitedBeforeTheStore(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{}, true), withFailureLimits(ratelimit.Rule{}, ratelimit.Rule{}, tenMin(5), ratelimit.Rule{}))
	device := h.authorize("tv", "")
	reads := h.store.Calls(faulty.OpUpdate)
	answered, limited := countLimited(t, 50, http.StatusBadRequest, "invalid_grant", func(i int) *response {
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {"tv"}, "device_code": {"junk-" + strconv.Itoa(i)}}
		if i == 20 {
			form.Set("device_code", strings.Repeat("x", 600)) // too long to look up: counted all the same
		}
		return h.post("/api/token", form, fromIP("203.0.113.9"))
	})
	if answered != 5 || limited != 45 {
		t.Errorf("50 junk polls: %d answered, %d limited; want 5 and 45", answered, limited)
	}
	if got := h.store.Calls(faulty.OpUpdate) - reads; got != 5 {
		t.Errorf("50 junk polls read the store %d times, want 5", got)
	}
	res := h.post("/api/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {"tv"}, "device_code": {device.DeviceCode}}, fromIP("198.51.100.3"))
	wantOAuthError(t, res, http.StatusBadRequest, "authorization_pending")
}

// TestPassthroughSecretGuessingLimited: a passthrough device's secret is
// checked by the provider, so devicegate must not be an unlimited oracle
// for it. Each refusal by the provider counts as a failed client
// authentication (and is logged without the value); past the budget (3)
// the next polls are refused before anything reaches the provider, and
// the sign-in survives for the right secret from elsewhere.
func TestPassthroughSecretGuessingLimited(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{}, true), withFailureLimits(tenMin(3), ratelimit.Rule{}, ratelimit.Rule{}, ratelimit.Rule{}))
	g := h.authorize("kiosk", "")
	if res := h.approve(g.UserCode); res.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d", res.StatusCode)
	}
	poll := func(secret, ip string) *response {
		h.clock.Advance(5 * time.Second)
		return h.post("/api/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {"kiosk"},
			"device_code": {g.DeviceCode}, "client_secret": {secret}}, fromIP(ip))
	}
	for i := range 3 {
		wantOAuthError(t, poll("guess-"+strconv.Itoa(i), "203.0.113.50"), http.StatusUnauthorized, "invalid_client")
	}
	sent := h.provider.exchangeCount()
	for i := range 20 {
		res := poll("guess-more-"+strconv.Itoa(i), "203.0.113.50")
		wantOAuthError(t, res, http.StatusTooManyRequests, "slow_down")
	}
	if got := h.provider.exchangeCount(); got != sent {
		t.Errorf("%d guesses past the budget reached the provider", got-sent)
	}
	res := poll("up-secret", "198.51.100.50")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the right secret from another address: %d %s", res.StatusCode, res.body)
	}
	logs := h.logs.String()
	if n := strings.Count(logs, `msg="client authentication failed" client_id=kiosk address=203.0.113.50`); n != 3 {
		t.Errorf("%d failures logged, want 3", n)
	}
	if strings.Contains(logs, "guess-") {
		t.Error("a guessed secret reached the log")
	}
}

// TestCodeMissCeilingSlowsEveryAddress: guesses of user codes from many
// addresses, each within its own budget, add up to the deployment-wide
// ceiling (10 misses); crossing it is logged as an error, and from then
// on every address — even one that never guessed — gets only
// SlowedVerify requests naming a code per window. The count is the shared
// store's: two instances over one store see one ceiling, on every backend.
func TestCodeMissCeilingSlowsEveryAddress(t *testing.T) {
	backends := storeBackends()
	// Two instances share one store: memory too, here.
	backends["memory"] = func(*testing.T) harnessOpt {
		c := storetest.NewClock()
		return withBackend(memory.New(c.Now), c)
	}
	for name, backend := range backends {
		t.Run(name, func(t *testing.T) {
			opt := backend(t)
			limits := []harnessOpt{opt, withLimits(ratelimit.Rule{}, tenMin(20), true), withFailureLimits(ratelimit.Rule{}, ratelimit.Rule{}, ratelimit.Rule{}, tenMin(10))}
			a := newHarness(t, limits...)
			b := newHarness(t, limits...)
			// 5 misses at each instance, from 10 addresses.
			for i := range 10 {
				h := a
				if i%2 == 1 {
					h = b
				}
				res := h.post("/api/verify", url.Values{"user_code": {guessCode(i + 1)}}, fromIP("192.0.2."+strconv.Itoa(10+i)))
				if res.StatusCode != http.StatusNotFound {
					t.Fatalf("guess %d: %d", i, res.StatusCode)
				}
			}
			if !strings.Contains(b.logs.String(), `level=ERROR msg="ceiling of failed user-code lookups crossed`) {
				t.Errorf("crossing the ceiling was not logged as an error:\n%s", b.logs.String())
			}
			// Instance a learns of it at its next miss.
			a.post("/api/verify", url.Values{"user_code": {guessCode(99)}}, fromIP("192.0.2.99"))
			for _, h := range []*harness{a, b} {
				honest := fromIP("198.51.100.200")
				processed := 0
				for i := range 10 {
					if res := h.post("/api/verify", url.Values{"user_code": {guessCode(200 + i)}}, honest); res.StatusCode != http.StatusTooManyRequests {
						processed++
					}
				}
				if processed != 3 && h == a {
					t.Errorf("a fresh address while the ceiling is crossed: %d processed, want %d", processed, 3)
				}
				if processed != 0 && h == b {
					t.Errorf("the same address at the other instance: %d processed, want 0 (its slowed budget is shared)", processed)
				}
			}
		})
	}
}

// TestClientSecretComparedInConstantTime is a source check, since timing
// is not something a test can measure reliably: in the token and device
// authorization endpoints, a client secret is never compared with == or
// !=, and it is compared with subtle.ConstantTimeCompare.
func TestClientSecretComparedInConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "api.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	mentionsSecret := func(e ast.Expr) bool {
		found := false
		ast.Inspect(e, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				found = found || n.Sel.Name == "Secret"
			case *ast.Ident:
				found = found || n.Name == "secret" || n.Name == "basicSecret" || n.Name == "postSecret"
			}
			return true
		})
		return found
	}
	constantTime := 0
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			if call, ok := n.X.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "ConstantTimeCompare" {
					return true // its result, compared with 1
				}
			}
			if (n.Op == token.EQL || n.Op == token.NEQ) && (mentionsSecret(n.X) || mentionsSecret(n.Y)) {
				// Emptiness checks hold no timing signal about the value.
				if lit, ok := n.Y.(*ast.BasicLit); !ok || lit.Value != `""` {
					t.Errorf("%s: a secret compared with %s", fset.Position(n.Pos()), n.Op)
				}
			}
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "ConstantTimeCompare" {
				for _, a := range n.Args {
					if mentionsSecret(a) {
						constantTime++
						break
					}
				}
			}
		}
		return true
	})
	if constantTime == 0 {
		t.Error("the client secret is not compared with subtle.ConstantTimeCompare")
	}
}
