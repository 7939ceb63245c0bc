package pages

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/i18n"
)

const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(1)>`

func render(t *testing.T, fn func(*Renderer, *httptest.ResponseRecorder) error) string {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := fn(r, rec); err != nil {
		t.Fatal(err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Error("page is cacheable")
	}
	body := rec.Body.String()
	for _, bad := range []string{"<style", " style=", "<img src=x", "http://", "https://"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	// The only script is the entry page's own file: nothing inline.
	if n := strings.Count(body, "<script"); n != strings.Count(body, `<script src="/assets/device.js" defer></script>`) {
		t.Errorf("page holds a script other than /assets/device.js")
	}
	return body
}

func TestEntry(t *testing.T) {
	body := render(t, func(r *Renderer, w *httptest.ResponseRecorder) error {
		return r.Entry(w, 404, Locale{}, EntryData{UserCode: hostile, Error: Msg("entry.error.unknown")})
	})
	for _, want := range []string{`action="/api/verify"`, `name="user_code"`, `role="alert"`, `aria-invalid="true"`, "&lt;script&gt;", "We could not find that code",
		// The same help while typing as on /device: the script and where it writes.
		`<script src="/assets/device.js" defer></script>`, `<p class="hint" id="code-note" aria-live="polite"`, `data-plural-one="Codes use only the letters B C D`, `{letters} was left out`} {
		if !strings.Contains(body, want) {
			t.Errorf("entry page lacks %q", want)
		}
	}
}

func TestConfirm(t *testing.T) {
	body := render(t, func(r *Renderer, w *httptest.ResponseRecorder) error {
		return r.Confirm(w, 200, Locale{}, ConfirmData{ClientName: "Living-room TV " + hostile, ClientID: "tv", ProviderName: "Spotify",
			Scopes: []string{"streaming", "user-top-read", hostile}, UserCode: "BCDF-GHJK", CSRFToken: "tok123", ExpiresIn: 9*time.Minute + time.Second,
			ScopeText: map[string]string{"streaming": "Play music on this device", "user-top-read": "See your top " + hostile, "unasked": "Never shown"}})
	})
	if strings.Contains(body, "Never shown") {
		t.Error("a description of a scope not asked for is shown")
	}
	for _, want := range []string{"Connect Living-room TV", "Spotify", `>BCDF-GHJK</p>`, "your <strong>Spotify</strong> account", "Only continue if you started this on a device you own and can see right now", "choose Deny",
		// Described scopes read as sentences with the identifier after;
		// the others as their identifier, in the order asked.
		`<li class="described">Play music on this device <code>streaming</code></li><li class="described">See your top &lt;script&gt;`,
		`<code>user-top-read</code></li><li><code>&lt;script&gt;`,
		`name="csrf" value="tok123"`, `name="user_code" value="BCDF-GHJK"`, `value="allow"`, `value="deny"`, "about 10 minutes", "&lt;script&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("confirm page lacks %q", want)
		}
	}
}

func TestResults(t *testing.T) {
	tests := []struct {
		d    ResultData
		want []string
		not  []string // a Message replaces the kind's general explanation
	}{
		{ResultData{Kind: ResultSuccess}, []string{"all set", "result-success"}, nil},
		{ResultData{Kind: ResultDenied}, []string{"Access denied", "result-denied"}, nil},
		{ResultData{Kind: ResultExpired}, []string{"expired", `href="/device"`}, nil},
		{ResultData{Kind: ResultUsed}, []string{"already used"}, nil},
		{ResultData{Kind: ResultError, Message: Msg("result.error.no_code", "provider", "Spotify "+hostile)}, []string{"Something went wrong", "Spotify &lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(1)&gt; sent you back"}, []string{"could not finish this step"}},
		{ResultData{Kind: ResultSuccess, Message: Msg("result.success.passthrough", "provider", "Spotify")}, []string{"all set", "finishes signing in with Spotify itself."}, []string{"within a few seconds"}},
		{ResultData{Kind: ResultTooMany, RetryAfter: 4*time.Minute + time.Second}, []string{"Too many attempts", "5 minutes"}, nil},
		{ResultData{Kind: ResultTooMany, RetryAfter: 30 * time.Second}, []string{"30 seconds"}, nil},
		// The device and the provider are named when known.
		{ResultData{Kind: ResultSuccess, Device: "Living-room TV", Provider: "Spotify"}, []string{"Living-room TV is now connected to your Spotify account.", "within a few seconds"}, []string{"Return to your device"}},
		{ResultData{Kind: ResultSuccess, Device: hostile, Provider: "Spotify"}, []string{"&lt;img src=x onerror=alert(1)&gt; is now connected"}, []string{"<script>", "<img src=x"}},
		{ResultData{Kind: ResultSuccess, Device: "Living-room TV"}, []string{"Return to your device"}, []string{"connected to your"}},
		{ResultData{Kind: ResultDenied, Device: "Living-room TV", Provider: "Spotify"}, []string{"Nothing was shared with Living-room TV, and it has been told."}, []string{"your device has been told"}},
		{ResultData{Kind: ResultSuccess, Device: "Living-room TV", Provider: "Spotify", Message: Msg("result.success.passthrough", "provider", "Spotify")}, []string{"finishes signing in with Spotify itself."}, []string{"is now connected"}},
	}
	for _, tc := range tests {
		body := render(t, func(r *Renderer, w *httptest.ResponseRecorder) error { return r.Result(w, 200, Locale{}, tc.d) })
		for _, want := range tc.want {
			if !strings.Contains(body, want) {
				t.Errorf("result %v lacks %q", tc.d.Kind, want)
			}
		}
		for _, not := range tc.not {
			if strings.Contains(body, not) {
				t.Errorf("result %v with a message still says %q", tc.d.Kind, not)
			}
		}
	}
}

