// Package pages renders devicegate's person-facing pages: code entry (with
// an error), the confirmation screen, and the result pages.
//
// Pages are rendered on the server with html/template, so they work without
// JavaScript and every value is escaped. They carry no inline script or
// style, so the strict Content-Security-Policy the handlers send holds; the
// look comes from /assets/app.css, shared with the static frontend.
package pages

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"
)

//go:embed templates/*.html
var files embed.FS

// Renderer renders the pages. It is safe for concurrent use.
type Renderer struct {
	entry, confirm, result, devices *template.Template
}

// New parses the embedded templates once.
func New() (*Renderer, error) {
	parse := func(name string) (*template.Template, error) {
		t, err := template.New("layout.html").Funcs(template.FuncMap{}).ParseFS(files, "templates/layout.html", "templates/"+name)
		if err != nil {
			return nil, fmt.Errorf("pages: parsing %s: %w", name, err)
		}
		return t, nil
	}
	var r Renderer
	var err error
	if r.entry, err = parse("entry.html"); err != nil {
		return nil, err
	}
	if r.confirm, err = parse("confirm.html"); err != nil {
		return nil, err
	}
	if r.result, err = parse("result.html"); err != nil {
		return nil, err
	}
	if r.devices, err = parse("devices.html"); err != nil {
		return nil, err
	}
	return &r, nil
}

// EntryData is the code-entry page, shown again when a code was wrong.
type EntryData struct {
	UserCode string // what the person typed, echoed back
	Error    string
}

// ConfirmData is the confirmation screen (RFC 8628 §5.4).
type ConfirmData struct {
	ClientName   string
	ClientID     string
	ProviderName string
	Scopes       []string
	// ScopeText says in plain language what a scope allows; a scope
	// without one is shown by its identifier alone.
	ScopeText map[string]string
	UserCode  string // formatted, "BCDF-GHJK"
	CSRFToken string
	ExpiresIn time.Duration
}

// Scope is one line of "It asks for": what the scope allows, when known,
// and its identifier.
type Scope struct {
	ID, Description string
}

// ScopeList pairs each scope with its description, in the order asked.
func (d ConfirmData) ScopeList() []Scope {
	out := make([]Scope, len(d.Scopes))
	for i, s := range d.Scopes {
		out[i] = Scope{ID: s, Description: d.ScopeText[s]}
	}
	return out
}

// Minutes is the time left, rounded up, for "about N minutes".
func (d ConfirmData) Minutes() int {
	m := int((d.ExpiresIn + time.Minute - 1) / time.Minute)
	return max(m, 1)
}

// ResultKind selects a result page.
type ResultKind int

// The result pages.
const (
	ResultSuccess ResultKind = iota
	ResultDenied
	ResultExpired
	ResultError
	ResultTooMany
	ResultUsed
)

// ResultData is a result page.
type ResultData struct {
	Kind       ResultKind
	Message    string        // replaces the kind's default explanation
	RetryAfter time.Duration // ResultTooMany: when to try again
	// Device and Provider name the device client and the provider, when
	// known, so the page can say what happened to which device
	// ("Living-room TV is now connected to your Spotify account").
	Device, Provider string
	// DevicesLink says the person can disconnect the device later at
	// /devices (its provider names accounts); the success page says so.
	DevicesLink bool
}

type resultView struct {
	Kind         string // success, denied, expired, error
	Title, Lead  string
	ShowStartNew bool
	DevicesLink  bool
}

