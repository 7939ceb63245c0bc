package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/devicegate/devicegate/api/internal/upstream"
)

// ClientJSON is one entry of DEVICEGATE_CLIENTS or the clients file, as
// written. docs/FORKING.md documents every field; a test keeps the two
// together.
type ClientJSON struct {
	ClientID      string        `json:"client_id"`
	Name          string        `json:"name"`
	Scopes        []string      `json:"scopes"`
	DefaultScopes []string      `json:"default_scopes"`
	SecretEnv     string        `json:"secret_env"`
	Mode          string        `json:"mode"`
	Upstream      *UpstreamJSON `json:"upstream"`
	// ScopeDescriptions maps a scope to what a person reads for it.
	ScopeDescriptions map[string]string `json:"scope_descriptions"`
}

// UpstreamJSON is a client's own upstream, as written.
type UpstreamJSON struct {
	Preset          string `json:"preset"`
	ClientID        string `json:"client_id"`
	ClientSecretEnv string `json:"client_secret_env"`
	Issuer          string `json:"issuer"`
	Name            string `json:"name"`
	AuthURL         string `json:"auth_url"`
	TokenURL        string `json:"token_url"`
	PKCE            *bool  `json:"pkce"`
}

// parseClients decodes the clients list and reports every problem, each
// with its place: the entry, and for a file its line and column. file is
// the file's name, or "" when the list came from DEVICEGATE_CLIENTS.
// timeout is the upstream exchange limit the clients' own upstreams share.
func parseClients(data []byte, file string, getenv func(string) string, timeout time.Duration) ([]Client, []string) {
	var problems []string
	// at names a place: "clients.json:12:5: " in a file, "1:45: " in the
	// variable (usually one long line, where the column finds the spot).
	at := func(offset int64) string {
		line, col := position(data, offset)
		if file == "" {
			return fmt.Sprintf("%d:%d: ", line, col)
		}
		return fmt.Sprintf("%s:%d:%d: ", file, line, col)
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, []string{at(skipSpace(data, 0)) + "not a JSON array of clients (the list starts with [ and holds one {…} per device client)"}
	}
	type entry struct {
		raw    json.RawMessage
		offset int64
	}
	var entries []entry
	for dec.More() {
		off := skipSpace(data, dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, []string{at(syntaxOffset(data, off)) + "not valid JSON: " + jsonMessage(err)}
		}
		entries = append(entries, entry{raw, off})
	}
	if _, err := dec.Token(); err != nil {
		return nil, []string{at(syntaxOffset(data, dec.InputOffset())) + "not valid JSON: " + jsonMessage(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, []string{at(skipSpace(data, dec.InputOffset())) + "unexpected text after the list of clients"}
	}
	if len(entries) == 0 {
		return nil, []string{at(skipSpace(data, 0)) + "the list is empty"}
	}

	clients := make([]Client, 0, len(entries))
	seen := map[string]bool{}
	for i, e := range entries {
		var cj ClientJSON
		if err := json.Unmarshal(e.raw, &cj); err != nil {
			problems = append(problems, fmt.Sprintf("%sentry %d: %s", at(e.offset), i+1, jsonMessage(err)))
			continue
		}
		where := fmt.Sprintf("%sentry %d", at(e.offset), i+1)
		if cj.ClientID != "" {
			where = fmt.Sprintf("%sentry %d (%q)", at(e.offset), i+1, safeText(cj.ClientID))
		}
		bad := func(format string, args ...any) {
			problems = append(problems, where+": "+fmt.Sprintf(format, args...))
		}
		// An unknown field is reported, and the entry's other fields are
		// still checked: one misspelling should not hide the next mistake.
		for _, f := range unknownFields(e.raw) {
			if s := closestField(f); s != "" {
				bad("unknown field %q (did you mean %q?)", safeText(f), s)
			} else {
				bad("unknown field %q", safeText(f))
			}
		}
		cl := Client{
			ID: cj.ClientID, Name: cj.Name, Scopes: cj.Scopes, DefaultScopes: cj.DefaultScopes,
			SecretEnv: cj.SecretEnv, Mode: Mode(cj.Mode), ScopeDescriptions: cj.ScopeDescriptions,
		}
		switch {
		case cl.ID == "":
			bad("client_id is required")
		case !validClientID(cl.ID):
			bad("client_id may use only letters, digits and - . _ ~ (at most 128)")
		case seen[cl.ID]:
			bad("client_id appears twice")
		}
		seen[cl.ID] = true
		if cl.Name == "" {
			cl.Name = cl.ID
		}
		for _, s := range append(slices.Clone(cl.Scopes), cl.DefaultScopes...) {
			if !ValidScope(s) {
				bad("%q is not a valid scope", safeText(s))
			}
		}
		for _, s := range cl.DefaultScopes {
			if !cl.AllowsScope(s) {
				bad("default scope %q is not in scopes", safeText(s))
			}
		}
		for _, s := range slices.Sorted(maps.Keys(cl.ScopeDescriptions)) {
			switch d := cl.ScopeDescriptions[s]; {
			case !ValidScope(s):
				bad("scope_descriptions: %q is not a valid scope", safeText(s))
			case !cl.AllowsScope(s):
				bad("scope_descriptions: %q is not in scopes", safeText(s))
			case strings.TrimSpace(d) == "" || len(d) > 200:
				bad("scope_descriptions: the description of %q must be 1 to 200 characters", safeText(s))
			}
		}
		switch cl.Mode {
		case "":
			cl.Mode = ModeProxy
		case ModeProxy, ModePassthrough:
		default:
			bad("mode %q is not proxy or passthrough", safeText(cj.Mode))
		}
		if cl.SecretEnv != "" {
			if cl.Passthrough() {
				bad("secret_env cannot be used in passthrough mode: there the device authenticates with the provider's client secret")
			} else if cl.Secret = getenv(cl.SecretEnv); cl.Secret == "" {
				bad("secret_env names %s, which is unset or empty", cl.SecretEnv)
			} else if bits := SecretBits(cl.Secret); bits < MinSecretBits {
				// RFC 6749 §10.10: a guessable secret is no secret, and
				// rate limits only slow guessing down.
				bad("the secret in %s is too weak to guess-proof (about %d bits estimated, at least %d needed); generate one with: openssl rand -base64 32", cl.SecretEnv, bits, MinSecretBits)
			}
		}
		if cj.Upstream != nil {
			up, ups := clientUpstream(cj.Upstream, cl.Passthrough(), getenv)
			for _, p := range ups {
				bad("%s", p)
			}
			up.Timeout = timeout
			cl.Upstream = &up
		}
		clients = append(clients, cl)
	}
	return clients, problems
}

// unknownFields lists the fields of a client entry (and of its upstream
// object) that ClientFields does not document, as paths ("upstream.scope").
func unknownFields(raw json.RawMessage) []string {
	var unknown []string
	var walk func(raw json.RawMessage, prefix string)
	walk = func(raw json.RawMessage, prefix string) {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			path := prefix + k
			if !slices.ContainsFunc(ClientFields, func(f Field) bool { return f.Path == path }) {
				unknown = append(unknown, path)
			} else if path == "upstream" {
				walk(obj[k], "upstream.")
			}
		}
	}
	walk(raw, "")
	return unknown
}

// closestField is the documented field nearest to an unknown one: within
// two edits at the same level ("scope" → "scopes"), or "".
func closestField(path string) string {
	prefix := path[:strings.LastIndex(path, ".")+1]
	best, bestDist := "", 3
	for _, f := range ClientFields {
		if f.Path[:strings.LastIndex(f.Path, ".")+1] != prefix {
			continue
		}
		if d := editDistance(path, f.Path); d < bestDist {
			best, bestDist = f.Path, d
		}
	}
	return best
}

// clientUpstream checks a client's own upstream.
func clientUpstream(j *UpstreamJSON, passthrough bool, getenv func(string) string) (Upstream, []string) {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, "upstream."+fmt.Sprintf(format, args...))
	}
	up := Upstream{
		Preset: strings.ToLower(j.Preset), ClientID: j.ClientID, SecretEnv: j.ClientSecretEnv,
		Issuer: j.Issuer, Name: j.Name, AuthURL: j.AuthURL, TokenURL: j.TokenURL, PKCE: j.PKCE == nil || *j.PKCE,
	}
	choices := strings.Join(upstream.Names(), ", ") + " or oidc"
	switch up.Preset {
	case "":
		bad("preset is required (%s)", choices)
	case "generic":
		if up.Name == "" {
			// As for DEVICEGATE_UPSTREAM_NAME: the authorization URL's host.
			up.Name = upstream.HostOf(up.AuthURL)
		}
		if err := checkEndpoint(up.AuthURL, "generic"); err != nil {
			bad("auth_url: %v", err)
		}
		if err := checkEndpoint(up.TokenURL, "generic"); err != nil {
			bad("token_url: %v", err)
		}
	case "oidc":
		if err := checkEndpoint(up.Issuer, "oidc"); err != nil {
			bad("issuer: %v", err)
		}
	default:
		if _, ok := upstream.Lookup(up.Preset); !ok {
			bad("preset %q is unknown (choose one of %s)", safeText(j.Preset), choices)
		}
	}
	if up.Preset != "generic" {
		if up.AuthURL != "" || up.TokenURL != "" || j.PKCE != nil {
			bad("auth_url, token_url and pkce apply to the generic preset only")
		}
		if up.Issuer != "" && up.Preset != "oidc" {
			bad("issuer applies to the oidc preset only")
		}
	}
	if up.ClientID == "" {
		bad("client_id is required: the client id of your app at the provider")
	}
	switch {
	case passthrough && up.SecretEnv != "":
		bad("client_secret_env cannot be used in passthrough mode: the device presents the provider's client secret")
	case !passthrough && up.SecretEnv == "":
		bad("client_secret_env is required: the name of the variable holding your app's client secret at the provider")
	case !passthrough:
		if up.ClientSecret = getenv(up.SecretEnv); up.ClientSecret == "" {
			bad("client_secret_env names %s, which is unset or empty", up.SecretEnv)
		}
	}
	return up, problems
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// skipSpace moves an offset past whitespace and the comma between values.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n,", data[off]) >= 0 {
		off++
	}
	return off
}

