package i18n

import (
	"io/fs"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/devicegate/devicegate/api/internal/upstream"
)

// presetScopes is every English scope description of every preset.
func presetScopes(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, name := range upstream.Names() {
		p, _ := upstream.Lookup(name)
		for _, d := range p.Scopes {
			seen[d] = true
		}
	}
	if len(seen) < 50 {
		t.Fatalf("only %d preset scope descriptions found", len(seen))
	}
	return slices.Sorted(maps.Keys(seen))
}

// TestShippedLanguages: the six languages the pages promise are there,
// English first, each with its own name for the switcher.
func TestShippedLanguages(t *testing.T) {
	var tags []string
	for _, l := range Default.Langs() {
		tags = append(tags, l.Tag)
		if l.Name == "" || l.Name == l.Tag {
			t.Errorf("%s has no name of its own", l.Tag)
		}
	}
	if want := []string{"en", "de", "es", "fr", "ja", "pt-BR"}; !slices.Equal(tags, want) {
		t.Errorf("languages %q, want %q", tags, want)
	}
}

// TestEveryMessageTranslated: no shipped language lacks a message, a
// plural form it needs, a placeholder, or a preset's scope description.
func TestEveryMessageTranslated(t *testing.T) {
	for _, err := range Check(Default, presetScopes(t)) {
		t.Error(err)
	}
}

// mutated is the shipped catalog with one file changed by edit.
func mutated(t *testing.T, name string, edit func(string) string) *Catalog {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(files, "locales", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if p == "locales/"+name {
			s := edit(string(b))
			if s == string(b) {
				t.Fatalf("the edit did not change %s", name)
			}
			b = []byte(s)
		}
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCheckCatches: the check above fails for each kind of slip, in any
// language: a message removed, a placeholder dropped or added, a plural
// form missing, a scope description untranslated, a stray message.
func TestCheckCatches(t *testing.T) {
	scopes := presetScopes(t)
	tests := []struct {
		name, file string
		edit       func(string) string
		want       string
	}{
		{"message removed", "de.json", func(s string) string {
			return strings.Replace(s, `"confirm.deny": "Ablehnen",`, "", 1)
		}, `de: message "confirm.deny" is missing`},
		{"message removed from Japanese", "ja.json", func(s string) string {
			return strings.Replace(s, `"result.another": "別のコードを入力",`, "", 1)
		}, `ja: message "result.another" is missing`},
		{"placeholder dropped", "fr.json", func(s string) string {
			return strings.Replace(s, `"Continuer vers {provider}"`, `"Continuer"`, 1)
		}, `fr: message "confirm.continue" has placeholders {}, English has {provider}`},
		{"placeholder misspelt", "es.json", func(s string) string {
			return strings.Replace(s, `{device} ya está conectado`, `{dispositivo} ya está conectado`, 1)
		}, `es: message "result.success.lead_named" has placeholders {dispositivo,provider}, English has {device,provider}`},
		{"placeholder dropped in one plural form", "pt-BR.json", func(s string) string {
			return strings.Replace(s, `"one": "{n} segundo"`, `"one": "um segundo"`, 1)
		}, `pt-BR: message "duration.seconds" (one) has placeholders {}, English has {n}`},
		{"plural form missing", "de.json", func(s string) string {
			return strings.Replace(s, `"one": "{n} Minute",`, ``, 1)
		}, `de: message "duration.minutes" lacks the plural form "one"`},
		{"scope untranslated", "fr.json", func(s string) string {
			return strings.Replace(s, `"Play music on this device": "Lire de la musique sur cet appareil",`, ``, 1)
		}, `fr: scope description "Play music on this device" is not translated`},
		{"stray message", "es.json", func(s string) string {
			return strings.Replace(s, `"messages": {`, `"messages": {"entry.titel": "x",`, 1)
		}, `es: message "entry.titel" is not in English`},
		{"removed from English, left elsewhere", "en.json", func(s string) string {
			return strings.Replace(s, `"confirm.asks": "It asks for",`, ``, 1)
		}, `de: message "confirm.asks" is not in English`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, err := range Check(mutated(t, tc.file, tc.edit), scopes) {
				got = append(got, err.Error())
			}
			if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, tc.want) }) {
				t.Errorf("Check found %q, want %q", got, tc.want)
			}
		})
	}
}

// TestForkDropsInALanguage: a new file is a new language, found by its
// name, and checked like the shipped ones.
func TestForkDropsInALanguage(t *testing.T) {
	m := fstest.MapFS{}
	for _, l := range Default.Langs() {
		b, _ := fs.ReadFile(files, "locales/"+l.Tag+".json")
		m["locales/"+l.Tag+".json"] = &fstest.MapFile{Data: b}
	}
	m["locales/it.json"] = &fstest.MapFile{Data: []byte(`{"language": "Italiano", "messages": {"entry.title": "Inserisci il codice"}}`)}
	c, err := Load(m)
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Match("it-IT,it;q=0.9,en;q=0.5"); l.Tag != "it" || l.T("entry.title") != "Inserisci il codice" {
		t.Errorf("Italian was not picked up: %s", l.Tag)
	}
	errs := Check(c, presetScopes(t))
	if len(errs) == 0 || !strings.HasPrefix(errs[0].Error(), "it: message") {
		t.Errorf("an incomplete new language passed the check: %v", errs)
	}
	m["locales/IT_it.json"] = &fstest.MapFile{Data: []byte(`{}`)}
	if _, err := Load(m); err == nil {
		t.Error("a file not named by a canonical BCP 47 tag was loaded")
	}
}

