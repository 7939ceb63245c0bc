package e2e

import (
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/devicegate/devicegate/e2e/op"
)

// axeSource is axe-core's browser build, pinned by e2e/node's lockfile.
var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile("node/node_modules/axe-core/axe.min.js")
	return string(b), err
})

// axeTags are the rule sets of WCAG 2.1 levels A and AA.
const axeTags = `["wcag2a","wcag2aa","wcag21a","wcag21aa"]`

type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  string `json:"target"`
		Summary string `json:"summary"`
	} `json:"nodes"`
}

// evalAsync evaluates a script that returns a promise, into res.
func evalAsync(script string, res any) chromedp.Action {
	return chromedp.Evaluate(script, res, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	})
}

// colorScheme makes the page see prefers-color-scheme: scheme.
func colorScheme(scheme string) chromedp.Action {
	return emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}})
}

// checkPage is what every page a person can reach must pass: axe-core
// finds no WCAG 2.1 A/AA violation in the light or the dark colour scheme
// (each screenshotted), and at 200% zoom of a 1366×860 desktop (683×430
// CSS pixels) nothing needs horizontal scrolling (WCAG 1.4.4, 1.4.10).
// It returns the page's footer text, which every page shares.
func (b *browser) checkPage(page string) string {
	b.t.Helper()
	for _, scheme := range []string{"light", "dark"} {
		found := b.axe(scheme)
		b.shot(page + "-" + scheme)
		for _, v := range found {
			for _, n := range v.Nodes {
				b.t.Errorf("axe: %s (%s): %s [%s] %s at %s: %s", page, scheme, v.ID, v.Impact, v.Help, n.Target, strings.ReplaceAll(n.Summary, "\n", " "))
			}
		}
	}
	b.run("light again", colorScheme("light"))

	var width, height int64
	b.run("window size", chromedp.Evaluate(`window.innerWidth`, &width), chromedp.Evaluate(`window.innerHeight`, &height))
	var overflow int64
	b.run("zoom 200%", emulation.SetDeviceMetricsOverride(683, 430, 2, false),
		chromedp.Evaluate(`document.documentElement.scrollWidth - document.documentElement.clientWidth`, &overflow))
	b.shot(page + "-zoom200")
	if overflow > 0 {
		b.t.Errorf("%s: at 200%% zoom the page is %d CSS pixels wider than the window", page, overflow)
	}
	var foot string
	b.run("restore size", emulation.SetDeviceMetricsOverride(width, height, 1, false), chromedp.Evaluate(`(document.querySelector("footer") || {}).textContent || ""`, &foot))
	return strings.TrimSpace(foot)
}

// axe runs axe-core's WCAG 2.1 A/AA rules on the page as it looks in the
// colour scheme ("light" or "dark").
func (b *browser) axe(scheme string) []axeViolation {
	b.t.Helper()
	src, err := axeSource()
	if err != nil {
		b.t.Fatalf("axe-core is not installed (scripts/e2e.sh runs npm ci in e2e/node): %v", err)
	}
	var loaded bool
	b.run("color scheme "+scheme, colorScheme(scheme), chromedp.Evaluate(`typeof window.axe === "object"`, &loaded))
	if !loaded {
		b.run("load axe", chromedp.Evaluate(src, nil))
	}
	var found []axeViolation
	b.run("axe", evalAsync(`axe.run(document, {runOnly: {type: "tag", values: `+axeTags+`}, resultTypes: ["violations"]})
		.then(r => r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help,
			nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary || ""}))})))`, &found))
	return found
}

// TestAxeFindsViolations: the check above can fail. A page with grey text
// on white, an unlabelled field and an image without alt text gets exactly
// those three findings.
func TestAxeFindsViolations(t *testing.T) {
	t.Parallel()
	needNode(t, "axe-core")
	b := newBrowser(t, "axe-self-check", 390, 844)
	page := `<!doctype html><html lang="en"><title>bad</title><main><h1>Bad page</h1>` +
		`<p style="color:#bbb;background:#fff">faint text</p><input type="text"><img src="data:,"></main></html>`
	b.run("open", chromedp.Navigate("data:text/html,"+url.PathEscape(page)), chromedp.WaitVisible(`h1`, chromedp.ByQuery))
	var ids []string
	for _, v := range b.axe("light") {
		ids = append(ids, v.ID)
	}
	slices.Sort(ids)
	if want := []string{"color-contrast", "image-alt", "label"}; !slices.Equal(ids, want) {
		t.Errorf("axe found %q, want %q", ids, want)
	}
}

