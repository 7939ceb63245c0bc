package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/devicegate/devicegate/e2e/op"
)

// TestCompleteLinkWithoutJavaScript: verification_uri_complete opened in a
// browser with JavaScript off still shows the code to compare (RFC 8628
// §3.3.1) on the server-rendered confirmation, and the sign-in finishes.
func TestCompleteLinkWithoutJavaScript(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	ctx, cfg, da := begin(t, s, 270*time.Second)
	b := newBrowser(t, "no-js", 390, 844)
	b.run("javascript off", emulation.SetScriptExecutionDisabled(true))
	b.run("open the complete link", chromedp.Navigate(da.VerificationURIComplete), chromedp.WaitVisible(`button[value=allow]`, chromedp.ByQuery))
	b.shot("confirm")
	if page := b.text(); !strings.Contains(page, da.UserCode) || !strings.Contains(page, "E2E TV") {
		t.Errorf("the confirmation without JavaScript does not show the code and the device")
	}
	b.run("allow", chromedp.Click(`button[value=allow]`, chromedp.ByQuery), chromedp.WaitVisible(`#username`, chromedp.ByID))
	b.run("log in", chromedp.SendKeys(`#username`, op.Username, chromedp.ByID), chromedp.SendKeys(`#password`, op.Password, chromedp.ByID))
	b.run("submit login", chromedp.Submit(`#password`, chromedp.ByID), chromedp.WaitVisible(`.result`, chromedp.ByQuery))
	b.shot("result")
	if !strings.Contains(b.text(), "all set") {
		t.Errorf("result page: %q", b.text())
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	s.remember(tok.AccessToken, tok.RefreshToken)
}

// TestBackAfterSuccess: after a successful sign-in the person presses Back
// to the provider's consent page and presses Allow again. The same
// browser is told the sign-in already finished — not that it cannot be
// matched to this browser — and the device still gets its tokens once.
func TestBackAfterSuccess(t *testing.T) {
	t.Parallel()
	base := startDemo(t)
	cfg := &oauth2.Config{ClientID: "demo", Endpoint: oauth2.Endpoint{DeviceAuthURL: base + "/api/authorize", TokenURL: base + "/api/token", AuthStyle: oauth2.AuthStyleInParams}}
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, "back-after-success", 390, 844)
	b.run("open the complete link", chromedp.Navigate(da.VerificationURIComplete), chromedp.WaitVisible(`button[value=allow]`, chromedp.ByQuery))
	b.run("allow", chromedp.Click(`button[value=allow]`, chromedp.ByQuery), chromedp.WaitVisible(`button.allow`, chromedp.ByQuery))
	b.shot("provider-consent")
	b.run("allow at the provider", chromedp.Click(`button.allow`, chromedp.ByQuery), chromedp.WaitVisible(`.result`, chromedp.ByQuery))
	b.shot("result")
	if !strings.Contains(b.text(), "all set") {
		t.Fatalf("result page: %q", b.text())
	}
	// history.back() rather than chromedp.NavigateBack, which waits for a
	// load event a page restored from the back/forward cache never fires.
	var n int
	b.run("back", chromedp.Evaluate(`history.back(); 1`, &n), chromedp.WaitVisible(`button.allow`, chromedp.ByQuery))
	b.shot("back-at-provider")
	b.run("allow again", chromedp.Click(`button.allow`, chromedp.ByQuery), chromedp.WaitVisible(`.result`, chromedp.ByQuery))
	b.shot("again")
	if page := b.text(); !strings.Contains(page, "already finished signing in") || strings.Contains(page, "could not match") {
		t.Errorf("after Back and Allow again: %q", page)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	// Once the device has collected, the code still reads "already used"
	// for the rest of its life, as it did before — not "not found".
	b.run("the code again", chromedp.Navigate(da.VerificationURIComplete), chromedp.WaitVisible(`.result`, chromedp.ByQuery))
	b.shot("code-used")
	if page := b.text(); !strings.Contains(strings.ToLower(page), "already used") {
		t.Errorf("the code after the device collected: %q", page)
	}
}
