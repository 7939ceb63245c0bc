package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/devicegate/devicegate/e2e/op"
)

// TestDevicesPage: a person connects two devices, signs in at /devices
// with the provider, sees both by name, disconnects one (confirmation,
// result naming it) — its refresh is then refused, the other's works —
// and another account of the same provider sees none of them. Every page
// passes checkPage (axe: 0 violations). The zitadel example provider has
// two users with stable subjects (id1, id2); devicegate reads them from
// its userinfo (oidc discovery).
func TestDevicesPage(t *testing.T) {
	t.Parallel()
	needNode(t, "axe-core")
	scopes := `"scopes":["openid","profile","offline_access"],"default_scopes":["openid","profile"]`
	s := newStack(t, map[string]string{
		"DEVICEGATE_UPSTREAM": "oidc",
		"DEVICEGATE_CLIENTS":  `[{"client_id":"tv","name":"E2E TV",` + scopes + `},{"client_id":"radio","name":"E2E Radio",` + scopes + `}]`,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	alice := newBrowserFor(t, "devices-alice", 390, 844, 150*time.Second)
	login := func(b *browser, user string) {
		b.t.Helper()
		b.run("log in", chromedp.WaitVisible(`#username`, chromedp.ByID), chromedp.SendKeys(`#username`, user, chromedp.ByID),
			chromedp.SendKeys(`#password`, op.Password, chromedp.ByID), chromedp.Submit(`#password`, chromedp.ByID))
	}
	connect := func(clientID string) (*oauth2.Config, *oauth2.Token) {
		t.Helper()
		cfg := oauth2Config(s)
		cfg.ClientID = clientID
		da, err := cfg.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.remember(da.DeviceCode, da.UserCode)
		alice.run("open link", openLink(da.VerificationURIComplete, `button[value=allow]`)...)
		alice.run("allow", chromedp.Click(`button[value=allow]`, chromedp.ByQuery))
		login(alice, op.Username)
		alice.run("result", chromedp.WaitVisible(`.result`, chromedp.ByQuery))
		if text := alice.text(); !strings.Contains(text, "To disconnect this device later") {
			t.Errorf("the success page does not say where to disconnect the device: %q", text)
		}
		tok, err := cfg.DeviceAccessToken(ctx, da)
		if err != nil {
			t.Fatalf("DeviceAccessToken: %v", err)
		}
		s.remember(tok.AccessToken, tok.RefreshToken)
		return cfg, tok
	}
	tvCfg, tv := connect("tv")
	radioCfg, radio := connect("radio")

	alice.run("devices", navigate(s.base+"/devices")...)
	if text := alice.text(); !strings.Contains(text, "Sign in with Zitadel example") {
		t.Fatalf("the sign-in page: %q", text)
	}
	alice.checkPage("devices-signin")
	alice.run("sign in", chromedp.Click(`button[name=provider]`, chromedp.ByQuery))
	login(alice, op.Username)
	alice.run("list", chromedp.WaitVisible(`.devices`, chromedp.ByQuery))
	if text := alice.text(); !strings.Contains(text, "E2E TV") || !strings.Contains(text, "E2E Radio") {
		t.Fatalf("the list lacks a device: %q", text)
	}
	alice.checkPage("devices-list")
	alice.run("disconnect", clickAndWait(`button[aria-label="Disconnect E2E TV"]`, `button[value=disconnect]`)...)
	alice.checkPage("devices-confirm")
	alice.run("confirm", clickAndWait(`button[value=disconnect]`, `.result`)...)
	if text := alice.text(); !strings.Contains(text, "E2E TV is disconnected") {
		t.Fatalf("the result page: %q", text)
	}
	alice.checkPage("devices-done")
	// The confirmation is a GET: Back from the outcome (shown by the GET
	// Disconnect's 303 leads to) shows it again, now for a device that is
	// gone. That no history entry is a POST's answer is proven in package
	// httpapi (TestDisconnectIsPostRedirectGet).
	alice.back("back from done")
	if page := alice.usablePage("back from done"); !strings.Contains(page, "That device is not connected to your account") {
		t.Errorf("Back from the outcome: %q", page)
	}

	refresh := func(cfg *oauth2.Config, tok *oauth2.Token) error {
		_, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
		return err
	}
	if err := refresh(tvCfg, tv); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("the disconnected TV refreshes: %v", err)
	}
	if err := refresh(radioCfg, radio); err != nil {
		t.Errorf("the radio no longer refreshes: %v", err)
	}

	bob := newBrowser(t, "devices-bob", 390, 844)
	bob.run("devices", navigate(s.base+"/devices")...)
	bob.run("sign in", chromedp.Click(`button[name=provider]`, chromedp.ByQuery))
	login(bob, "test-user2")
	bob.run("list", chromedp.WaitVisible(`form button[value=signout]`, chromedp.ByQuery))
	if text := bob.text(); !strings.Contains(text, "No devices are connected") || strings.Contains(text, "E2E") {
		t.Errorf("another account's list: %q", text)
	}
	bob.checkPage("devices-empty")
}