// syntaxOffset is the offset of the first syntax error in data, or def.
// A streaming Decoder's offsets count its buffer, not the input, so the
// whole text is checked again with Unmarshal, whose offsets are exact.
func syntaxOffset(data []byte, def int64) int64 {
	var v any
	var se *json.SyntaxError
	if errors.As(json.Unmarshal(data, &v), &se) {
		return max(se.Offset-1, 0) // Offset counts the bytes read, the bad one included
	}
	return def
}

// jsonMessage is a decoding error without the "json: " prefix.
func jsonMessage(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "the text ends in the middle of the list"
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s must be %s, not a JSON %s", te.Field, typeName(te.Type.Kind().String()), te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func typeName(kind string) string {
	switch kind {
	case "slice":
		return "a list"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "ptr", "struct", "map":
		return "an object"
	}
	return kind
}

// safeText cuts a value from the file short and keeps it printable.
func safeText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 64 {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// unwrapPathError drops the path a *fs.PathError repeats.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// MinSecretBits is the least estimated entropy a device client's secret
// must have: 128 bits, what RFC 6749 §10.10 and RFC 6819 §5.1.4.2.2 point
// to for credentials that must not be guessable (2^128 guesses is out of
// reach at any rate).
const MinSecretBits = 128

// SecretBits estimates the entropy of a secret in bits, conservatively: its
// length times the lesser of log2 of the alphabet its character classes
// span (lower case, upper case, digits, anything else) and the Shannon
// entropy of its own character frequencies. A random base64 secret of 32
// bytes (openssl rand -base64 32) scores about 200; a 4-digit PIN 8; a
// long repeated word far below 128. It is an estimate: a secret built
// from a phrase can score more than it holds, never the other way round
// for a random one of 32 bytes.
func SecretBits(secret string) int {
	if secret == "" {
		return 0
	}
	var lower, upper, digit, other bool
	freq := map[rune]int{}
	n := 0
	for _, r := range secret {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		default:
			other = true
		}
		freq[r]++
		n++
	}
	alphabet := 0
	for _, c := range []struct {
		in   bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 33}} {
		if c.in {
			alphabet += c.size
		}
	}
	perChar := math.Log2(float64(alphabet))
	shannon := 0.0
	for _, k := range freq {
		p := float64(k) / float64(n)
		shannon -= p * math.Log2(p)
	}
	return int(float64(n) * min(perChar, shannon))
}
