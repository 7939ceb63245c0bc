// Package i18n holds the words of every page a person sees, in each shipped
// language, and picks the language for a request.
//
// Each language is one file, locales/<BCP 47 tag>.json, embedded in the
// binary: a fork adds a language or rewords a message by dropping in or
// editing that one file (docs/FORKING.md). English (en.json) is the source
// and the fallback; the tests refuse a catalog that lacks a message, has one
// English does not, or drops or adds a placeholder.
//
// A file has three parts:
//
//	{
//	  "language": "Deutsch",                 // the language's own name, for the switcher
//	  "messages": {
//	    "entry.title": "Code eingeben",       // a plain message
//	    "confirm.expires": {                  // a counted message: CLDR plural forms
//	      "one": "… in etwa {n} Minute ab.",
//	      "other": "… in etwa {n} Minuten ab."
//	    }
//	  },
//	  "scopes": {                             // preset scope descriptions, by their English text
//	    "Play music on this device": "Musik auf diesem Gerät abspielen"
//	  }
//	}
//
// Placeholders are {name}; the plural form is chosen by the CLDR rules of
// golang.org/x/text/feature/plural for the language. The package only
// produces text: callers escape it (html/template does).
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
)

//go:embed locales/*.json
var files embed.FS

// Fallback is the language every other is measured against and the one
// used when nothing the browser asks for is shipped.
const Fallback = "en"

// Message is one message, plain or counted.
type Message struct {
	Text  string            // a plain message
	Forms map[string]string // a counted message: CLDR form ("one", "other", …) → text
}

// UnmarshalJSON takes a string or an object of plural forms.
func (m *Message) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &m.Text); err == nil {
		return nil
	}
	if err := json.Unmarshal(b, &m.Forms); err != nil {
		return fmt.Errorf("a message is a string or an object of plural forms: %w", err)
	}
	if _, ok := m.Forms["other"]; !ok {
		return fmt.Errorf("a counted message needs the form \"other\"")
	}
	for f := range m.Forms {
		if _, ok := formNames[f]; !ok {
			return fmt.Errorf("unknown plural form %q (want zero, one, two, few, many or other)", f)
		}
	}
	return nil
}

var formNames = map[string]plural.Form{
	"zero": plural.Zero, "one": plural.One, "two": plural.Two,
	"few": plural.Few, "many": plural.Many, "other": plural.Other,
}

// FormName is the CLDR name of a plural form.
func FormName(f plural.Form) string {
	for n, g := range formNames {
		if g == f {
			return n
		}
	}
	return "other"
}

// Lang is one language's catalog.
type Lang struct {
	Tag      string // BCP 47, as written in the file name: "pt-BR"
	Name     string // the language's own name: "Português (Brasil)"
	tag      language.Tag
	Messages map[string]Message
	Scopes   map[string]string
}

type file struct {
	Language string             `json:"language"`
	Messages map[string]Message `json:"messages"`
	Scopes   map[string]string  `json:"scopes"`
}

// Catalog is every shipped language.
type Catalog struct {
	langs   []*Lang // Fallback first, then by tag
	byTag   map[string]*Lang
	matcher language.Matcher
}

// Load reads every locales/*.json of fsys.
func Load(fsys fs.FS) (*Catalog, error) {
	names, err := fs.Glob(fsys, "locales/*.json")
	if err != nil {
		return nil, err
	}
	c := &Catalog{byTag: map[string]*Lang{}}
	for _, name := range names {
		tagText := strings.TrimSuffix(path.Base(name), ".json")
		tag, err := language.Parse(tagText)
		if err != nil || tag.String() != tagText {
			return nil, fmt.Errorf("i18n: %s: the file name must be a BCP 47 tag in canonical form (%v)", name, tag)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var f file
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("i18n: %s: %w", name, err)
		}
		if f.Language == "" || len(f.Messages) == 0 {
			return nil, fmt.Errorf("i18n: %s: needs \"language\" and \"messages\"", name)
		}
		l := &Lang{Tag: tagText, Name: f.Language, tag: tag, Messages: f.Messages, Scopes: f.Scopes}
		c.langs = append(c.langs, l)
		c.byTag[strings.ToLower(tagText)] = l
	}
	if c.byTag[Fallback] == nil {
		return nil, fmt.Errorf("i18n: locales/%s.json is missing", Fallback)
	}
	slices.SortFunc(c.langs, func(a, b *Lang) int {
		switch {
		case a.Tag == Fallback:
			return -1
		case b.Tag == Fallback:
			return 1
		}
		return strings.Compare(a.Tag, b.Tag)
	})
	tags := make([]language.Tag, len(c.langs))
	for i, l := range c.langs {
		tags[i] = l.tag
	}
	// The fallback is first, so it is what the matcher answers when
	// nothing fits.
	c.matcher = language.NewMatcher(tags)
	return c, nil
}

// Default is the embedded catalog, loaded once; it panics if a shipped
// file is broken, which the package's tests rule out.
var Default = func() *Catalog {
	c, err := Load(files)
	if err != nil {
		panic(err)
	}
	return c
}()

// Langs lists the shipped languages, the fallback first.
func (c *Catalog) Langs() []*Lang { return slices.Clone(c.langs) }

// Lookup returns the language with exactly this tag (any case), or nil.
func (c *Catalog) Lookup(tag string) *Lang {
	if len(tag) > 35 {
		return nil
	}
	return c.byTag[strings.ToLower(tag)]
}

// Fallback returns the fallback language.
func (c *Catalog) Fallback() *Lang { return c.byTag[Fallback] }

