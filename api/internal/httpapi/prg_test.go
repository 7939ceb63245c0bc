package httpapi_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawPost posts a form as the browser c would, without following the
// answer, and returns it with its body.
func rawPost(t *testing.T, h *harness, c *http.Client, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", h.srv.URL)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// wantSeeOther checks a form's answer is POST/redirect/GET: 303 to loc,
// no page in the body (Back then never lands on a POST's answer).
func wantSeeOther(t *testing.T, what string, res *http.Response, body, loc string) {
	t.Helper()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != loc || strings.Contains(body, "<html") {
		t.Errorf("%s: %d to %q, want 303 to %q and no page: %.200s", what, res.StatusCode, res.Header.Get("Location"), loc, body)
	}
}

// TestVerifyOutcomesArePostRedirectGet: Deny, and a decision refused
// (a token that is not this page's), are answered 303 to /api/verify,
// whose GET shows the outcome once, in the person's language and with
// its status; shown again (Back, reload) it is the code entry, not a
// form resubmission. Nothing of the outcome rides in the URL.
func TestVerifyOutcomesArePostRedirectGet(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	page := h.get("/api/verify?user_code="+url.QueryEscape(g.UserCode), "de")
	res, body := rawPost(t, h, h.browser, "/api/verify", url.Values{"user_code": {g.UserCode}, "csrf": {csrfFrom(t, page.body)}, "action": {"deny"}})
	wantSeeOther(t, "deny", res, body, "/api/verify")
	shown := h.get("/api/verify", "de")
	if shown.StatusCode != http.StatusOK {
		t.Errorf("the outcome page: %d", shown.StatusCode)
	}
	wantPage(t, "denied", shown, "de", "Zugriff abgelehnt")
	if again := h.get("/api/verify", "de"); again.StatusCode != http.StatusSeeOther || again.Header.Get("Location") != "/device" {
		t.Errorf("the outcome was shown twice: %d %q", again.StatusCode, again.Header.Get("Location"))
	}
	if p := h.poll("tv", g.DeviceCode).json(t); p["error"] != "access_denied" {
		t.Errorf("the device after Deny: %v", p)
	}

	g = h.authorize("tv", "")
	h.get("/api/verify?user_code="+url.QueryEscape(g.UserCode), "")
	res, body = rawPost(t, h, h.browser, "/api/verify", url.Values{"user_code": {g.UserCode}, "csrf": {"not-this-page"}, "action": {"allow"}})
	wantSeeOther(t, "refused decision", res, body, "/api/verify")
	shown = h.get("/api/verify", "fr")
	if shown.StatusCode != http.StatusForbidden {
		t.Errorf("the refused decision's page: %d, want 403", shown.StatusCode)
	}
	wantPage(t, "refused", shown, "fr", "Cette page est restée ouverte trop longtemps")
}

// TestDisconnectIsPostRedirectGet: Disconnect is answered 303 to
// /devices, which says once which device was disconnected and then lists
// the rest; "Disconnect X?" is itself a GET, so Back from the outcome
// lands on a page a browser can show again.
func TestDisconnectIsPostRedirectGet(t *testing.T) {
	h := newHarness(t)
	h.connect("tv", "alice")
	alice := h.person()
	alice.signIn("alice")
	list := alice.page().body
	id := deviceIDs(list)[0]
	if !strings.Contains(string(list), `<form method="get" action="/api/devices">`) {
		t.Error(`"Disconnect" does not open the confirmation by GET`)
	}
	confirm := alice.do(http.MethodGet, "/api/devices?"+url.Values{"device": {id}}.Encode(), nil, "")
	if confirm.StatusCode != http.StatusOK || !strings.Contains(string(confirm.body), "Disconnect Living-room TV") {
		t.Fatalf("confirmation by GET: %d %.300s", confirm.StatusCode, confirm.body)
	}
	res, body := rawPost(t, h, alice.client, "/api/devices", url.Values{"action": {"disconnect"}, "device": {id}, "csrf": {csrfFrom(t, confirm.body)}})
	wantSeeOther(t, "disconnect", res, body, "/devices")
	if strings.Contains(res.Header.Get("Location")+body, id) {
		t.Error("the outcome names the device's id in the URL or body")
	}
	done := alice.do(http.MethodGet, "/devices", nil, "")
	if done.StatusCode != http.StatusOK || !strings.Contains(string(done.body), "Living-room TV is disconnected") {
		t.Errorf("the outcome page: %d %.300s", done.StatusCode, done.body)
	}
	if again := alice.page(); strings.Contains(string(again.body), "is disconnected") || !strings.Contains(string(again.body), "No devices are connected") {
		t.Errorf("the outcome was shown twice, or the list is not back: %.300s", again.body)
	}
}

// TestFlashIsBoundAndShortLived: a flash cookie is believed only with the
// server's MAC, at the page it was made for, and for a minute.
func TestFlashIsBoundAndShortLived(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	page := h.browse(http.MethodGet, "/api/verify?user_code="+url.QueryEscape(g.UserCode), nil)
	res, _ := rawPost(t, h, h.browser, "/api/verify", url.Values{"user_code": {g.UserCode}, "csrf": {csrfFrom(t, page.body)}, "action": {"deny"}})
	var flash *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "devicegate-flash" {
			flash = c
		}
	}
	if flash == nil || flash.MaxAge <= 0 || flash.MaxAge > 60 || !flash.HttpOnly || flash.SameSite != http.SameSiteLaxMode {
		t.Fatalf("flash cookie %+v", flash)
	}
	get := func(path string, value string) *response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: "devicegate-flash", Value: value})
		return h.do(req, h.browser)
	}
	note, mac, _ := strings.Cut(flash.Value, ".")
	for name, v := range map[string]string{
		"another MAC":     note + "." + strings.Repeat("A", len(mac)),
		"no MAC":          note,
		"a changed note":  "e30." + mac,
		"another page's":  flash.Value, // shown at /devices
		"garbage":         "%%%",
		"an empty cookie": "",
	} {
		path := "/api/verify"
		if name == "another page's" {
			path = "/devices"
		}
		if res := get(path, v); strings.Contains(string(res.body), "result-denied") {
			t.Errorf("%s: the flash was believed", name)
		}
	}
	h.clock.Advance(2 * time.Minute)
	if res := get("/api/verify", flash.Value); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/device" {
		t.Errorf("a flash two minutes old was believed: %d", res.StatusCode)
	}
}
