package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/devicegate/devicegate/e2e/op"
)

// TestExpiredWhileAtProvider: the code runs out while the person is still
// signing in at the provider. Back at devicegate the same browser is told
// the code expired and to start again on the device — not that the
// sign-in cannot be matched to this browser, which it was.
func TestExpiredWhileAtProvider(t *testing.T) {
	t.Parallel()
	s := newStack(t, map[string]string{"DEVICEGATE_CODE_LIFETIME": "60s"})
	_, _, da := begin(t, s, 120*time.Second)
	b := newBrowserFor(t, "expired-at-provider", 390, 844, 150*time.Second)
	b.run("open the complete link", openLink(da.VerificationURIComplete, `button[value=allow]`)...)
	b.run("allow", clickAndWait(`button[value=allow]`, `#username`)...)
	b.run("log in", chromedp.SendKeys(`#username`, op.Username, chromedp.ByID), chromedp.SendKeys(`#password`, op.Password, chromedp.ByID))
	// The person is slow at the provider: the code expires meanwhile.
	time.Sleep(time.Until(da.Expiry) + 2*time.Second)
	b.run("submit login", chromedp.Submit(`#password`, chromedp.ByID), chromedp.WaitVisible(`.result`, chromedp.ByQuery))
	b.shot("result")
	page := b.text()
	if strings.Contains(page, "could not match") || !strings.Contains(page, "expired") || !strings.Contains(page, "Start again on your device") {
		t.Errorf("back from the provider after the code expired: %q", page)
	}
	if status, m := s.poll(da.DeviceCode); status != 400 || m["error"] != "expired_token" {
		t.Errorf("poll after expiry: %d %v", status, m["error"])
	}
}

// usablePage fails the test unless the browser shows one of devicegate's
// pages (not Chromium's own error page, as after Back to a page that was
// the answer to a POST: ERR_CACHE_MISS, "Confirm Form Resubmission").
func (b *browser) usablePage(step string) string {
	b.t.Helper()
	var loc string
	var ours bool
	b.run(step, chromedp.Location(&loc), chromedp.Evaluate(`document.querySelector("main.card h1") !== null`, &ours))
	b.shot(step)
	if strings.HasPrefix(loc, "chrome-error:") || !ours {
		b.t.Errorf("%s: not a devicegate page (%s): %q", step, redactURL(loc), b.text())
	}
	return b.text()
}