// Match picks the shipped language that best serves an Accept-Language
// header (RFC 9110 §12.5.4), with the fallback when none does.
func (c *Catalog) Match(acceptLanguage string) *Lang {
	if len(acceptLanguage) > 512 {
		// No browser sends this much; parsing it is work for nothing.
		acceptLanguage = acceptLanguage[:512]
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return c.Fallback()
	}
	_, i, conf := c.matcher.Match(tags...)
	if conf == language.No {
		return c.Fallback()
	}
	return c.langs[i]
}

// CookieName and QueryParam carry a person's explicit choice.
const (
	CookieName = "devicegate-lang"
	QueryParam = "lang"
)

// ForRequest picks the language for a page: an explicit ?lang= naming a
// shipped language, else the remembered choice (cookie, under the name
// given, which may carry a __Host- prefix), else Accept-Language. chosen
// reports an explicit ?lang=, which the caller remembers.
func (c *Catalog) ForRequest(r *http.Request, cookieName string) (l *Lang, chosen bool) {
	if l := c.Lookup(r.URL.Query().Get(QueryParam)); l != nil {
		return l, true
	}
	if ck, err := r.Cookie(cookieName); err == nil {
		if l := c.Lookup(ck.Value); l != nil {
			return l, false
		}
	}
	return c.Match(r.Header.Get("Accept-Language")), false
}

// message returns the text for key and count n (n < 0: a plain message).
// A key this language lacks falls back to English; one English lacks
// shows as the key itself, which the tests rule out for shipped files.
func (l *Lang) message(fallback *Lang, key string, n int) string {
	m, ok := l.Messages[key]
	if !ok && fallback != nil {
		return fallback.message(nil, key, n)
	}
	if !ok {
		return key
	}
	if m.Forms == nil {
		return m.Text
	}
	if s, ok := m.Forms[FormName(l.Plural(n))]; ok {
		return s
	}
	return m.Forms["other"]
}

// Plural is the CLDR cardinal plural form of the integer n in l.
func (l *Lang) Plural(n int) plural.Form {
	if n < 0 {
		n = -n
	}
	return plural.Cardinal.MatchPlural(l.tag, n, 0, 0, 0, 0)
}

// fallback is filled in by the catalog: a language's missing message (only
// possible in a fork's file, which the tests would flag) shows in English.
func (l *Lang) fb() *Lang {
	if l.Tag == Fallback {
		return nil
	}
	return Default.Fallback()
}

// T returns the message key with its placeholders filled from args, given
// as name, value pairs. A message with plural forms is counted by the
// argument "n". Placeholders without a value are left as written.
func (l *Lang) T(key string, args ...any) string {
	return fill(l.message(l.fb(), key, count(args)), args, false)
}

// TStrong is T for HTML: the message is escaped, and each argument is
// escaped and set in <strong>.
func (l *Lang) TStrong(key string, args ...any) template.HTML {
	return template.HTML(fill(html.EscapeString(l.message(l.fb(), key, count(args))), args, true))
}

// Form returns the plural form form of a counted message, placeholders
// filled from args, for a script that counts on the page (Intl.PluralRules
// picks the same CLDR form). A form the language does not use is "other".
func (l *Lang) Form(key, form string, args ...any) string {
	m, ok := l.Messages[key]
	if !ok {
		if fb := l.fb(); fb != nil {
			return fb.Form(key, form, args...)
		}
		return key
	}
	if m.Forms == nil {
		return fill(m.Text, args, false)
	}
	s, ok := m.Forms[form]
	if !ok {
		s = m.Forms["other"]
	}
	return fill(s, args, false)
}

// SentenceGap is what goes between two sentences a page sets side by side
// (a bold one and the next): a space, except in scripts written without
// spaces between sentences (Japanese, Chinese, Thai).
func (l *Lang) SentenceGap() string {
	script, _ := l.tag.Script()
	switch script.String() {
	case "Jpan", "Hans", "Hant", "Thai":
		return ""
	}
	return " "
}

// Scope translates a scope description written in English; one this
// language does not know (an operator's own) is shown as written.
func (l *Lang) Scope(english string) string {
	if s, ok := l.Scopes[english]; ok {
		return s
	}
	return english
}

// Duration says how long to wait, the way a person would: seconds under a
// minute and a half, whole minutes (rounded up) above.
func (l *Lang) Duration(d time.Duration) string {
	switch {
	case d <= 0:
		return l.T("duration.moment")
	case d < 90*time.Second:
		return l.T("duration.seconds", "n", int((d+time.Second-1)/time.Second))
	default:
		return l.T("duration.minutes", "n", int((d+time.Minute-1)/time.Minute))
	}
}

func count(args []any) int {
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "n" {
			if n, ok := args[i+1].(int); ok {
				return n
			}
		}
	}
	return -1
}

// fill replaces each {name} of s with its argument, in one pass, so a
// value that itself holds "{x}" is never filled again.
func fill(s string, args []any, strong bool) string {
	if len(args) == 0 {
		return s
	}
	pairs := make([]string, 0, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		name, _ := args[i].(string)
		var v string
		switch a := args[i+1].(type) {
		case string:
			v = a
		case int:
			v = strconv.Itoa(a)
		default:
			v = fmt.Sprint(a)
		}
		if strong {
			v = "<strong>" + html.EscapeString(v) + "</strong>"
		}
		pairs = append(pairs, "{"+name+"}", v)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// Placeholders lists the {name} placeholders of s, sorted, once each.
func Placeholders(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		name := s[i+1 : i+j]
		if name != "" && !strings.ContainsAny(name, " {") {
			out = append(out, name)
		}
		s = s[i+j+1:]
	}
	slices.Sort(out)
	return slices.Compact(out)
}