// TestConfirmInLanguage: the confirmation screen is written in the page's
// language, the preset scope descriptions included; an operator's own
// description is shown as written, and names stay escaped.
func TestConfirmInLanguage(t *testing.T) {
	de := i18n.Default.Lookup("de")
	body := render(t, func(r *Renderer, w *httptest.ResponseRecorder) error {
		return r.Confirm(w, 200, Locale{Lang: de, Switch: "/api/verify?user_code=BCDF-GHJK"}, ConfirmData{ClientName: "Wohnzimmer " + hostile, ClientID: "tv", ProviderName: "Spotify",
			Scopes: []string{"streaming", "custom"}, UserCode: "BCDF-GHJK", CSRFToken: "tok", ExpiresIn: 60 * time.Second,
			ScopeText: map[string]string{"streaming": "Play music on this device", "custom": "Die eigenen Worte des Betreibers"}})
	})
	for _, want := range []string{`<html lang="de">`, "<strong>Wohnzimmer &lt;script&gt;", "möchte dein <strong>Spotify</strong>-Konto verwenden.",
		`<li class="described">Musik auf diesem Gerät abspielen <code>streaming</code></li>`,
		`<li class="described">Die eigenen Worte des Betreibers <code>custom</code></li>`,
		"Dieser Code läuft in etwa 1 Minute ab.", "Weiter zu Spotify", "Ablehnen",
		`<a href="/api/verify?lang=fr&amp;user_code=BCDF-GHJK" hreflang="fr" lang="fr">Français</a>`,
		`<nav class="langs" aria-label="Sprache">`} {
		if !strings.Contains(body, want) {
			t.Errorf("German confirmation lacks %q", want)
		}
	}
}

// TestDevicesPages: without a provider that names accounts the page
// explains instead of offering a sign-in; an unknown time is said so; the
// success page links to /devices when asked, and only on success.
func TestDevicesPages(t *testing.T) {
	none := render(t, func(r *Renderer, w *httptest.ResponseRecorder) error {
		return r.Devices(w, 200, Locale{}, DevicesData{View: DevicesSignIn})
	})
	if !strings.Contains(none, "cannot show you your devices") || strings.Contains(none, "<form") {
		t.Errorf("no provider: %s", none)
	}
	list := render(t, func(r *Renderer, w *httptest.ResponseRecorder) error {
		return r.Devices(w, 200, Locale{}, DevicesData{View: DevicesList, ProviderName: "Acme", CSRFToken: "tok",
			Devices: []DeviceRow{{ID: "0123456789ab", Name: hostile, LastUsed: time.Date(2026, 12, 3, 16, 4, 0, 0, time.UTC)}}})
	})
	if !strings.Contains(list, "Connected at an unknown time · last used 2026-12-03 16:04 UTC") || !strings.Contains(list, `name="csrf" value="tok"`) {
		t.Errorf("list: %s", list)
	}
	success := render(t, func(r *Renderer, w *httptest.ResponseRecorder) error {
		return r.Result(w, 200, Locale{}, ResultData{Kind: ResultSuccess, Device: "TV", Provider: "Acme", DevicesLink: true})
	})
	if !strings.Contains(success, `href="/devices"`) {
		t.Error("the success page does not say where to disconnect the device")
	}
	denied := render(t, func(r *Renderer, w *httptest.ResponseRecorder) error {
		return r.Result(w, 200, Locale{}, ResultData{Kind: ResultDenied, DevicesLink: true})
	})
	if strings.Contains(denied, `href="/devices"`) {
		t.Error("a denied page offers to disconnect a device that was never connected")
	}
}