// back presses Back and waits for the page before it. history.back()
// rather than chromedp.NavigateBack, which waits for a load event a page
// restored from the back/forward cache never fires; the wait is for the
// next page's body instead.
func (b *browser) back(step string) {
	b.t.Helper()
	var before string
	var n int
	b.run("where", chromedp.Location(&before))
	// Back is scheduled, not taken inside the evaluation: a navigation
	// that begins before Chrome answers an evaluation fails it with
	// "Inspected target navigated or closed" (seen once in a CI run).
	b.run(step, chromedp.Evaluate(`setTimeout(() => history.back(), 50); 1`, &n))
	b.run("wait "+step, chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			var loc, state string
			err := chromedp.Run(ctx, chromedp.Location(&loc), chromedp.Evaluate(`document.readyState`, &state))
			var cdp *cdproto.Error
			switch {
			case errors.As(err, &cdp) && cdp.Code == -32000:
				// The page went away while being read: the navigation
				// this waits for. Read again.
				loc = before
			case err != nil:
				return err
			}
			if loc != before && state == "complete" {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
}

// TestBackTwiceFromResult: a person types the code, allows, approves at
// the provider, and then presses Back twice. Every page in that history
// can be shown again: none is the answer to a POST.
func TestBackTwiceFromResult(t *testing.T) {
	t.Parallel()
	base := startDemo(t)
	cfg := &oauth2.Config{ClientID: "demo", Endpoint: oauth2.Endpoint{DeviceAuthURL: base + "/api/authorize", TokenURL: base + "/api/token", AuthStyle: oauth2.AuthStyleInParams}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, "back-twice", 390, 844)
	b.run("open", chromedp_Navigate(base+"/device")...)
	b.run("type code", typeCode(da.UserCode)...)
	b.run("continue", clickAndWait(`button[type=submit]`, `button[value=allow]`)...)
	b.run("allow", clickAndWait(`button[value=allow]`, `button.allow`)...)
	b.run("allow at the provider", clickAndWait(`button.allow`, `.result`)...)
	if !strings.Contains(b.text(), "all set") {
		t.Fatalf("result page: %q", b.text())
	}
	for i, want := range []string{"back-once", "back-twice"} {
		b.back(want)
		if i == 1 {
			page := b.usablePage(want)
			// The confirmation again, now for a code already used: the
			// page says so rather than offering Allow a second time.
			if !strings.Contains(strings.ToLower(page), "already used") {
				t.Errorf("two steps back: %q", page)
			}
		}
	}
	if tok, err := cfg.DeviceAccessToken(ctx, da); err != nil || tok.AccessToken == "" {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
}

// measure is what the zoom test reads from the page: whether the typed or
// shown code fits its box on one line, and whether the page scrolls
// sideways.
type measure struct {
	ScrollWidth, ClientWidth int     // the element's
	Lines                    int     // line boxes of the code's text
	Right, Viewport          float64 // the element's right edge, the viewport's width
	PageScroll               int     // document.documentElement.scrollWidth
}

const measureJS = `(function (sel) {
  const el = document.querySelector(sel);
  const r = el.getBoundingClientRect();
  let lines = 1;
  if (el.tagName !== "INPUT") {
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set(Array.from(range.getClientRects()).map(x => Math.round(x.top)));
    lines = tops.size;
  }
  return {ScrollWidth: el.scrollWidth, ClientWidth: el.clientWidth, Lines: lines,
    Right: r.right, Viewport: window.innerWidth, PageScroll: document.documentElement.scrollWidth};
})(%q)`

func (b *browser) measure(sel string) measure {
	b.t.Helper()
	var m measure
	b.run("measure "+sel, chromedp.Evaluate(fmt.Sprintf(measureJS, sel), &m))
	return m
}

// TestPhoneAtDoubleZoom: a phone 390 px wide at 200 % zoom gives the page
// 195 CSS pixels. The typed code fits its field whole, and the code on the
// confirmation stays on one line, inside the page.
func TestPhoneAtDoubleZoom(t *testing.T) {
	t.Parallel()
	base := startDemo(t)
	cfg := &oauth2.Config{ClientID: "demo", Endpoint: oauth2.Endpoint{DeviceAuthURL: base + "/api/authorize", TokenURL: base + "/api/token", AuthStyle: oauth2.AuthStyleInParams}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, "zoom-200", 195, 422)
	b.run("scale", chromedp.EmulateViewport(195, 422, chromedp.EmulateScale(2)))
	b.run("open", chromedp_Navigate(base+"/device")...)
	// The widest code: W is the broadest letter in most fonts.
	b.run("type code", typeCode("WWWW-WWWW")...)
	b.shot("entry")
	m := b.measure("#user_code")
	t.Logf("entry field at 195 px: %+v", m)
	if m.ScrollWidth > m.ClientWidth || m.Right > m.Viewport || m.PageScroll > int(m.Viewport) {
		t.Errorf("the typed code does not fit its field at 195 px: %+v", m)
	}
	b.run("open again", chromedp_Navigate(base+"/device")...)
	b.run("type the real code", typeCode(da.UserCode)...)
	b.run("continue", clickAndWait(`button[type=submit]`, `button[value=allow]`)...)
	b.shot("confirm")
	m = b.measure(".code-check .code")
	t.Logf("confirmation code at 195 px: %+v", m)
	if m.Lines != 1 || m.ScrollWidth > m.ClientWidth || m.Right > m.Viewport || m.PageScroll > int(m.Viewport) {
		t.Errorf("the code on the confirmation does not fit one line at 195 px: %+v", m)
	}
}