func (d ResultData) view() resultView {
	v := resultView{ShowStartNew: true}
	switch d.Kind {
	case ResultSuccess:
		v = resultView{Kind: "success", Title: "You're all set", Lead: "Return to your device: it will finish signing in within a few seconds. You can close this page."}
		if d.Device != "" && d.Provider != "" {
			v.Lead = d.Device + " is now connected to your " + d.Provider + " account. Return to it: it finishes signing in within a few seconds. You can close this page."
		}
	case ResultDenied:
		v = resultView{Kind: "denied", Title: "Access denied", Lead: "Nothing was shared, and your device has been told. You can close this page."}
		if d.Device != "" {
			v.Lead = "Nothing was shared with " + d.Device + ", and it has been told. You can close this page."
		}
	case ResultExpired:
		v = resultView{Kind: "expired", Title: "This code has expired", Lead: "Codes work for a few minutes only. Start again on your device to get a new code.", ShowStartNew: true}
	case ResultTooMany:
		v = resultView{Kind: "error", Title: "Too many attempts", Lead: "Please wait " + wait(d.RetryAfter) + " before you try again.", ShowStartNew: false}
	case ResultUsed:
		v = resultView{Kind: "expired", Title: "This code was already used", Lead: "Each code works once. If your device is not signed in, start again there to get a new code.", ShowStartNew: true}
	default:
		v = resultView{Kind: "error", Title: "Something went wrong", Lead: "devicegate could not finish this step. Start again on your device.", ShowStartNew: true}
	}
	v.DevicesLink = d.DevicesLink && d.Kind == ResultSuccess
	if d.Message != "" {
		// A specific explanation says more than the kind's general one;
		// showing both would tell the person two different stories.
		v.Lead = d.Message
	}
	return v
}

// wait says a duration the way a person would.
func wait(d time.Duration) string {
	switch {
	case d <= 0:
		return "a moment"
	case d < 90*time.Second:
		s := int((d + time.Second - 1) / time.Second)
		if s == 1 {
			return "1 second"
		}
		return fmt.Sprintf("%d seconds", s)
	default:
		return fmt.Sprintf("%d minutes", int((d+time.Minute-1)/time.Minute))
	}
}

// Entry writes the code-entry page.
func (r *Renderer) Entry(w http.ResponseWriter, status int, d EntryData) error {
	return write(w, status, r.entry, d)
}

// Confirm writes the confirmation screen.
func (r *Renderer) Confirm(w http.ResponseWriter, status int, d ConfirmData) error {
	return write(w, status, r.confirm, d)
}

// Result writes a result page.
func (r *Renderer) Result(w http.ResponseWriter, status int, d ResultData) error {
	return write(w, status, r.result, d.view())
}

// DevicesView selects what the person's device list shows.
type DevicesView string

// The views of /devices.
const (
	DevicesSignIn  DevicesView = "signin"  // not signed in: the providers to sign in with
	DevicesList    DevicesView = "list"    // the account's devices
	DevicesConfirm DevicesView = "confirm" // "Disconnect X?"
	DevicesDone    DevicesView = "done"    // X was disconnected
)

// DevicesProvider is a provider the person can sign in with at /devices.
type DevicesProvider struct {
	Index int
	Name  string
}

// DeviceRow is one device as the person sees it.
type DeviceRow struct {
	ID, Name            string
	Connected, LastUsed string // dates, or "at an unknown time"
}

// DevicesData is the /devices page.
type DevicesData struct {
	View DevicesView
	// Providers (signin): none means no provider of this deployment names
	// accounts, and the page explains instead.
	Providers    []DevicesProvider
	ProviderName string      // list: the signed-in account's provider
	Devices      []DeviceRow // list
	Device       *DeviceRow  // confirm
	CSRFToken    string      // list, confirm
	Message      string      // done
}

// Title is the page's heading.
func (d DevicesData) Title() string {
	switch d.View {
	case DevicesConfirm:
		return "Disconnect this device?"
	case DevicesDone:
		return "Device disconnected"
	}
	return "Your devices"
}

// When says a moment on a device list: a date in UTC, or that it is not
// known (bindings from before devicegate recorded it).
func When(t time.Time) string {
	if t.IsZero() {
		return "at an unknown time"
	}
	return t.UTC().Format("2 Jan 2006, 15:04 UTC")
}

// Devices writes the person's device list (and its sign-in, confirmation
// and result).
func (r *Renderer) Devices(w http.ResponseWriter, status int, d DevicesData) error {
	return write(w, status, r.devices, d)
}

// fallback is sent if a template fails, so a person never sees half a page.
const fallback = `<!doctype html><html lang="en"><meta charset="utf-8"><title>devicegate</title><p>Something went wrong. Please start again on your device.</p></html>`

// write renders into a buffer first, so a template error never sends a
// half-written page.
func write(w http.ResponseWriter, status int, t *template.Template, data any) error {
	var buf bytes.Buffer
	err := t.Execute(&buf, data)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(fallback))
		return fmt.Errorf("pages: rendering: %w", err)
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}
