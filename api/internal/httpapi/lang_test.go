package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/i18n"
	"github.com/devicegate/devicegate/api/internal/ratelimit"
)

// get opens path in the harness browser (its cookie jar) with an
// Accept-Language header.
func (h *harness) get(path, acceptLanguage string) *response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	return h.do(req, h.browser)
}

func wantPage(t *testing.T, what string, res *response, lang string, texts ...string) {
	t.Helper()
	body := string(res.body)
	if !strings.Contains(body, `<html lang="`+lang+`">`) || res.Header.Get("Content-Language") != lang {
		t.Errorf("%s: not in %s (Content-Language %q): %.300s", what, lang, res.Header.Get("Content-Language"), body)
	}
	for _, s := range texts {
		if !strings.Contains(body, s) {
			t.Errorf("%s: lacks %q", what, s)
		}
	}
}

// TestPagesFollowAcceptLanguage: /device — both where the local binary
// serves it and at /api/device, where Static Web Apps rewrites it — and the
// pages after it are written in the language the browser asks for, with
// English when none of its languages is shipped. No script is involved.
func TestPagesFollowAcceptLanguage(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/device", "/device/", "/api/device"} {
		res := h.get(path, "de-AT,de;q=0.9,en;q=0.5")
		wantPage(t, path, res, "de", "Gib den Code von deinem Gerät ein", `action="/api/verify"`, `<script src="/assets/device.js" defer></script>`)
		// The page's own CSP, not the API's "default-src 'none'", which
		// would block its stylesheet and script.
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "style-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, res.Header.Get("Cache-Control"))
		}
	}
	wantPage(t, "Chinese browser", h.get("/device", "zh-CN,zh;q=0.9"), "en", "Enter the code from your device")
	wantPage(t, "Brazilian browser", h.get("/device", "pt-BR"), "pt-BR", "Digite o código")
	wantPage(t, "a link with a code", h.get("/device?user_code=bcdf-ghjk", "fr"), "fr", `value="bcdf-ghjk"`, "Saisissez le code")

	g := h.authorize("tv", "")
	res := h.get("/api/verify?user_code="+url.QueryEscape(g.UserCode), "ja-JP,ja;q=0.9")
	wantPage(t, "confirmation", res, "ja", "Living-room TV を接続しますか？", "Acme Music に進む", "拒否", "このコードの有効期限はあと約10分です。")
	// The entry form sends the typed code by GET.
	wantPage(t, "wrong code", h.get("/api/verify?user_code=BCDF-GHJK", ""), "en", "We could not find that code")
	wantPage(t, "wrong code, Spanish", h.get("/api/verify?user_code=BCDF-GHJK", "es-ES"), "es", "No encontramos ese código")
	wantPage(t, "no code, Spanish", h.get("/api/verify?user_code=", "es-ES"), "es", "Introduce el código que aparece en tu dispositivo.")
}

