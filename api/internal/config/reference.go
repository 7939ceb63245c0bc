package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/devicegate/devicegate/api/internal/upstream"
)

// Field documents one field of a device client entry (DEVICEGATE_CLIENTS or
// the clients file). Path is the JSON path, e.g. "upstream.preset".
type Field struct {
	Path, Default, Doc string
}

// ClientFields documents every field of ClientJSON and UpstreamJSON; a test
// checks it against their JSON tags, so a new field cannot go undocumented.
var ClientFields = []Field{
	{"client_id", "", "Required. The client_id the device sends; letters, digits and - . _ ~."},
	{"name", "client_id", "Shown to the person on the confirmation screen (\"Connect Living-room TV to Spotify?\")."},
	{"scopes", "any", "The scopes the device may ask for. Empty or absent: any scope."},
	{"default_scopes", "none", "Scopes used when the device asks for none; each must be in scopes."},
	{"scope_descriptions", "the preset's", "What the confirmation screen says for each scope, as an object: {\"user-read-currently-playing\": \"See the track you are playing\"}. Replaces the preset's description of that scope; a scope described nowhere is shown by its identifier. See \"Scope descriptions\"."},
	{"secret_env", "public client", "Name of the variable holding this device client's own secret at devicegate, at least 128 bits of estimated entropy (make one with openssl rand -base64 32; a weaker one stops the start). Absent: a public client, identified by client_id alone (usual for devices, which cannot keep a secret). Not allowed in passthrough mode."},
	{"mode", "proxy", "proxy: devicegate holds the provider's client secret and does the code exchange. passthrough: the device presents the provider's client secret at the token endpoint and devicegate exchanges the code with it at poll time, never storing the secret. See \"Proxy or passthrough\"."},
	{"upstream", "the default upstream", "This client's own provider, as an object with the fields below. Absent: the DEVICEGATE_UPSTREAM_* variables."},
	{"upstream.preset", "", "Required. spotify, strava, discord, dropbox, twitch, generic or oidc."},
	{"upstream.client_id", "", "Required. The client id of your app at the provider."},
	{"upstream.client_secret_env", "", "proxy mode: required, the name of the variable holding your app's client secret at the provider. passthrough mode: not allowed."},
	{"upstream.issuer", "", "oidc: the issuer URL, whose discovery document is read at start."},
	{"upstream.name", "provider's name", "generic and oidc: the name shown to people."},
	{"upstream.auth_url", "", "generic: the provider's authorization endpoint."},
	{"upstream.token_url", "", "generic: the provider's token endpoint."},
	{"upstream.pkce", "true", "generic: whether the provider supports PKCE S256."},
}

// VariablesTable renders Vars as the Markdown table README.md and
// docs/FORKING.md carry.
func VariablesTable() string {
	rows := make([][3]string, len(Vars))
	for i, v := range Vars {
		rows[i] = [3]string{v.Name, v.Default, v.Doc}
	}
	return referenceTable("Variable", rows)
}

// ClientFieldsTable renders ClientFields as a Markdown table.
func ClientFieldsTable() string {
	rows := make([][3]string, len(ClientFields))
	for i, f := range ClientFields {
		rows[i] = [3]string{f.Path, f.Default, f.Doc}
	}
	return referenceTable("Field", rows)
}

// referenceTable renders name/default/doc rows as a Markdown table whose
// first column is headed what.
func referenceTable(what string, rows [][3]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| %s | Default | What it does |\n|---|---|---|\n", what)
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r[0], code(r[1]), cell(r[2]))
	}
	return b.String()
}

// PresetsTable renders the provider presets — what each needs and which
// redirect URIs the provider accepts — from the presets themselves.
func PresetsTable() string {
	var b strings.Builder
	b.WriteString("| Preset | Provider | PKCE | devicegate authenticates with | Scopes joined by | Redirect URI rules |\n|---|---|---|---|---|---|\n")
	for _, name := range upstream.Names() {
		p, _ := upstream.Lookup(name)
		pkce := "no"
		if p.PKCE {
			pkce = "S256"
		}
		if name == "generic" {
			pkce = "S256 unless `pkce` is false"
		}
		auth := map[oauth2.AuthStyle]string{
			oauth2.AuthStyleInHeader: "client_secret_basic", oauth2.AuthStyleInParams: "client_secret_post",
		}[p.AuthStyle]
		if auth == "" {
			auth = "Basic, falling back to post"
		}
		sep := "space"
		if p.ScopeSeparator == "," {
			sep = "comma"
		}
		extra := ""
		for _, k := range slices.Sorted(maps.Keys(p.AuthParams)) {
			extra += fmt.Sprintf(" devicegate adds `%s=%s` to the authorize request.", k, p.AuthParams[k])
		}
		shown := cell(p.DisplayName)
		if p.DisplayName == "" {
			shown = "`DEVICEGATE_UPSTREAM_NAME`, else the host of the authorization URL"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", name, shown, pkce, auth, sep, cell(strings.ReplaceAll(p.RedirectRules, "<public URL>/api/callback", "`<public URL>/api/callback`")+extra))
	}
	return b.String()
}

func code(v string) string {
	if v == "" {
		return "—"
	}
	return "`" + v + "`"
}

func cell(v string) string { return strings.ReplaceAll(v, "|", `\|`) }
