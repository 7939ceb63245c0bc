package config

import (
	"fmt"
	"slices"
	"strings"
)

// loginVars are read by devicegate-login, not by the server; a shell that
// runs both may hold them.
var loginVars = map[string]string{
	"DEVICEGATE_CLIENT_ID":     "DEVICEGATE_UPSTREAM_CLIENT_ID",
	"DEVICEGATE_CLIENT_SECRET": "DEVICEGATE_UPSTREAM_CLIENT_SECRET",
}

// UnknownVariables warns about DEVICEGATE_* variables in environ (os.Environ
// form, NAME=value) that no setting reads. Such a name is nearly always a
// misspelling, which would otherwise be ignored without a word; the warning
// suggests the closest real name. Names the clients' secret_env and
// client_secret_env point at are known, and DEVICEGATE_TEST_* belong to the
// test scripts. Values are never read into a message.
func (c *Config) UnknownVariables(environ []string) []string {
	known := map[string]bool{}
	for _, v := range Vars {
		known[v.Name] = true
	}
	for _, cl := range c.Clients {
		known[cl.SecretEnv] = true
		if cl.Upstream != nil {
			known[cl.Upstream.SecretEnv] = true
		}
	}
	var warns []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "DEVICEGATE_") || known[name] || strings.HasPrefix(name, "DEVICEGATE_TEST_") {
			continue
		}
		if server, ok := loginVars[name]; ok {
			warns = append(warns, fmt.Sprintf("%s: read by devicegate-login, not by the server, which ignores it (the server's app at the provider is %s)", name, server))
			continue
		}
		msg := name + ": no such setting; ignored"
		if s := closest(name); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		warns = append(warns, msg)
	}
	slices.Sort(warns)
	return warns
}

// closest is the variable name nearest to name: within a few edits, or else
// the shortest name holding every word of name (DEVICEGATE_UPSTREAM_SECRET
// → DEVICEGATE_UPSTREAM_CLIENT_SECRET). "" when nothing is near.
func closest(name string) string {
	best, bestDist := "", 4 // more than 3 edits is another word, not a typo
	for _, v := range Vars {
		if d := editDistance(name, v.Name); d < bestDist {
			best, bestDist = v.Name, d
		}
	}
	if best != "" {
		return best
	}
	words := strings.Split(strings.TrimPrefix(name, "DEVICEGATE_"), "_")
	for _, v := range Vars {
		have := strings.Split(strings.TrimPrefix(v.Name, "DEVICEGATE_"), "_")
		if len(words) > 0 && !slices.ContainsFunc(words, func(w string) bool { return !slices.Contains(have, w) }) &&
			(best == "" || len(v.Name) < len(best)) {
			best = v.Name
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (ASCII names).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
