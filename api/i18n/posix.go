package i18n

import (
	"strings"

	"golang.org/x/text/language"
)

// LocaleEnv are the environment variables that name a program's message
// language, in the order POSIX gives them precedence (XBD §8.2,
// "Internationalization Variables"): LC_ALL overrides everything, then
// the category's own variable, then LANG. An empty value counts as unset.
var LocaleEnv = []string{"LC_ALL", "LC_MESSAGES", "LANG"}

// ParsePOSIXLocale reads a POSIX locale name — language[_territory]
// [.codeset][@modifier], as in "de_DE.UTF-8" or "pt_BR" — as a BCP 47
// tag. The POSIX locale ("C", "POSIX", "C.UTF-8") and anything that is
// not a language name give ok == false: English, the programs' own.
func ParsePOSIXLocale(s string) (tag language.Tag, ok bool) {
	name, _, _ := strings.Cut(s, "@")
	name, _, _ = strings.Cut(name, ".")
	if name == "" || name == "C" || name == "POSIX" || len(name) > 35 {
		return language.Und, false
	}
	t, err := language.Parse(strings.ReplaceAll(name, "_", "-"))
	if err != nil || t == language.Und {
		return language.Und, false
	}
	return t, true
}

// ForEnvironment picks the language of a command-line program's messages
// from its environment: the first of LocaleEnv that is set decides (a
// later one is not consulted even when the first names no shipped
// language, as POSIX has it), matched like Accept-Language; the fallback
// when none is set, for the POSIX locale, or when nothing shipped fits.
func (c *Catalog) ForEnvironment(getenv func(string) string) *Lang {
	for _, name := range LocaleEnv {
		v := getenv(name)
		if v == "" {
			continue
		}
		t, ok := ParsePOSIXLocale(v)
		if !ok {
			return c.Fallback()
		}
		_, i, conf := c.matcher.Match(t)
		if conf == language.No {
			return c.Fallback()
		}
		return c.langs[i]
	}
	return c.Fallback()
}
