package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cli/oauth/device"
	"golang.org/x/oauth2"

	"github.com/devicegate/devicegate/e2e/front"
	"github.com/devicegate/devicegate/e2e/op"
)

// verifyRule is the verify budget of the scale-out cluster: R requests
// naming a user code per client address per day. A day, so that the test
// never straddles a window (it waits out the last minutes before one).
const (
	verifyBudget = 12
	verifyRule   = "12/24h"
)

// cluster is several devicegate processes behind a round-robin front. Its
// stack's base is the front: that is the public URL the instances share.
type cluster struct {
	*stack
	front     *front.Front
	instances []string // each instance's own base URL
}

// newCluster starts n devicegate processes of the real binary on one Cosmos
// container with one secret key, behind a front that sends each request to
// the next instance in turn. The instances trust one proxy hop of
// X-Forwarded-For, which is what the front appends.
func newCluster(t *testing.T, cosmos string, n int) *cluster {
	t.Helper()
	c := &cluster{}
	for range n {
		c.instances = append(c.instances, fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	}
	var err error
	if c.front, err = front.Start(c.instances...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.front.Close() })
	c.stack = &stack{t: t, base: c.front.URL, logs: &syncBuffer{}}
	env := c.withProvider() // the provider's redirect URI is the front's callback
	maps.Copy(env, cosmosSettings(cosmos, "scale-"))
	maps.Copy(env, map[string]string{
		"DEVICEGATE_TRUSTED_PROXY":      "true",
		"DEVICEGATE_TRUSTED_PROXY_HOPS": "1",
		"DEVICEGATE_RATE_VERIFY":        verifyRule,
		// Long enough that two polls sent one after the other are early
		// however loaded the machine is (PollTolerance is 1 s).
		"DEVICEGATE_POLL_INTERVAL": "5s",
	})
	// Registered before the processes start, so it runs after they stop:
	// no code or token this test saw may be in any instance's log.
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, secret := range c.secrets {
			if strings.Contains(c.logs.String(), secret) {
				t.Errorf("a secret (%d characters) appears in an instance's log", len(secret))
			}
		}
	})
	for _, base := range c.instances {
		inst := &stack{t: t, base: base, logs: c.logs} // one log for all three
		e := maps.Clone(env)
		e["DEVICEGATE_ADDR"] = strings.TrimPrefix(base, "http://")
		inst.startDevicegate(e, op.ClientSecret)
	}
	return c
}

// spread returns how many requests each instance received since before.
func (c *cluster) spread(before []int) []int {
	now := c.front.Hits()
	for i := range now {
		now[i] -= before[i]
	}
	return now
}

// steps lists where the protocol's requests went (pages and assets left
// out), from the n-th request the front forwarded on.
func (c *cluster) steps(n int) string {
	var out []string
	for _, h := range c.front.Trail()[n:] {
		if strings.HasPrefix(h.Path, "/api/") || h.Path == "/device" {
			out = append(out, fmt.Sprintf("%s %s→%d", h.Method, h.Path, h.Instance+1))
		}
	}
	return strings.Join(out, ", ")
}

// requireEach fails unless every instance served at least min requests.
func requireEach(t *testing.T, what string, spread []int, min int) {
	t.Helper()
	for i, n := range spread {
		if n < min {
			t.Errorf("%s: instance %d served %d requests (all: %v), want at least %d", what, i+1, n, spread, min)
		}
	}
}

