package e2e

import (
	"net/http"
	"time"

	"github.com/chromedp/chromedp"
)

var httpClient = &http.Client{Timeout: 30 * time.Second}

func chromedp_Navigate(u string) []chromedp.Action {
	return []chromedp.Action{chromedp.Navigate(u), chromedp.WaitVisible(`#user_code`, chromedp.ByID)}
}

// openLink opens a link such as verification_uri_complete, which leads
// straight to the server-rendered confirmation (or a result), and waits
// for what should show.
func openLink(u, wait string) []chromedp.Action {
	return []chromedp.Action{chromedp.Navigate(u), chromedp.WaitVisible(wait, chromedp.ByQuery)}
}

func clickAndWait(click, wait string) []chromedp.Action {
	return []chromedp.Action{chromedp.Click(click, chromedp.ByQuery), chromedp.WaitVisible(wait, chromedp.ByQuery)}
}

func typeCode(code string) []chromedp.Action {
	return []chromedp.Action{chromedp.SendKeys(`#user_code`, code, chromedp.ByID)}
}