// TestLanguageSwitcher: every page that can be shown again carries plain
// links to itself in each language; following one shows that language and
// remembers it in a cookie (Path=/, SameSite=Lax), which then outranks
// Accept-Language on every later page, the result pages included.
func TestLanguageSwitcher(t *testing.T) {
	h := newHarness(t)
	res := h.get("/device", "en")
	for _, link := range []string{
		`<a href="/api/device?lang=de" hreflang="de" lang="de">Deutsch</a>`,
		`<a href="/api/device?lang=ja" hreflang="ja" lang="ja">日本語</a>`,
		`<a href="/api/device?lang=pt-BR" hreflang="pt-BR" lang="pt-BR">Português (Brasil)</a>`,
		`<a href="/api/device?lang=en" hreflang="en" lang="en" aria-current="true">English</a>`,
	} {
		if !strings.Contains(string(res.body), link) {
			t.Errorf("/device lacks the link %s", link)
		}
	}
	if c := res.Header.Get("Set-Cookie"); c != "" {
		t.Errorf("a language was remembered though none was picked: %s", c)
	}

	res = h.get("/api/device?lang=fr", "de")
	wantPage(t, "picked French", res, "fr", "Saisissez le code")
	cookie := res.Header.Get("Set-Cookie")
	for _, attr := range []string{"devicegate-lang=fr", "Path=/", "SameSite=Lax", "Max-Age=31536000"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("language cookie %q lacks %s", cookie, attr)
		}
	}
	if strings.Contains(cookie, "Secure") || strings.Contains(cookie, "Domain") {
		t.Errorf("language cookie %q on plain-http loopback", cookie)
	}

	// Remembered: Accept-Language says German, the pages stay French.
	wantPage(t, "remembered", h.get("/device", "de"), "fr", "Saisissez le code")
	g := h.authorize("tv", "")
	res = h.get("/api/verify?user_code="+url.QueryEscape(g.UserCode), "de")
	wantPage(t, "confirmation", res, "fr", "Connecter Living-room TV\u00a0?", "Continuer vers Acme Music",
		`href="/api/verify?lang=ja&amp;user_code=`+url.QueryEscape(g.UserCode)+`"`)
	res = h.browse(http.MethodPost, "/api/verify", url.Values{"user_code": {g.UserCode}, "csrf": {csrfFrom(t, res.body)}, "action": {"deny"}})
	wantPage(t, "denied", res, "fr", "Accès refusé", "Saisir un autre code")
	if strings.Contains(string(res.body), `class="langs"`) {
		t.Error("a page that cannot be shown again offers to switch language")
	}

	// Switching again replaces the choice; a value that is not a shipped
	// language is ignored, and the choice stands.
	wantPage(t, "picked Japanese", h.get("/api/device?lang=ja", ""), "ja", "デバイスに表示されたコードを入力")
	wantPage(t, "bogus lang", h.get("/api/device?lang=xx-evil", ""), "ja")
	wantPage(t, "expired code", h.get("/api/verify?user_code=BCDF-GHJK", ""), "ja", "そのコードは見つかりませんでした。")
}

// TestTooManyAttemptsInLanguage: the too-many-attempts page counts its
// wait in the person's language.
func TestTooManyAttemptsInLanguage(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{Limit: 1, Window: 10 * time.Minute}, false))
	h.get("/api/verify?user_code=BCDF-GHJK", "de")
	res := h.get("/api/verify?user_code=BCDF-GHJK", "de")
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d", res.StatusCode)
	}
	// The wait is the one Retry-After gives, said in German.
	secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || secs <= 0 {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	wait := i18n.Default.Lookup("de").Duration(time.Duration(secs) * time.Second)
	if !strings.Contains(wait, "Sekunde") && !strings.Contains(wait, "Minute") {
		t.Errorf("the wait %q is not German", wait)
	}
	wantPage(t, "too many", res, "de", "Zu viele Versuche", "Bitte warte "+wait+", bevor du es noch einmal versuchst.")
}

// TestLanguageCookieOverHTTPS: over https the remembered language gets the
// __Host- prefix and Secure (no subdomain or plain-http page can set it),
// and only that cookie is read back.
func TestLanguageCookieOverHTTPS(t *testing.T) {
	h := newHarness(t, withPublicURL("https://devicegate.example"))
	rec := httptest.NewRecorder()
	h.srv.Config.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://devicegate.example/api/device?lang=es", nil))
	cookie := rec.Header().Get("Set-Cookie")
	for _, attr := range []string{"__Host-devicegate-lang=es", "Path=/", "Secure", "SameSite=Lax"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("language cookie %q lacks %s", cookie, attr)
		}
	}
	for name, want := range map[string]string{"__Host-devicegate-lang": `<html lang="es">`, "devicegate-lang": `<html lang="en">`} {
		req := httptest.NewRequest(http.MethodGet, "https://devicegate.example/device", nil)
		req.AddCookie(&http.Cookie{Name: name, Value: "es"})
		rec := httptest.NewRecorder()
		h.srv.Config.Handler.ServeHTTP(rec, req)
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("with cookie %s the page is not %s", name, want)
		}
	}
}

// TestStaticPagesOfferEveryLanguage: the stand-by index.html (deployed to
// Static Web Apps only because its deploy requires one; / is rewritten to
// the handler), which cannot read Accept-Language, links to the code entry
// in each shipped language, and in no other.
func TestStaticPagesOfferEveryLanguage(t *testing.T) {
	var want strings.Builder
	for _, l := range i18n.Default.Langs() {
		fmt.Fprintf(&want, `<li><a href="/api/device?lang=%s" hreflang="%s" lang="%s">%s</a></li>`, l.Tag, l.Tag, l.Tag, l.Name)
	}
	for _, name := range []string{"index.html"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "frontend", name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `<nav class="langs" aria-label="Language"><ul>`+want.String()+`</ul></nav>`) {
			t.Errorf("%s: the language links are not exactly the shipped languages; want\n%s", name, want.String())
		}
	}
}

