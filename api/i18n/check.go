package i18n

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Check reports every way a catalog's languages differ from English: a
// message missing or extra, a plain message where English counts or the
// reverse, a plural form the language's CLDR rules need but the file
// lacks, a placeholder dropped or added, and a scope description (from
// scopes, the English texts the presets use) without a translation, or a
// translation of a text no preset uses any more. The tests run it on the
// shipped catalog; a fork's new file gets the same scrutiny.
func Check(c *Catalog, scopes []string) []error {
	var errs []error
	en := c.Fallback()
	for _, l := range c.langs {
		for _, key := range slices.Sorted(maps.Keys(en.Messages)) {
			want := en.Messages[key]
			got, ok := l.Messages[key]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: message %q is missing", l.Tag, key))
				continue
			}
			if (want.Forms == nil) != (got.Forms == nil) {
				errs = append(errs, fmt.Errorf("%s: message %q must be %s, as in English", l.Tag, key, kind(want)))
				continue
			}
			wantPH := strings.Join(Placeholders(text(want)), ",")
			if got.Forms == nil {
				if p := strings.Join(Placeholders(got.Text), ","); p != wantPH {
					errs = append(errs, fmt.Errorf("%s: message %q has placeholders {%s}, English has {%s}", l.Tag, key, p, wantPH))
				}
				continue
			}
			for _, form := range l.neededForms() {
				if _, ok := got.Forms[form]; !ok {
					errs = append(errs, fmt.Errorf("%s: message %q lacks the plural form %q the language uses", l.Tag, key, form))
				}
			}
			for _, form := range slices.Sorted(maps.Keys(got.Forms)) {
				if p := strings.Join(Placeholders(got.Forms[form]), ","); p != wantPH {
					errs = append(errs, fmt.Errorf("%s: message %q (%s) has placeholders {%s}, English has {%s}", l.Tag, key, form, p, wantPH))
				}
			}
		}
		for _, key := range slices.Sorted(maps.Keys(l.Messages)) {
			if _, ok := en.Messages[key]; !ok {
				errs = append(errs, fmt.Errorf("%s: message %q is not in English (misspelt, or removed there)", l.Tag, key))
			}
		}
		if l == en {
			if len(l.Scopes) > 0 {
				errs = append(errs, fmt.Errorf("%s: English scope descriptions live with the presets (package upstream), not here", l.Tag))
			}
			continue
		}
		for _, s := range scopes {
			if l.Scopes[s] == "" {
				errs = append(errs, fmt.Errorf("%s: scope description %q is not translated", l.Tag, s))
			}
		}
		for _, s := range slices.Sorted(maps.Keys(l.Scopes)) {
			if !slices.Contains(scopes, s) {
				errs = append(errs, fmt.Errorf("%s: scope description %q is not used by any preset", l.Tag, s))
			}
		}
	}
	return errs
}

// neededForms are the plural forms the language's integers 0…1000 take,
// with "other" always.
func (l *Lang) neededForms() []string {
	forms := []string{"other"}
	for n := 0; n <= 1000; n++ {
		if f := FormName(l.Plural(n)); !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	slices.Sort(forms)
	return forms
}

func kind(m Message) string {
	if m.Forms == nil {
		return "a plain message"
	}
	return "a counted message (plural forms)"
}

func text(m Message) string {
	if m.Forms == nil {
		return m.Text
	}
	return m.Forms["other"]
}
