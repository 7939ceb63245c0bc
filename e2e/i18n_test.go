package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/devicegate/devicegate/e2e/op"
)

// languageWalk is what one language's walk expects to read.
type languageWalk struct {
	tag    string
	accept string // the browser's Accept-Language; "" picks the language from the switcher instead
	entry  string // the code-entry heading
	note   string // part of the left-out-letters note after typing "ae1"
	allow  string // the confirmation's Allow button
	done   string // the success page's title
	home   string // the start page's heading
	lost   string // the not-found page's heading
}

var languageWalks = []languageWalk{
	{"en", "en-US,en;q=0.9", "Enter the code from your device", "were left out", "Continue to Zitadel example", "You're all set", "Sign in your devices", "Page not found"},
	{"de", "de-DE,de;q=0.9,en;q=0.5", "Gib den Code von deinem Gerät ein", "deshalb wurden A, E und 1 weggelassen", "Weiter zu Zitadel example", "Alles erledigt", "Melde deine Geräte an", "Seite nicht gefunden"},
	{"fr", "fr-FR,fr;q=0.9", "Saisissez le code affiché sur votre appareil", "A, E et 1 ont donc été ignorés", "Continuer vers Zitadel example", "C’est fait", "Connectez vos appareils", "Page introuvable"},
	{"es", "es-419,es;q=0.9", "Introduce el código de tu dispositivo", "así que se han omitido A, E y 1", "Continuar a Zitadel example", "¡Listo!", "Conecta tus dispositivos", "Página no encontrada"},
	{"pt-BR", "", "Digite o código que aparece no seu aparelho", "por isso A, E e 1 foram ignorados", "Continuar em Zitadel example", "Tudo pronto", "Conecte seus aparelhos", "Página não encontrada"},
	{"ja", "", "デバイスに表示されたコードを入力", "そのため A、E、1 は入力されませんでした", "Zitadel example に進む", "完了しました", "デバイスにサインイン", "ページが見つかりません"},
}

// TestEveryLanguage walks the whole flow in each shipped language on a
// phone-sized Chromium, without any choice made by script: four languages
// come from the browser's Accept-Language, two from following the
// language switcher's plain link (remembered in a cookie for the pages
// after it). The code-entry page, its left-out-letters note (written by
// device.js from the page's own words), the confirmation and the success
// page, and then the start page and a missing address's not-found page,
// are each checked in that language, with axe-core at zero WCAG 2.1
// A/AA violations in light and dark, no horizontal scrolling at 200 %
// zoom, and screenshots (e2e/out/lang-<tag>-*.png) to look at.
//
// Not parallel: six browsers in turn are a heavy load, and the browser tests
// running alongside have whole-test deadlines.
func TestEveryLanguage(t *testing.T) {
	needNode(t, "axe-core")
	s := newStack(t, nil)
	for _, w := range languageWalks {
		t.Run(w.tag, func(t *testing.T) {
			b := newBrowser(t, "lang-"+w.tag, 390, 844)
			accept := w.accept
			if accept == "" {
				accept = "en-US,en;q=0.9" // the switcher must beat it
			}
			b.run("Accept-Language", network.Enable(), network.SetExtraHTTPHeaders(network.Headers{"Accept-Language": accept}))
			b.run("entry", chromedp_Navigate(s.base+"/device")...)
			if w.accept == "" {
				b.run("switch language", clickAndWait(`.langs a[hreflang="`+w.tag+`"]`, `html[lang="`+w.tag+`"] #user_code`)...)
			}
			lang := func(page string) {
				t.Helper()
				var got string
				b.run("html lang", chromedp.AttributeValue(`html`, "lang", &got, nil, chromedp.ByQuery))
				if got != w.tag {
					t.Errorf("%s: <html lang=%q>, want %q", page, got, w.tag)
				}
			}
			lang("entry")
			if text := b.text(); !strings.Contains(text, w.entry) {
				t.Errorf("entry: lacks %q: %q", w.entry, text)
			}
			b.run("type letters no code uses", typeCode("ae1")...)
			var note string
			b.run("read note", chromedp.Text(`#code-note`, &note, chromedp.ByID))
			if !strings.Contains(note, w.note) || strings.Contains(note, "{") {
				t.Errorf("left-out note %q, want it to contain %q", note, w.note)
			}
			b.checkPage("entry")

			ctx, cfg, da := begin(t, s, 90*time.Second)
			b.run("clear", chromedp.Evaluate(`document.getElementById("user_code").value = ""`, nil))
			b.run("enter code", append(typeCode(da.UserCode), clickAndWait(`button[type=submit]`, `button[value=allow]`)...)...)
			lang("confirm")
			var allow string
			b.run("read allow", chromedp.Text(`button[value=allow]`, &allow, chromedp.ByQuery))
			if strings.TrimSpace(allow) != w.allow {
				t.Errorf("Allow button %q, want %q", allow, w.allow)
			}
			b.checkPage("confirm")

			b.run("allow", chromedp.Click(`button[value=allow]`, chromedp.ByQuery), chromedp.WaitVisible(`#username`, chromedp.ByID))
			b.run("log in", chromedp.SendKeys(`#username`, op.Username, chromedp.ByID), chromedp.SendKeys(`#password`, op.Password, chromedp.ByID),
				chromedp.Submit(`#password`, chromedp.ByID), chromedp.WaitVisible(`.result`, chromedp.ByQuery))
			lang("success")
			var title string
			b.run("read title", chromedp.Text(`h1`, &title, chromedp.ByQuery))
			if strings.TrimSpace(title) != w.done {
				t.Errorf("success title %q, want %q", title, w.done)
			}
			b.checkPage("success")
			if _, err := cfg.DeviceAccessToken(ctx, da); err != nil {
				t.Fatalf("DeviceAccessToken: %v", err)
			}

			for _, p := range []struct{ name, path, heading string }{
				{"home", "/", w.home},
				{"404", "/no/such/page", w.lost},
			} {
				b.run(p.name, navigate(s.base+p.path)...)
				lang(p.name)
				var h1 string
				b.run("read heading", chromedp.Text(`h1`, &h1, chromedp.ByQuery))
				if strings.TrimSpace(h1) != p.heading {
					t.Errorf("%s heading %q, want %q", p.name, h1, p.heading)
				}
				b.checkPage(p.name)
			}
		})
	}
}