func TestMatch(t *testing.T) {
	for header, want := range map[string]string{
		"":                             "en",
		"de-CH,de;q=0.9,en;q=0.8":      "de",
		"fr-CA":                        "fr",
		"es-419,es;q=0.9":              "es",
		"pt-BR":                        "pt-BR",
		"pt":                           "pt-BR",
		"pt-PT,pt;q=0.9":               "pt-BR",
		"ja,en-US;q=0.7":               "ja",
		"zh-CN,zh;q=0.9":               "en",
		"zh-CN,fr;q=0.5":               "fr",
		"en-GB,de;q=0.5":               "en",
		"de;q=0,fr":                    "fr",
		"*":                            "en",
		"not a header ,,; q=x":         "en",
		strings.Repeat("de-DE,", 1000): "de",
	} {
		if got := Default.Match(header).Tag; got != want {
			t.Errorf("Accept-Language %q: %s, want %s", header, got, want)
		}
	}
}

// TestForRequest: an explicit ?lang= wins over the cookie, which wins over
// Accept-Language; values that are not shipped tags are ignored.
func TestForRequest(t *testing.T) {
	tests := []struct {
		query, cookie, accept string
		want                  string
		chosen                bool
	}{
		{"", "", "ja", "ja", false},
		{"", "fr", "ja", "fr", false},
		{"lang=pt-br", "fr", "ja", "pt-BR", true},
		{"lang=xx", "fr", "ja", "fr", false},
		{"", "<script>", "es", "es", false},
		{"lang=de&lang=fr", "", "", "de", true},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/device?"+tc.query, nil)
		if tc.cookie != "" {
			r.Header.Set("Cookie", "devicegate-lang="+tc.cookie)
		}
		r.Header.Set("Accept-Language", tc.accept)
		l, chosen := Default.ForRequest(r, "devicegate-lang")
		if l.Tag != tc.want || chosen != tc.chosen {
			t.Errorf("%+v: %s (chosen %v), want %s (%v)", tc, l.Tag, chosen, tc.want, tc.chosen)
		}
	}
}

// TestPluralAndTime: counted messages follow each language's CLDR rules
// (French counts 0 as singular, Japanese has one form).
func TestPluralAndTime(t *testing.T) {
	tests := []struct {
		tag  string
		d    time.Duration
		want string
	}{
		{"en", time.Second, "1 second"},
		{"en", 30 * time.Second, "30 seconds"},
		{"en", 4*time.Minute + time.Second, "5 minutes"},
		{"en", 0, "a moment"},
		{"de", time.Second, "1 Sekunde"},
		{"de", 89 * time.Second, "89 Sekunden"},
		{"fr", time.Second, "1 seconde"},
		{"fr", 2 * time.Minute, "2 minutes"},
		{"es", time.Minute + 31*time.Second, "2 minutos"},
		{"pt-BR", time.Second, "1 segundo"},
		{"ja", 9 * time.Minute, "9分"},
		{"ja", time.Second, "1秒"},
	}
	for _, tc := range tests {
		if got := Default.Lookup(tc.tag).Duration(tc.d); got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.tag, tc.d, got, tc.want)
		}
	}
	fr := Default.Lookup("fr")
	if got := fr.T("confirm.expires", "n", 0); !strings.Contains(got, "0 minute.") {
		t.Errorf("French counts 0 as singular: %q", got)
	}
	if got := Default.Lookup("en").T("confirm.expires", "n", 0); !strings.Contains(got, "0 minutes.") {
		t.Errorf("English counts 0 as plural: %q", got)
	}
	if got := Default.Lookup("de").T("confirm.expires", "n", 1); got != "Dieser Code läuft in etwa 1 Minute ab." {
		t.Errorf("German singular: %q", got)
	}
}

// TestFillEscapes: TStrong escapes the message and every value; a value
// holding a placeholder is not filled again.
func TestFillEscapes(t *testing.T) {
	en := Default.Fallback()
	got := string(en.TStrong("confirm.lead", "client", `<b>{provider}</b>`, "provider", "Spo&tify"))
	want := `<strong>&lt;b&gt;{provider}&lt;/b&gt;</strong> wants to use your <strong>Spo&amp;tify</strong> account.`
	if got != want {
		t.Errorf("TStrong:\n got %s\nwant %s", got, want)
	}
	if got := en.T("no.such.key"); got != "no.such.key" {
		t.Errorf("unknown key: %q", got)
	}
	if got := Default.Lookup("de").Scope("An operator's own words"); got != "An operator's own words" {
		t.Errorf("an unknown scope text is changed: %q", got)
	}
}

// TestSentenceGap: Japanese sets sentences side by side without a space.
func TestSentenceGap(t *testing.T) {
	for tag, want := range map[string]string{"en": " ", "de": " ", "fr": " ", "pt-BR": " ", "ja": ""} {
		if got := Default.Lookup(tag).SentenceGap(); got != want {
			t.Errorf("%s: %q, want %q", tag, got, want)
		}
	}
}