// from is an HTTP client whose connections come from the loopback address
// ip (127.0.0.0/8 is all loopback on Linux), so the front appends ip as the
// client's address: one test process can be several clients.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// page sends one request and returns the status and body.
func page(t *testing.T, hc *http.Client, method, u string, form url.Values, xff string) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestScaleOut: Azure Functions scales out, and every instance shares one
// Cosmos DB container. Three devicegate processes on one container, with
// one secret key, behind a front that sends each request to the next
// instance in turn, so no flow stays on one process. It proves that whole
// flows complete (browser included), that poll pacing, the one-time token
// hand-over, the verify budget and the code lockout hold across the
// instances (not once per instance), and that a refresh token works at
// every instance. SECURITY.md "Several instances" lists the state that
// stays in one process, and what it means.
func TestScaleOut(t *testing.T) {
	t.Parallel()
	cs := os.Getenv("DEVICEGATE_TEST_COSMOS")
	if cs == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("DEVICEGATE_TEST_COSMOS is unset under CI")
		}
		t.Skip("DEVICEGATE_TEST_COSMOS unset; scripts/e2e.sh starts the server")
	}
	c := newCluster(t, cs, 3)

	// Whole flows, each request on the next instance: the device
	// (golang.org/x/oauth2) with the person following the complete link,
	// then the GitHub CLI's library with the person typing the code. The
	// confirmation's form token, the state cookie and the PKCE verifier
	// are made on one instance and checked on another.
	before, mark := c.front.Hits(), len(c.front.Trail())
	signIn(t, c.stack, "scale-phone")
	code, err := device.RequestCode(httpClient, c.base+"/api/authorize", "tv", []string{"openid", "profile"})
	if err != nil {
		t.Fatal(err)
	}
	c.remember(code.DeviceCode, code.UserCode)
	b := newBrowser(t, "scale-desktop", 1280, 800)
	if result := b.approve(c.base+"/device", code.UserCode); !strings.Contains(result, "all set") {
		t.Errorf("typed-code flow, result page: %q", result)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tok, err := device.Wait(wctx, httpClient, c.base+"/api/token", device.WaitOptions{ClientID: "tv", DeviceCode: code})
	if err != nil {
		t.Fatalf("typed-code flow, device.Wait: %v", err)
	}
	c.remember(tok.Token)
	c.userinfo(tok.Token)
	requireEach(t, "two whole flows", c.spread(before), 3)
	t.Logf("two whole flows: requests per instance %v; the steps: %s", c.spread(before), c.steps(mark))

	// Each instance paces the polls it answers (store/cosmos pacing.go;
	// SECURITY.md, "Several instances"): polls in a row rotate over the n
	// instances, each of which takes its first as on time, and the
	// (n+1)-th, back at an instance that has answered within the
	// interval, is too early.
	_, _, da := begin(t, c.stack, 60*time.Second)
	mark = len(c.front.Trail())
	for i := range c.instances {
		if status, m := c.poll(da.DeviceCode); status != 400 || m["error"] != "authorization_pending" {
			t.Fatalf("poll %d in a row, each instance's first: %d %v", i+1, status, m["error"])
		}
	}
	if status, m := c.poll(da.DeviceCode); status != 400 || m["error"] != "slow_down" {
		t.Errorf("poll %d in a row, again at an instance within its interval: %d %v, want slow_down (route: %s)", len(c.instances)+1, status, m["error"], c.steps(mark))
	}

	// 50 concurrent polls of one approved code, spread over the three
	// instances: exactly one gets the tokens, every other one is told the
	// code is spent, none fails.
	ctx, cfg, da := begin(t, c.stack, 120*time.Second)
	approveOnPhone(t, da, "scale-fifty-phone")
	before = c.front.Hits()
	const polls = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		answers = map[string]int{}
		access  string
		refresh string
	)
	for range polls {
		wg.Go(func() {
			status, m := c.poll(da.DeviceCode)
			mu.Lock()
			defer mu.Unlock()
			if status == 200 {
				access, _ = m["access_token"].(string)
				refresh, _ = m["refresh_token"].(string)
				c.remember(access, refresh)
				answers["200 tokens"]++
				return
			}
			answers[fmt.Sprintf("%d %v", status, m["error"])]++
		})
	}
	wg.Wait()
	t.Logf("%d concurrent polls: %v; requests per instance %v", polls, answers, c.spread(before))
	if answers["200 tokens"] != 1 || answers["400 invalid_grant"] != polls-1 {
		t.Errorf("%d concurrent polls of one approved code answered %v, want one 200 and %d invalid_grant", polls, answers, polls-1)
	}
	requireEach(t, "50 polls", c.spread(before), polls/3-2)
	if access == "" || refresh == "" {
		t.Fatal("the one token answer lacks an access or refresh token")
	}
	c.userinfo(access)

	// The refresh token works at every instance: each one refreshes the
	// token the previous one handed out (the provider may rotate it).
	for i, inst := range c.instances {
		at := *cfg
		at.Endpoint.TokenURL = inst + "/api/token"
		fresh, err := at.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh, Expiry: time.Now().Add(-time.Minute)}).Token()
		if err != nil {
			t.Fatalf("refresh at instance %d: %v", i+1, err)
		}
		c.remember(fresh.AccessToken, fresh.RefreshToken)
		c.userinfo(fresh.AccessToken)
		if fresh.RefreshToken != "" {
			refresh = fresh.RefreshToken
		}
	}

	// The verify budget is one budget for all instances: of 3R requests
	// naming a code from one address, spread over the three, exactly R
	// are served. Every other one carries an X-Forwarded-For of its own
	// choosing, which the instances must ignore: they read the entry the
	// front appended.
	// Rate-limit windows are fixed (store.WindowStart): the 37 requests
	// below, a few seconds' work, must not straddle the day's boundary.
	if left := time.Until(time.Now().Truncate(24 * time.Hour).Add(24 * time.Hour)); left < time.Minute {
		t.Logf("waiting %v for the next rate-limit day", left.Round(time.Second))
		time.Sleep(left + time.Second)
	}
	attacker := from("127.0.0.2")
	before = c.front.Hits()
	served, refused := 0, 0
	for i := range 3 * verifyBudget {
		xff := ""
		if i%2 == 1 {
			xff = fmt.Sprintf("198.51.100.%d", i)
		}
		switch status, _ := page(t, attacker, http.MethodGet, c.base+"/api/verify?user_code=BCDF-GHJK", nil, xff); status {
		case http.StatusTooManyRequests:
			refused++
		case http.StatusNotFound, http.StatusOK:
			served++
		default:
			t.Errorf("guess %d: HTTP %d", i+1, status)
		}
	}
	t.Logf("%d guesses from one address over the instances: %d served, %d refused (budget %s); requests per instance %v",
		3*verifyBudget, served, refused, verifyRule, c.spread(before))
	if served != verifyBudget || refused != 2*verifyBudget {
		t.Errorf("%d guesses from one address: %d served, %d refused; want %d and %d (the budget counted once, not per instance)",
			3*verifyBudget, served, refused, verifyBudget, 2*verifyBudget)
	}
	requireEach(t, "guesses", c.spread(before), verifyBudget)
	// Another address has its own budget: the limit is keyed on the
	// address the front saw, not on the front's own.
	if status, _ := page(t, from("127.0.0.4"), http.MethodGet, c.base+"/api/verify?user_code=BCDF-GHJK", nil, ""); status == http.StatusTooManyRequests {
		t.Error("another client address was refused: the instances count every client as the front")
	}

	// The lockout is one count for all instances: MaxFailures (5) forged
	// decisions lock the code, though round robin gives no instance more
	// than two of them.
	_, _, da = begin(t, c.stack, 60*time.Second)
	forger := from("127.0.0.3")
	// As a browser does: the refusal is shown by the GET a 303 leads to
	// (POST/redirect/GET), from a flash cookie.
	forger.Jar, _ = cookiejar.New(nil)
	forger.CheckRedirect = nil
	forged := url.Values{"user_code": {da.UserCode}, "csrf": {"forged"}, "action": {"allow"}}
	before = c.front.Hits()
	for i := range 4 {
		if status, body := page(t, forger, http.MethodPost, c.base+"/api/verify", forged, ""); status != http.StatusForbidden || strings.Contains(body, "locked") {
			t.Errorf("forged decision %d: HTTP %d (locked: %v), want 403 and not locked yet", i+1, status, strings.Contains(body, "locked"))
		}
	}
	if status, body := page(t, forger, http.MethodGet, c.base+"/api/verify?user_code="+url.QueryEscape(da.UserCode), nil, ""); status != 200 || !strings.Contains(body, `value="allow"`) {
		t.Errorf("after 4 forged decisions the confirmation should still show: HTTP %d", status)
	}
	status, body := page(t, forger, http.MethodPost, c.base+"/api/verify", forged, "")
	t.Logf("5 forged decisions over the instances: the 5th answered HTTP %d; requests per instance %v", status, c.spread(before))
	if !strings.Contains(body, "locked") {
		t.Errorf("the 5th forged decision, spread over three instances, did not lock the code (HTTP %d)", status)
	}
	if status, m := c.poll(da.DeviceCode); status != 400 || m["error"] != "access_denied" || !strings.Contains(fmt.Sprint(m["error_description"]), "locked") {
		t.Errorf("the device after the lockout: %d %v %v", status, m["error"], m["error_description"])
	}
}