// TestStartAndNotFoundPagesInLanguage: the start page ("/", and
// /api/home where Static Web Apps rewrites it) and the not-found page
// (any address that holds nothing, and /api/notfound, Static Web Apps'
// navigationFallback) are written in each shipped language, chosen as
// every other page's is (Accept-Language here; ?lang= and the cookie in
// TestLanguageSwitcher's way), with a 404 status for the latter, and with
// exactly the security headers and Content-Security-Policy of /device.
func TestStartAndNotFoundPagesInLanguage(t *testing.T) {
	h := newHarness(t)
	headerNames := []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options",
		"Cross-Origin-Opener-Policy", "Permissions-Policy", "Cache-Control", "Vary"}
	for _, tc := range []struct {
		tag, accept, heading, notFound string
	}{
		{"en", "en-GB", "Sign in your devices", "Page not found"},
		{"de", "de-CH,de;q=0.9", "Melde deine Geräte an", "Seite nicht gefunden"},
		{"fr", "fr-CA", "Connectez vos appareils", "Page introuvable"},
		{"es", "es-MX", "Conecta tus dispositivos", "Página no encontrada"},
		{"pt-BR", "pt-BR", "Conecte seus aparelhos", "Página não encontrada"},
		{"ja", "ja", "デバイスにサインイン", "ページが見つかりません"},
	} {
		device := h.get("/device", tc.accept)
		for _, p := range []struct {
			path   string
			status int
			text   string
		}{
			{"/", http.StatusOK, tc.heading},
			{"/api/home", http.StatusOK, tc.heading},
			{"/no/such/page", http.StatusNotFound, tc.notFound},
			{"/index.html", http.StatusNotFound, tc.notFound},
			{"/404.html", http.StatusNotFound, tc.notFound},
			{"/assets/nothing.css", http.StatusNotFound, tc.notFound},
			{"/api/notfound", http.StatusNotFound, tc.notFound},
		} {
			res := h.get(p.path, tc.accept)
			what := tc.tag + " " + p.path
			if res.StatusCode != p.status {
				t.Errorf("%s: status %d, want %d", what, res.StatusCode, p.status)
			}
			wantPage(t, what, res, tc.tag, "<h1>"+p.text+"</h1>", `href="/device"`, `<nav class="langs"`)
			for _, name := range headerNames {
				if got, want := res.Header.Values(name), device.Header.Values(name); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("%s: %s %q, /device has %q", what, name, got, want)
				}
			}
		}
	}
	// The switcher names the API paths (the SWA CLI drops the query
	// string of a rewritten request, as for /device).
	for path, link := range map[string]string{
		"/":             `<a href="/api/home?lang=ja" hreflang="ja" lang="ja">日本語</a>`,
		"/no/such/page": `<a href="/api/notfound?lang=ja" hreflang="ja" lang="ja">日本語</a>`,
	} {
		if res := h.get(path, "en"); !strings.Contains(string(res.body), link) {
			t.Errorf("%s lacks the link %s", path, link)
		}
	}
	wantPage(t, "picked German on the start page", h.get("/api/home?lang=de", "fr"), "de", "Melde deine Geräte an")
	wantPage(t, "the remembered language on a missing page", h.get("/nothing", "fr"), "de", "Seite nicht gefunden")
	// Assets are still files.
	if res := h.get("/assets/app.css", ""); res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Errorf("/assets/app.css: %d, Cache-Control %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
}

// BenchmarkStartPage measures what rendering the start and not-found pages
// in the person's language costs beside serving a static file, in process
// (no network): go test -run '^$' -bench StartPage ./api/internal/httpapi.
func BenchmarkStartPage(b *testing.B) {
	h := newHarness(b)
	for _, tc := range []struct{ name, path string }{
		{"start page, de", "/"},
		{"not-found page, de", "/no/such/page"},
		{"static asset", "/assets/app.css"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			req.Header.Set("Accept-Language", "de-DE,de;q=0.9,en;q=0.5")
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.srv.Config.Handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK && rec.Code != http.StatusNotFound {
					b.Fatalf("%s: %d", tc.path, rec.Code)
				}
				b.SetBytes(int64(rec.Body.Len()))
			}
		})
	}
}
