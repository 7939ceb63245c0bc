// Package pages renders devicegate's person-facing pages: the start page,
// the not-found page, code entry (with an error), the confirmation screen,
// and the result pages.
//
// Pages are rendered on the server with html/template, so they work without
// JavaScript and every value is escaped. They carry no inline script or
// style, so the strict Content-Security-Policy the handlers send holds; the
// look comes from /assets/app.css, shared with the static frontend.
//
// Every word comes from the person's language's catalog (package i18n);
// callers pass the language in a Locale.
package pages

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/devicegate/devicegate/api/i18n"
)

//go:embed templates/*.html
var files embed.FS

// Renderer renders the pages. It is safe for concurrent use.
type Renderer struct {
	entry, confirm, result, devices, home, notFound *template.Template
}

// New parses the embedded templates once.
func New() (*Renderer, error) {
	parse := func(name string) (*template.Template, error) {
		t, err := template.New("layout.html").Funcs(template.FuncMap{"when": When}).ParseFS(files, "templates/layout.html", "templates/"+name)
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
	if r.home, err = parse("home.html"); err != nil {
		return nil, err
	}
	if r.notFound, err = parse("notfound.html"); err != nil {
		return nil, err
	}
	return &r, nil
}

// Locale is the language a page is written in, and where its language
// switcher points.
type Locale struct {
	Lang *i18n.Lang // nil: the fallback language
	// Switch is this page's own address (path and query, without lang=),
	// which each link of the language switcher opens with its lang=; ""
	// shows no switcher (a page that cannot be shown again, such as the
	// provider's answer).
	Switch string
}

// Text is a message of the catalog and its arguments (name, value pairs).
type Text struct {
	Key  string
	Args []any
}

// Msg makes a Text.
func Msg(key string, args ...any) Text { return Text{Key: key, Args: args} }

// LangLink is one entry of the language switcher.
type LangLink struct {
	Tag, Name, Href string
	Current         bool
}

// page is what the layout renders: the language, the switcher and the
// page's own data.
type page struct {
	Lang  *i18n.Lang
	Langs []LangLink
	Data  any
}

func (l Locale) page(data any) page {
	lang := l.Lang
	if lang == nil {
		lang = i18n.Default.Fallback()
	}
	p := page{Lang: lang, Data: data}
	if l.Switch == "" {
		return p
	}
	u, err := url.Parse(l.Switch)
	if err != nil {
		return p
	}
	for _, o := range i18n.Default.Langs() {
		q := u.Query()
		q.Set(i18n.QueryParam, o.Tag)
		v := *u
		v.RawQuery = q.Encode()
		p.Langs = append(p.Langs, LangLink{Tag: o.Tag, Name: o.Name, Href: v.String(), Current: o == lang})
	}
	return p
}

// EntryData is the code-entry page, shown again when a code was wrong.
type EntryData struct {
	UserCode string // what the person typed, echoed back
	Error    Text   // zero: no error
}

// HasError reports whether the page explains a wrong code.
func (d EntryData) HasError() bool { return d.Error.Key != "" }

// ErrorText is the error in l.
func (d EntryData) ErrorText(l *i18n.Lang) string { return l.T(d.Error.Key, d.Error.Args...) }

// ConfirmData is the confirmation screen (RFC 8628 §5.4).
type ConfirmData struct {
	ClientName   string
	ClientID     string
	ProviderName string
	Scopes       []string
	// ScopeText says in plain language what a scope allows; a scope
	// without one is shown by its identifier alone. A preset's English
	// description is shown in the page's language (i18n scopes); an
	// operator's own as written.
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

// ScopeList pairs each scope with its description, in the order asked and
// in the language l.
func (d ConfirmData) ScopeList(l *i18n.Lang) []Scope {
	out := make([]Scope, len(d.Scopes))
	for i, s := range d.Scopes {
		out[i] = Scope{ID: s}
		if text := d.ScopeText[s]; text != "" {
			out[i].Description = l.Scope(text)
		}
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
	Message    Text          // replaces the kind's default explanation
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

func (d ResultData) view(l *i18n.Lang) resultView {
	var v resultView
	switch d.Kind {
	case ResultSuccess:
		v = resultView{Kind: "success", Title: l.T("result.success.title"), Lead: l.T("result.success.lead"), ShowStartNew: true}
		if d.Device != "" && d.Provider != "" {
			v.Lead = l.T("result.success.lead_named", "device", d.Device, "provider", d.Provider)
		}
	case ResultDenied:
		v = resultView{Kind: "denied", Title: l.T("result.denied.title"), Lead: l.T("result.denied.lead"), ShowStartNew: true}
		if d.Device != "" {
			v.Lead = l.T("result.denied.lead_named", "device", d.Device)
		}
	case ResultExpired:
		v = resultView{Kind: "expired", Title: l.T("result.expired.title"), Lead: l.T("result.expired.lead"), ShowStartNew: true}
	case ResultTooMany:
		v = resultView{Kind: "error", Title: l.T("result.toomany.title"), Lead: l.T("result.toomany.lead", "wait", l.Duration(d.RetryAfter))}
	case ResultUsed:
		v = resultView{Kind: "expired", Title: l.T("result.used.title"), Lead: l.T("result.used.lead"), ShowStartNew: true}
	default:
		v = resultView{Kind: "error", Title: l.T("result.error.title"), Lead: l.T("result.error.lead"), ShowStartNew: true}
	}
	v.DevicesLink = d.DevicesLink && d.Kind == ResultSuccess
	if d.Message.Key != "" {
		// A specific explanation says more than the kind's general one;
		// showing both would tell the person two different stories.
		v.Lead = l.T(d.Message.Key, d.Message.Args...)
	}
	return v
}

// Home writes the start page ("/"): what devicegate is for, and the way
// to the code entry.
func (r *Renderer) Home(w http.ResponseWriter, status int, loc Locale) error {
	return write(w, status, r.home, loc.page(nil))
}

// NotFound writes the page for an address that holds nothing.
func (r *Renderer) NotFound(w http.ResponseWriter, status int, loc Locale) error {
	return write(w, status, r.notFound, loc.page(nil))
}

// Entry writes the code-entry page.
func (r *Renderer) Entry(w http.ResponseWriter, status int, loc Locale, d EntryData) error {
	return write(w, status, r.entry, loc.page(d))
}

// Confirm writes the confirmation screen.
func (r *Renderer) Confirm(w http.ResponseWriter, status int, loc Locale, d ConfirmData) error {
	return write(w, status, r.confirm, loc.page(d))
}

// Result writes a result page.
func (r *Renderer) Result(w http.ResponseWriter, status int, loc Locale, d ResultData) error {
	p := loc.page(nil)
	p.Data = d.view(p.Lang)
	return write(w, status, r.result, p)
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
	ID, Name string
	// Connected and LastUsed are zero when unknown (bindings from before
	// devicegate recorded them).
	Connected, LastUsed time.Time
}

// When says a moment of a device list in l: a date and time in UTC
// (ISO 8601, read alike in every language), or that it is not known.
func When(l *i18n.Lang, t time.Time) string {
	if t.IsZero() {
		return l.T("devices.unknown")
	}
	return t.UTC().Format("2006-01-02 15:04") + " UTC"
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
	DoneDevice   string      // done: the device disconnected
}

// TitleKey is the catalog key of the page's heading.
func (d DevicesData) TitleKey() string {
	switch d.View {
	case DevicesConfirm:
		return "devices.confirm.title"
	case DevicesDone:
		return "devices.done.title"
	}
	return "devices.title"
}

// Devices writes the person's device list (and its sign-in, confirmation
// and result).
func (r *Renderer) Devices(w http.ResponseWriter, status int, loc Locale, d DevicesData) error {
	return write(w, status, r.devices, loc.page(d))
}

// fallback is sent if a template fails, so a person never sees half a page.
const fallback = `<!doctype html><html lang="en"><meta charset="utf-8"><title>devicegate</title><p>Something went wrong. Please start again on your device.</p></html>`

// write renders into a buffer first, so a template error never sends a
// half-written page.
func write(w http.ResponseWriter, status int, t *template.Template, p page) error {
	var buf bytes.Buffer
	err := t.Execute(&buf, p)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(fallback))
		return fmt.Errorf("pages: rendering: %w", err)
	}
	h.Set("Content-Language", p.Lang.Tag)
	// The same address answers in several languages; a cache that ignores
	// no-store must still not hand one person's language to another.
	h.Add("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}