// navigate opens u and waits for its main content.
func navigate(u string) []chromedp.Action {
	return []chromedp.Action{chromedp.Navigate(u), chromedp.WaitVisible(`h1`, chromedp.ByQuery)}
}

// submitCode types code into the (empty) entry field and sends it.
func submitCode(code string) []chromedp.Action {
	return []chromedp.Action{
		chromedp.SendKeys(`#user_code`, code, chromedp.ByID),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery), chromedp.WaitVisible(`[role=alert], .result, button[value=allow]`, chromedp.ByQuery),
	}
}

// TestEveryPageAccessible walks every page of devicegate a person can meet
// — the start page, a missing page, code entry (plain and with an error),
// the confirmation, and each result: success, already used, denied, error,
// locked, too many attempts (expired is in TestExpiredCode) — and checks
// each with checkPage. All pages share one footer.
func TestEveryPageAccessible(t *testing.T) {
	t.Parallel()
	needNode(t, "axe-core")
	s := newStack(t, map[string]string{"DEVICEGATE_RATE_VERIFY": "12/10m"})
	b := newBrowser(t, "a11y-phone", 390, 844)
	footers := map[string]string{}
	check := func(page, wantText string) {
		t.Helper()
		if text := b.text(); !strings.Contains(text, wantText) {
			t.Errorf("%s: the page lacks %q: %q", page, wantText, text)
		}
		footers[page] = b.checkPage(page)
	}

	b.run("index", navigate(s.base+"/")...)
	check("index", "Sign in your devices")
	b.run("404", navigate(s.base+"/no/such/page")...)
	check("404", "Page not found")
	b.run("entry", navigate(s.base+"/device")...)
	check("entry", "Enter the code from your device")
	b.run("wrong code", submitCode("BCDF-GHJK")...)
	check("entry-error", "could not find that code")

	ctx, cfg, da := begin(t, s, 360*time.Second)
	b.run("open link", openLink(da.VerificationURIComplete, `button[value=allow]`)...)
	check("confirm", "E2E TV")
	b.run("allow", chromedp.Click(`button[value=allow]`, chromedp.ByQuery), chromedp.WaitVisible(`#username`, chromedp.ByID))
	b.run("log in", chromedp.SendKeys(`#username`, op.Username, chromedp.ByID), chromedp.SendKeys(`#password`, op.Password, chromedp.ByID),
		chromedp.Submit(`#password`, chromedp.ByID), chromedp.WaitVisible(`.result`, chromedp.ByQuery))
	check("success", "E2E TV is now connected to your Zitadel example account")
	b.run("code again", navigate(s.base+"/device")...)
	b.run("used code", submitCode(da.UserCode)...)
	check("used", "already used")
	if _, err := cfg.DeviceAccessToken(ctx, da); err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}

	_, _, da = begin(t, s, 180*time.Second)
	b.run("open link", openLink(da.VerificationURIComplete, `button[value=deny]`)...)
	b.run("deny", clickAndWait(`button[value=deny]`, `.result`)...)
	check("denied", "Access denied")

	b.run("stray callback", navigate(s.base+"/api/callback?state=x&code=y")...)
	check("error", "Something went wrong")

	// Five decisions without this browser's CSRF token lock the code.
	_, _, da = begin(t, s, 180*time.Second)
	for range 5 {
		res, err := http.PostForm(s.base+"/api/verify", url.Values{"user_code": {da.UserCode}, "csrf": {"forged"}, "action": {"allow"}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	b.run("locked code", navigate(s.base+"/device")...)
	b.run("enter locked code", submitCode(da.UserCode)...)
	check("locked", "locked")

	for i := 0; ; i++ {
		var title string
		b.run("entry", navigate(s.base+"/device")...)
		b.run("wrong code", append(submitCode("BCDF-GHJK"), chromedp.Text(`h1`, &title, chromedp.ByQuery))...)
		if title == "Too many attempts" {
			break
		}
		if i == 12 {
			t.Fatal("twelve code entries never met the limit of 12")
		}
	}
	check("too-many", "Please wait")

	for page, foot := range footers {
		if foot != footers["entry"] {
			t.Errorf("the footer of %s is %q; every other page says %q", page, foot, footers["entry"])
		}
	}
	t.Logf("checked %d pages", len(footers))
}
