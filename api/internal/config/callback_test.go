package config

import "testing"

// TestCallbackURLs: one provider keeps /api/callback; with several, the
// default keeps it and each other gets its own path, named after it.
func TestCallbackURLs(t *testing.T) {
	spotify := Upstream{Preset: "spotify", ClientID: "sp"}
	strava1 := Upstream{Preset: "strava", ClientID: "s-1"}
	strava2 := Upstream{Preset: "strava", ClientID: "s 2"}
	lab := Upstream{Preset: "oidc", Issuer: "https://id.lab.example:8443/realm", ClientID: "lab"}
	gen := Upstream{Preset: "generic", AuthURL: "https://auth.example.org/authorize", ClientID: "g"}
	const base = "https://gate.example/api/callback"
	tests := []struct {
		name    string
		clients []Client
		want    map[Upstream]string
	}{
		{"no clients", nil, map[Upstream]string{spotify: base}},
		{"default only", []Client{{ID: "tv"}}, map[Upstream]string{spotify: base}},
		{"one own upstream, no default client", []Client{{ID: "bike", Upstream: &strava1}}, map[Upstream]string{strava1: base}},
		{"default and others", []Client{{ID: "tv"}, {ID: "bike", Upstream: &strava1}, {ID: "lab", Upstream: &lab}, {ID: "g", Upstream: &gen}},
			map[Upstream]string{spotify: base, strava1: base + "/strava", lab: base + "/id.lab.example", gen: base + "/auth.example.org"}},
		{"two apps of one preset", []Client{{ID: "a", Upstream: &strava1}, {ID: "b", Upstream: &strava2}},
			map[Upstream]string{spotify: base, strava1: base + "/strava-s-1", strava2: base + "/strava-s-2"}},
		{"a client naming the default upstream", []Client{{ID: "tv"}, {ID: "radio", Upstream: &spotify}}, map[Upstream]string{spotify: base}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{PublicURL: "https://gate.example", Upstream: spotify, Clients: tc.clients}
			got := cfg.CallbackURLs()
			for u, want := range tc.want {
				if got[u] != want {
					t.Errorf("%s/%s: %q, want %q", u.Preset, u.ClientID, got[u], want)
				}
			}
		})
	}
}
