package i18n

import "testing"

func TestParsePOSIXLocale(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" : not a language (English)
	}{
		{"de_DE.UTF-8", "de-DE"},
		{"de_DE@euro", "de-DE"},
		{"de_DE.ISO-8859-15@euro", "de-DE"},
		{"pt_BR", "pt-BR"},
		{"ja_JP.eucJP", "ja-JP"},
		{"fr", "fr"},
		{"es_419.UTF-8", "es-419"},
		{"sr_RS@latin", "sr-RS"},
		{"C", ""},
		{"POSIX", ""},
		{"C.UTF-8", ""},
		{"", ""},
		{".UTF-8", ""},
		{"not a locale", ""},
		{"xx_" + string(make([]byte, 40)), ""},
	} {
		got, ok := ParsePOSIXLocale(tc.in)
		if (tc.want == "") == ok || ok && got.String() != tc.want {
			t.Errorf("ParsePOSIXLocale(%q) = %v, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

func TestForEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unset", nil, "en"},
		{"LANG alone", map[string]string{"LANG": "de_DE.UTF-8"}, "de"},
		{"LC_MESSAGES beats LANG", map[string]string{"LANG": "de_DE.UTF-8", "LC_MESSAGES": "fr_FR.UTF-8"}, "fr"},
		{"LC_ALL beats both", map[string]string{"LANG": "de_DE.UTF-8", "LC_MESSAGES": "fr_FR.UTF-8", "LC_ALL": "ja_JP.UTF-8"}, "ja"},
		{"empty LC_ALL is unset", map[string]string{"LC_ALL": "", "LANG": "es_ES.UTF-8"}, "es"},
		{"C decides, LANG is not consulted", map[string]string{"LC_ALL": "C", "LANG": "de_DE.UTF-8"}, "en"},
		{"POSIX", map[string]string{"LANG": "POSIX"}, "en"},
		{"Brazilian Portuguese", map[string]string{"LANG": "pt_BR.UTF-8"}, "pt-BR"},
		{"Portugal's Portuguese gets the Portuguese shipped", map[string]string{"LANG": "pt_PT.UTF-8"}, "pt-BR"},
		{"Austrian German", map[string]string{"LANG": "de_AT.UTF-8"}, "de"},
		{"Mexican Spanish", map[string]string{"LANG": "es_MX.UTF-8"}, "es"},
		{"a language not shipped", map[string]string{"LANG": "fi_FI.UTF-8"}, "en"},
		{"a first choice not shipped is not passed over", map[string]string{"LC_ALL": "fi_FI.UTF-8", "LANG": "de_DE.UTF-8"}, "en"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Default.ForEnvironment(func(k string) string { return tc.env[k] })
			if got.Tag != tc.want {
				t.Errorf("got %s, want %s", got.Tag, tc.want)
			}
		})
	}
}
