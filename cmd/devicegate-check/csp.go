package main

import (
	"net/http"
	"net/url"
	"strings"
)

// formActionAllows reports whether every Content-Security-Policy in h lets a
// form on a page at self navigate to target, and if not, the directive that
// blocks it. Browsers enforce each policy they receive (several headers, or
// several policies joined by commas in one), so one strict policy — for
// example globalHeaders added by a proxy on top of the handler's own — is
// enough to block. form-action does not fall back to default-src (CSP Level 3
// §6.4.1), and after a redirect the path is not compared (§6.7.2.8), so only
// scheme, host and port decide here.
func formActionAllows(h http.Header, self, target *url.URL) (bool, string) {
	for _, header := range h.Values("Content-Security-Policy") {
		for _, policy := range strings.Split(header, ",") {
			sources, found := directive(policy, "form-action")
			if !found {
				continue
			}
			if !sourceListMatches(sources, self, target) {
				return false, "form-action " + strings.Join(sources, " ")
			}
		}
	}
	return true, ""
}

// directive returns the source list of the first directive called name.
func directive(policy, name string) ([]string, bool) {
	for _, d := range strings.Split(policy, ";") {
		fields := strings.Fields(d)
		if len(fields) > 0 && strings.EqualFold(fields[0], name) {
			return fields[1:], true
		}
	}
	return nil, false
}

func sourceListMatches(sources []string, self, target *url.URL) bool {
	for _, s := range sources {
		if sourceMatches(s, self, target) {
			return true
		}
	}
	return false
}

// sourceMatches implements the parts of CSP source matching that a
// navigation target needs: 'self', *, scheme sources and host sources with
// optional scheme, wildcard host and port.
func sourceMatches(source string, self, target *url.URL) bool {
	ls := strings.ToLower(source)
	switch {
	case ls == "'none'":
		return false
	case ls == "'self'":
		return sameOrigin(self, target) ||
			// A secure upgrade of 'self' matches too (§6.7.2.7).
			(self.Scheme == "http" && target.Scheme == "https" && strings.EqualFold(self.Hostname(), target.Hostname()))
	case ls == "*":
		return target.Scheme == "http" || target.Scheme == "https" || target.Scheme == self.Scheme
	case strings.HasSuffix(ls, ":") && !strings.Contains(ls, "/"):
		scheme := strings.TrimSuffix(ls, ":")
		return target.Scheme == scheme || (scheme == "http" && target.Scheme == "https")
	case strings.HasPrefix(ls, "'"):
		return false // nonces, hashes and keywords say nothing about navigations
	}
	scheme, rest, hasScheme := strings.Cut(ls, "://")
	if !hasScheme {
		scheme, rest = "", ls
	}
	hostport, _, _ := strings.Cut(rest, "/")
	host, port, hasPort := strings.Cut(hostport, ":")
	if scheme != "" {
		if scheme != target.Scheme && !(scheme == "http" && target.Scheme == "https") {
			return false
		}
	} else if target.Scheme != self.Scheme && !(self.Scheme == "http" && target.Scheme == "https") {
		return false
	}
	th := strings.ToLower(target.Hostname())
	switch {
	case strings.HasPrefix(host, "*."):
		if !strings.HasSuffix(th, host[1:]) {
			return false
		}
	case host != th:
		return false
	}
	tp := target.Port()
	if tp == "" {
		tp = defaultPort(target.Scheme)
	}
	switch {
	case hasPort && port == "*":
		return true
	case hasPort:
		return port == tp
	default:
		want := defaultPort(scheme)
		if scheme == "" {
			want = defaultPort(target.Scheme)
		}
		// A source without a port matches the scheme's default port, and
		// http's 80 also covers its secure upgrade to 443.
		return tp == want || (want == "80" && tp == "443")
	}
}

func sameOrigin(a, b *url.URL) bool {
	pa, pb := a.Port(), b.Port()
	if pa == "" {
		pa = defaultPort(a.Scheme)
	}
	if pb == "" {
		pb = defaultPort(b.Scheme)
	}
	return a.Scheme == b.Scheme && strings.EqualFold(a.Hostname(), b.Hostname()) && pa == pb
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}
