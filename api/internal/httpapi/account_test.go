package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/httpapi"
	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/faulty"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

// person is one browser at /devices.
type person struct {
	h      *harness
	client *http.Client
}

func (h *harness) person() *person {
	jar, _ := cookiejar.New(nil)
	return &person{h: h, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (p *person) do(method, path string, form url.Values, origin string) *response {
	p.h.t.Helper()
	var req *http.Request
	if form != nil {
		req, _ = http.NewRequest(method, p.h.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
	} else {
		req, _ = http.NewRequest(method, p.h.srv.URL+path, nil)
	}
	return p.h.do(req, p.client)
}

// startSignIn presses "Sign in" at /devices and returns the provider
// redirect's query.
func (p *person) startSignIn() url.Values {
	p.h.t.Helper()
	res := p.do(http.MethodPost, "/api/devices", url.Values{"action": {"signin"}, "provider": {"0"}}, p.h.srv.URL)
	if res.StatusCode != http.StatusSeeOther {
		p.h.t.Fatalf("sign-in: %d %s", res.StatusCode, res.body)
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), "https://accounts.acme.test/authorize?") {
		p.h.t.Fatalf("sign-in went to %s", loc)
	}
	return loc.Query()
}

// signIn signs the browser in at /devices as account sub.
func (p *person) signIn(sub string) {
	p.h.t.Helper()
	q := p.startSignIn()
	if q.Get("scope") != "openid" || q.Get("code_challenge_method") != "S256" {
		p.h.t.Fatalf("sign-in asks for scope %q with PKCE %q; want openid and S256", q.Get("scope"), q.Get("code_challenge_method"))
	}
	code := "dl-" + q.Get("state")[:8]
	p.h.provider.issueFor(code, q.Get("code_challenge"), sub)
	res := p.do(http.MethodGet, "/api/callback?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), nil, "")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/devices" {
		p.h.t.Fatalf("callback: %d %s %s", res.StatusCode, res.Header.Get("Location"), res.body)
	}
}

func (p *person) page() *response {
	p.h.t.Helper()
	return p.do(http.MethodGet, "/devices", nil, "")
}

var deviceIDField = regexp.MustCompile(`name="device" value="([0-9a-f]{12})"`)

// deviceIDs are the ids the page offers to disconnect.
func deviceIDs(body []byte) []string {
	var out []string
	for _, m := range deviceIDField.FindAllSubmatch(body, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// connect signs clientID's device in for the person with account sub and
// returns its refresh token.
func (h *harness) connect(clientID, sub string) string {
	h.t.Helper()
	res := h.post("/api/authorize", url.Values{"client_id": {clientID}})
	var g grant
	if err := json.Unmarshal(res.body, &g); err != nil {
		h.t.Fatal(err)
	}
	q := h.allow(g.UserCode)
	code := "code-" + q.Get("state")[:8]
	h.provider.issueFor(code, q.Get("code_challenge"), sub)
	cb := h.browse(http.MethodGet, "/api/callback?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), nil)
	if cb.StatusCode != http.StatusOK || !strings.Contains(string(cb.body), `href="/devices"`) {
		h.t.Fatalf("callback: %d; the success page should say where to disconnect the device: %s", cb.StatusCode, cb.body)
	}
	tok := h.poll(clientID, g.DeviceCode)
	if tok.StatusCode != http.StatusOK {
		h.t.Fatalf("poll: %d %s", tok.StatusCode, tok.body)
	}
	return tok.json(h.t)["refresh_token"].(string)
}

func (h *harness) refreshOK(clientID, rt string) bool {
	h.t.Helper()
	return h.post("/api/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}}).StatusCode == http.StatusOK
}

// TestDevicesListsOnlyTheAccountsOwn: a person sees the devices bound to
// their account by name, and nobody else's; without signing in, none.
func TestDevicesListsOnlyTheAccountsOwn(t *testing.T) {
	h := newHarness(t)
	h.connect("tv", "alice")
	h.connect("radio", "alice")
	h.connect("tv", "bob")

	anon := h.person().page()
	if anon.StatusCode != http.StatusOK || !strings.Contains(string(anon.body), "Sign in with Acme Music") || len(deviceIDs(anon.body)) != 0 {
		t.Fatalf("without a session: %d %s", anon.StatusCode, anon.body)
	}
	alice := h.person()
	alice.signIn("alice")
	page := string(alice.page().body)
	if !strings.Contains(page, "Living-room TV") || !strings.Contains(page, "Kitchen radio") {
		t.Errorf("alice's list: %s", page)
	}
	if n := len(deviceIDs([]byte(page))); n != 2 {
		t.Errorf("alice's list offers %d devices, want 2", n)
	}
	bob := h.person()
	bob.signIn("bob")
	bobIDs := deviceIDs(bob.page().body)
	if len(bobIDs) != 1 || strings.Contains(page, bobIDs[0]) {
		t.Errorf("bob's list %v; alice's page shows bob's device", bobIDs)
	}
	carol := h.person()
	carol.signIn("carol")
	if ids := deviceIDs(carol.page().body); len(ids) != 0 {
		t.Errorf("an account without devices sees %d", len(ids))
	}
	// The same account id at another provider is another account: the
	// bike's provider (Strava's preset) names none, so it is not offered.
	if strings.Contains(page, "Strava") {
		t.Error("a provider that names no accounts is offered for sign-in")
	}
}

// TestDevicesDisconnectOne: confirm, disconnect, the result page names
// the device; its refresh is then invalid_grant, the other one works.
func TestDevicesDisconnectOne(t *testing.T) {
	h := newHarness(t)
	tvRT := h.connect("tv", "alice")
	radioRT := h.connect("radio", "alice")
	alice := h.person()
	alice.signIn("alice")
	page := alice.page().body
	csrf := csrfFrom(t, page)
	var tvID string
	for _, id := range deviceIDs(page) {
		res := alice.do(http.MethodPost, "/api/devices", url.Values{"action": {"confirm"}, "device": {id}, "csrf": {csrf}}, h.srv.URL)
		if strings.Contains(string(res.body), "Disconnect Living-room TV") {
			tvID = id
		}
	}
	if tvID == "" {
		t.Fatal("no confirmation page names the TV")
	}
	res := alice.do(http.MethodPost, "/api/devices", url.Values{"action": {"disconnect"}, "device": {tvID}, "csrf": {csrf}}, h.srv.URL)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(res.body), "Living-room TV is disconnected") {
		t.Fatalf("disconnect: %d %s", res.StatusCode, res.body)
	}
	if h.refreshOK("tv", tvRT) {
		t.Error("the disconnected TV still refreshes")
	}
	if !h.refreshOK("radio", radioRT) {
		t.Error("the radio stopped refreshing")
	}
	if ids := deviceIDs(alice.page().body); len(ids) != 1 {
		t.Errorf("after disconnecting, %d devices listed, want 1", len(ids))
	}
	out := alice.do(http.MethodPost, "/api/devices", url.Values{"action": {"signout"}, "csrf": {csrf}}, h.srv.URL)
	if out.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", out.StatusCode)
	}
	if body := alice.page().body; len(deviceIDs(body)) != 0 || !strings.Contains(string(body), "Sign in with") {
		t.Error("after signing out the list is still shown")
	}
}

// TestDevicesRefusesForgedPosts: a disconnect without this session's form
// token, with another session's, from another origin, or without a
// session is refused and removes nothing.
func TestDevicesRefusesForgedPosts(t *testing.T) {
	h := newHarness(t)
	tvRT := h.connect("tv", "alice")
	alice, bob := h.person(), h.person()
	alice.signIn("alice")
	bob.signIn("bob")
	page := alice.page().body
	id, csrf := deviceIDs(page)[0], csrfFrom(t, page)
	bobCSRF := csrfFrom(t, bob.page().body)
	for name, c := range map[string]struct {
		p      *person
		csrf   string
		origin string
	}{
		"no token":                {alice, "", h.srv.URL},
		"another session's token": {alice, bobCSRF, h.srv.URL},
		"another origin":          {alice, csrf, "https://evil.test"},
		"no session":              {h.person(), csrf, h.srv.URL},
	} {
		res := c.p.do(http.MethodPost, "/api/devices", url.Values{"action": {"disconnect"}, "device": {id}, "csrf": {c.csrf}}, c.origin)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, res.StatusCode)
		}
	}
	if !h.refreshOK("tv", tvRT) {
		t.Error("a refused post disconnected the device")
	}
}

// TestDevicesRefusesAnotherAccountsDevice: bob, signed in with a valid
// form token, cannot see or disconnect alice's device by its id.
func TestDevicesRefusesAnotherAccountsDevice(t *testing.T) {
	h := newHarness(t)
	tvRT := h.connect("tv", "alice")
	alice, bob := h.person(), h.person()
	alice.signIn("alice")
	bob.signIn("bob")
	id := deviceIDs(alice.page().body)[0]
	bobCSRF := csrfFrom(t, bob.page().body)
	for _, action := range []string{"confirm", "disconnect"} {
		res := bob.do(http.MethodPost, "/api/devices", url.Values{"action": {action}, "device": {id}, "csrf": {bobCSRF}}, h.srv.URL)
		if res.StatusCode != http.StatusNotFound || strings.Contains(string(res.body), "Living-room TV") {
			t.Errorf("%s of another account's device: %d %s", action, res.StatusCode, res.body)
		}
	}
	if !h.refreshOK("tv", tvRT) {
		t.Error("another account disconnected the device")
	}
	// Enumeration: another account's id answers exactly as an id that
	// names nothing does.
	mine := bob.do(http.MethodPost, "/api/devices", url.Values{"action": {"confirm"}, "device": {id}, "csrf": {bobCSRF}}, h.srv.URL)
	none := bob.do(http.MethodPost, "/api/devices", url.Values{"action": {"confirm"}, "device": {"0123456789ab"}, "csrf": {bobCSRF}}, h.srv.URL)
	if mine.StatusCode != none.StatusCode || string(mine.body) != string(none.body) {
		t.Error("another account's device id is told apart from an unknown one")
	}
}

// TestDevicesRateLimited: every request to the page counts against the
// person's-side budget before the store is read, so device ids cannot be
// tried and lists cannot be read faster than codes can.
func TestDevicesRateLimited(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{Limit: 10, Window: 10 * time.Minute}, false))
	h.connect("tv", "alice")
	alice := h.person()
	alice.signIn("alice")
	before := h.store.Calls(faulty.OpEachBinding)
	var ok, limited int
	for range 20 {
		switch res := alice.page(); {
		case res.StatusCode == http.StatusOK:
			ok++
		case res.StatusCode == http.StatusTooManyRequests && res.Header.Get("Retry-After") != "":
			limited++
		default:
			t.Fatalf("answer %d", res.StatusCode)
		}
	}
	reads := h.store.Calls(faulty.OpEachBinding) - before
	if limited == 0 || ok >= 10 || reads != ok {
		t.Errorf("20 list views under a budget of 10 shared with the code pages: %d shown, %d limited, %d store listings", ok, limited, reads)
	}
}

// TestDevicesSessionCannotBeFixedOrForged: a callback without this
// browser's login cookie (an attacker's link carrying the attacker's own
// code and state) signs nobody in; an altered session cookie and an
// expired one show the sign-in.
func TestDevicesSessionCannotBeFixedOrForged(t *testing.T) {
	h := newHarness(t)
	h.connect("tv", "alice")
	mallory := h.person()
	q := mallory.startSignIn()
	code := "dl-" + q.Get("state")[:8]
	h.provider.issueFor(code, q.Get("code_challenge"), "mallory")
	victim := h.person()
	victim.do(http.MethodGet, "/api/callback?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), nil, "")
	if jarCookie(victim.client.Jar, h.srv.URL, "devicegate-account") != nil {
		t.Fatal("a callback without this browser's login cookie set a session")
	}
	// A login cookie holding another state does not claim the callback,
	// even where nothing else would catch it: mallory's code here is bound
	// to the victim's PKCE challenge, as with a provider without PKCE.
	vq := victim.startSignIn()
	code2 := "dl2-" + q.Get("state")[:8]
	h.provider.issueFor(code2, vq.Get("code_challenge"), "mallory")
	res := victim.do(http.MethodGet, "/api/callback?"+url.Values{"code": {code2}, "state": {q.Get("state")}}.Encode(), nil, "")
	if res.StatusCode == http.StatusSeeOther {
		t.Fatal("a callback with another sign-in's state set a session")
	}

	alice := h.person()
	alice.signIn("alice")
	u := mustURL(h.srv.URL)
	sess := jarCookie(alice.client.Jar, h.srv.URL, "devicegate-account")
	if sess == nil {
		t.Fatal("no session cookie")
	}
	// A cookie made from alice's account hash (as a store leak would
	// give it) with a later expiry and a made-up MAC lists nothing.
	var aliceHash string
	h.store.EachBinding(context.Background(), func(b *store.Binding) error { aliceHash = b.Account; return nil })
	parts := strings.Split(sess.Value, ".")
	if aliceHash == "" || len(parts) != 4 || !strings.Contains(parts[0], aliceHash) {
		t.Fatalf("the session cookie does not have the expected form")
	}
	forged := h.person()
	forged.client.Jar.SetCookies(u, []*http.Cookie{{Name: "devicegate-account",
		Value: aliceHash + "." + strconv.FormatInt(h.clock.Now().Add(time.Hour).Unix(), 10) + "." + parts[2] + "." + strings.Repeat("0", 64)}})
	if ids := deviceIDs(forged.page().body); len(ids) != 0 {
		t.Error("a session cookie with a made-up MAC lists devices")
	}
	h.clock.Advance(11 * time.Minute)
	if body := alice.page().body; len(deviceIDs(body)) != 0 || !strings.Contains(string(body), "Sign in with") {
		t.Error("a session older than its lifetime still lists devices")
	}
}

// TestDevicesSessionCookieAttributes: HttpOnly, SameSite=Lax, Path=/, a
// lifetime of minutes.
func TestDevicesSessionCookieAttributes(t *testing.T) {
	h := newHarness(t)
	p := h.person()
	q := p.startSignIn()
	code := "dl-" + q.Get("state")[:8]
	h.provider.issueFor(code, q.Get("code_challenge"), "alice")
	res := p.do(http.MethodGet, "/api/callback?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), nil, "")
	c := cookieNamed(res, "devicegate-account")
	if c == nil {
		t.Fatal("no session cookie set")
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge <= 0 || c.MaxAge > 600 {
		t.Errorf("session cookie %+v", c)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

var _ = httpapi.Routes

// TestDevicesListsPassthroughDevices: a passthrough device's tokens are
// exchanged at its poll; its account is recorded then, and it is listed.
func TestDevicesListsPassthroughDevices(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("kiosk", "")
	q := h.allow(g.UserCode)
	code := "code-" + q.Get("state")[:8]
	h.provider.issueFor(code, q.Get("code_challenge"), "alice")
	if res := h.browse(http.MethodGet, "/api/callback?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), nil); res.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d", res.StatusCode)
	}
	if res := pollWith(h, g.DeviceCode); res.StatusCode != http.StatusOK {
		t.Fatalf("poll: %d %s", res.StatusCode, res.body)
	}
	alice := h.person()
	alice.signIn("alice")
	if page := alice.page().body; !strings.Contains(string(page), "Shop kiosk") || len(deviceIDs(page)) != 1 {
		t.Errorf("the passthrough device is not listed: %s", page)
	}
}

// TestDevicesPageHeaders: the page carries the pages' CSP (forms to self
// and the providers only) and is never cached.
func TestDevicesPageHeaders(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/devices", "/api/devices"} {
		res := h.person().do(http.MethodGet, path, nil, "")
		if csp := res.Header.Get("Content-Security-Policy"); res.StatusCode != http.StatusOK || !strings.Contains(csp, "form-action 'self' https://accounts.acme.test") ||
			res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: %d, CSP %q, Cache-Control %q", path, res.StatusCode, csp, res.Header.Get("Cache-Control"))
		}
	}
}

// TestCosmosCostOfDevicesPage measures on Cosmos DB what a sign-in flow
// costs now that it records the account — the same as before: the hash
// rides on the binding's upsert (TestCosmosCostPerFlowAndRevoke's 6 reads,
// 2 creates, 4 replaces, 1 upsert, plus here 2 counter patches of the
// verify limit, which that test leaves off: two requests, each counting
// the address and its /24 in one patch) — and what the person's list
// costs: per view the person's-side rate count (one patch) and one
// cross-partition query; a disconnect the same and one delete.
func TestCosmosCostOfDevicesPage(t *testing.T) {
	c := storetest.NewClock()
	st := openCosmos(t, c)
	h := newHarness(t, withBackend(st, c), withLimits(ratelimit.Rule{}, ratelimit.Rule{Limit: 100, Window: 10 * time.Minute}, false))
	h.connect("tv", "alice") // the first flow of a window creates the rate counters
	st.ResetStats()
	h.connect("radio", "alice")
	f := st.Stats()
	t.Logf("Cosmos cost of one sign-in flow recording the account: %+v", f)
	if f.Queries != 0 || f.PointReads != 6 || f.Creates != 2 || f.Replaces != 4 || f.Upserts != 1 || f.Patches != 2 || f.Deletes != 0 {
		t.Errorf("sign-in cost %+v", f)
	}
	alice := h.person()
	alice.signIn("alice")
	page := alice.page().body
	st.ResetStats()
	page = alice.page().body
	v := st.Stats()
	t.Logf("Cosmos cost of one /devices view: %+v", v)
	if v.Queries != 1 || v.Patches != 1 || v.PointReads+v.Creates+v.Replaces+v.Upserts+v.Deletes != 0 {
		t.Errorf("view cost %+v", v)
	}
	st.ResetStats()
	res := alice.do(http.MethodPost, "/api/devices", url.Values{"action": {"disconnect"}, "device": {deviceIDs(page)[0]}, "csrf": {csrfFrom(t, page)}}, h.srv.URL)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("disconnect: %d", res.StatusCode)
	}
	d := st.Stats()
	t.Logf("Cosmos cost of one disconnect: %+v", d)
	if d.Queries != 1 || d.Deletes != 1 || d.Patches != 1 || d.PointReads+d.Creates+d.Replaces+d.Upserts != 0 {
		t.Errorf("disconnect cost %+v", d)
	}
}
