package e2e

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/devicegate/devicegate/e2e/op"
)

// focused describes the element that has the keyboard focus, and whether a
// focus ring is drawn around it.
type focused struct {
	Tag, ID, Value string
	Ring           bool
}

func (b *browser) focused() focused {
	b.t.Helper()
	var f focused
	b.run("read focus", chromedp.Evaluate(`(() => { const e = document.activeElement, s = getComputedStyle(e);
		return {Tag: e.tagName, ID: e.id, Value: e.value || "", Ring: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2}; })()`, &f))
	return f
}

// tabTo presses Tab until the focus is on an element matching want (at
// most 15 times), requiring a visible focus ring on devicegate's pages.
func (b *browser) tabTo(what string, want func(focused) bool, ours bool) {
	b.t.Helper()
	for range 15 {
		b.run("tab", chromedp.KeyEvent("\t"))
		f := b.focused()
		if ours && f.Tag != "BODY" && !f.Ring {
			b.t.Errorf("%s: the focused %s#%s has no visible focus ring", what, f.Tag, f.ID)
		}
		if want(f) {
			return
		}
	}
	b.shot("tab-lost-" + what)
	b.t.Fatalf("Tab never reached %s", what)
}

// TestKeyboardOnly: a person with a keyboard alone (Tab and Enter, no
// mouse) finishes the whole flow on a desktop, seeing where the focus is
// on every step. On the way: the brand lines up with the card's content,
// and letters no code uses are dropped with a gentle note saying so.
func TestKeyboardOnly(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	ctx, cfg, da := begin(t, s, 360*time.Second)
	b := newBrowser(t, "keyboard-desktop", 1366, 860)
	b.run("open", chromedp_Navigate(s.base+"/device")...)

	var brand, heading float64
	b.run("measure", chromedp.Evaluate(`document.querySelector(".brand").getBoundingClientRect().left`, &brand),
		chromedp.Evaluate(`document.querySelector("h1").getBoundingClientRect().left`, &heading))
	if math.Abs(brand-heading) > 1 {
		t.Errorf("the brand starts at x=%.0f, the card's content at x=%.0f", brand, heading)
	}

	if f := b.focused(); f.ID != "user_code" {
		t.Fatalf("the code field does not have the focus on arrival: %+v", f)
	}
	b.run("type letters no code uses", chromedp.KeyEvent("ae1"))
	var note string
	b.run("read note", chromedp.Text(`#code-note`, &note, chromedp.ByID))
	b.shot("alphabet-note")
	if f := b.focused(); f.Value != "" || !strings.Contains(note, "Codes use only the letters B C D F G H J K L M N P Q R S T V W X Z (no vowels, no digits), so A, E, and 1 were left out.") {
		t.Errorf("after typing ae1 the field holds %q and the note says %q", f.Value, note)
	}
	b.run("type the code", chromedp.KeyEvent(strings.ToLower(da.UserCode)))
	b.run("read note", chromedp.Text(`#code-note`, &note, chromedp.ByID))
	if f := b.focused(); f.Value != da.UserCode || note != "" {
		t.Errorf("after typing the code the field holds %q and the note says %q", f.Value, note)
	}
	b.run("enter", chromedp.KeyEvent("\r"), chromedp.WaitVisible(`button[value=allow]`, chromedp.ByQuery))
	b.tabTo("Continue", func(f focused) bool { return f.Tag == "BUTTON" && f.Value == "allow" }, true)
	b.shot("confirm-focus")
	b.run("enter", chromedp.KeyEvent("\r"), chromedp.WaitVisible(`#username`, chromedp.ByID))
	b.tabTo("username", func(f focused) bool { return f.ID == "username" }, false)
	b.run("type username", chromedp.KeyEvent(op.Username))
	b.tabTo("password", func(f focused) bool { return f.ID == "password" }, false)
	b.run("type password", chromedp.KeyEvent(op.Password+"\r"), chromedp.WaitVisible(`.result`, chromedp.ByQuery))
	b.shot("result")
	if text := b.text(); !strings.Contains(text, "E2E TV is now connected to your Zitadel example account.") {
		t.Errorf("result page: %q", text)
	}
	if _, err := cfg.DeviceAccessToken(ctx, da); err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
}

// startDemo runs devicegate -demo (memory store) on a free port.
func startDemo(t *testing.T) string {
	t.Helper()
	s := newStackAt(t)
	s.args = []string{"-demo"}
	env := s.baseEnv()
	delete(env, "DEVICEGATE_CLIENTS") // -demo's own client "demo"
	s.startDevicegate(env)
	return s.base
}

// TestDemoProviderPages: the demo provider's own pages (its consent page
// and its error page) pass the same checks as devicegate's; the
// confirmation reads the OpenID scopes in plain words; denying at the
// provider names the device on the result.
func TestDemoProviderPages(t *testing.T) {
	t.Parallel()
	needNode(t, "axe-core")
	base := startDemo(t)
	res, err := http.PostForm(base+"/api/authorize", url.Values{"client_id": {"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	var da struct {
		Complete string `json:"verification_uri_complete"`
	}
	json.NewDecoder(res.Body).Decode(&da)
	res.Body.Close()

	b := newBrowser(t, "demo-phone", 390, 844)
	b.run("open", openLink(da.Complete, `button[value=allow]`)...)
	if text := b.text(); !strings.Contains(text, "See your name, picture and other basic profile details\nprofile") {
		t.Errorf("the confirmation does not describe the profile scope: %q", text)
	}
	b.run("allow", clickAndWait(`button[value=allow]`, `button.deny`)...)
	b.checkPage("demo-consent")
	b.run("deny at the provider", clickAndWait(`button.deny`, `.result`)...)
	if text := b.text(); !strings.Contains(text, "Nothing was shared with Demo device") {
		t.Errorf("denied at the provider: %q", text)
	}
	b.run("demo error", navigate(base+"/demo/authorize")...)
	if text := b.text(); !strings.Contains(text, "Cannot continue") {
		t.Errorf("demo error page: %q", text)
	}
	b.checkPage("demo-error")
}
