package config

import (
	"slices"
	"strings"

	"github.com/devicegate/devicegate/api/internal/upstream"
)

// CallbackURLs gives each distinct upstream of c its own redirect URI, so
// that the callback knows which provider an answer came from (mix-up
// defence, RFC 9700 §4.4.2). The default upstream — and any upstream of a
// deployment that has only one — keeps <public URL>/api/callback, so apps
// registered before keep working; every other one gets
// /api/callback/<name>, its preset name (or, for generic and oidc, its
// host), with its client id added where two would share a name.
func (c *Config) CallbackURLs() map[Upstream]string {
	var others []Upstream
	hasDefault := len(c.Clients) == 0
	for _, cl := range c.Clients {
		switch {
		case cl.Upstream == nil:
			hasDefault = true
		case !slices.Contains(others, *cl.Upstream) && *cl.Upstream != c.Upstream:
			others = append(others, *cl.Upstream)
		}
	}
	base := c.PublicURL + "/api/callback"
	out := map[Upstream]string{c.Upstream: base}
	if !hasDefault && len(others) == 1 {
		out[others[0]] = base
		return out
	}
	names := map[string]int{}
	for _, u := range others {
		names[callbackName(u)]++
	}
	for _, u := range others {
		name := callbackName(u)
		if names[name] > 1 {
			name += "-" + slug(u.ClientID)
		}
		out[u] = base + "/" + name
	}
	return out
}

// callbackName is an upstream's part of its callback path.
func callbackName(u Upstream) string {
	switch u.Preset {
	case "generic":
		return slug(upstream.HostOf(u.AuthURL))
	case "oidc":
		return slug(upstream.HostOf(u.Issuer))
	}
	return slug(u.Preset)
}

// slug keeps letters, digits, dots and hyphens, so a name is one clean
// path segment.
func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}
