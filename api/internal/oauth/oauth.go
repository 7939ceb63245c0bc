// Package oauth holds the OAuth 2.0 error answers devicegate speaks (RFC 6749
// §5.2, RFC 8628 §3.5) and the one way they are written on the wire.
//
// Errors are values, never mutated: WithDescription returns a copy, so a
// sentinel cannot pick up a description meant for one request and leak it
// into the next.
package oauth

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Error is an OAuth 2.0 error answer.
type Error struct {
	// Code is the RFC error code, e.g. "invalid_grant".
	Code string
	// Description is a human-readable explanation for the client developer.
	// It must never contain a secret.
	Description string
	// Status is the HTTP status the answer is sent with.
	Status int
}

// The error answers of RFC 6749 §5.2 and RFC 8628 §3.5. Status codes follow
// the RFCs: 400 for all but invalid_client (401) and server_error (500).
var (
	ErrInvalidRequest         = Error{Code: "invalid_request", Status: http.StatusBadRequest}
	ErrInvalidClient          = Error{Code: "invalid_client", Status: http.StatusUnauthorized}
	ErrInvalidGrant           = Error{Code: "invalid_grant", Status: http.StatusBadRequest}
	ErrUnauthorizedClient     = Error{Code: "unauthorized_client", Status: http.StatusBadRequest}
	ErrUnsupportedGrantType   = Error{Code: "unsupported_grant_type", Status: http.StatusBadRequest}
	ErrInvalidScope           = Error{Code: "invalid_scope", Status: http.StatusBadRequest}
	ErrAuthorizationPending   = Error{Code: pendingCode, Status: http.StatusBadRequest}
	ErrSlowDown               = Error{Code: "slow_down", Status: http.StatusBadRequest}
	ErrAccessDenied           = Error{Code: "access_denied", Status: http.StatusBadRequest}
	ErrExpiredToken           = Error{Code: "expired_token", Status: http.StatusBadRequest}
	ErrServerError            = Error{Code: "server_error", Status: http.StatusInternalServerError}
	ErrTemporarilyUnavailable = Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable}
)

// Error implements error.
func (e Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// Is makes errors.Is match on the code alone, so a described copy still
// matches its sentinel.
func (e Error) Is(target error) bool {
	t, ok := target.(Error)
	return ok && t.Code == e.Code
}

// WithDescription returns a copy of e carrying description.
func (e Error) WithDescription(description string) Error {
	e.Description = description
	return e
}

// body is the JSON shape of RFC 6749 §5.2.
type body struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// NoStore sets the headers RFC 6749 §5.1 requires on every answer that may
// carry credentials; devicegate sends them on every API answer.
func NoStore(h http.Header) {
	h["Cache-Control"] = noStore
	h["Pragma"] = noCache
}

// Header values shared by every answer, so the hot path does not build a
// []string per header. Each has len == cap, so an Add by anyone appends to
// a copy, never to the shared array; nothing writes into a value.
var (
	noStore  = []string{"no-store"}
	noCache  = []string{"no-cache"}
	jsonType = []string{"application/json"}
)

// WriteError writes e as an RFC 6749 §5.2 JSON error answer: the bytes
// WriteJSON(w, e.Status, body{…}) writes (TestWriteErrorIsWriteJSON and
// FuzzAppendJSONString hold the two together), appended directly, since
// most answers are errors and most of those are authorization_pending.
func WriteError(w http.ResponseWriter, e Error) {
	if e.Status == 0 {
		e.Status = http.StatusBadRequest
	}
	pending := e.Code == pendingCode
	if pending {
		if c := pendingBody.Load(); c != nil && c.desc == e.Description {
			write(w, e.Status, c.body)
			return
		}
	}
	bp := errBufs.Get().(*[]byte)
	b := append((*bp)[:0], `{"error":`...)
	b = appendJSONString(b, e.Code)
	if e.Description != "" { // omitempty
		b = append(b, `,"error_description":`...)
		b = appendJSONString(b, e.Description)
	}
	b = append(b, "}\n"...)
	if pending && len(b) <= 1024 {
		pendingBody.Store(&encodedPending{desc: e.Description, body: bytes.Clone(b)})
	}
	write(w, e.Status, b)
	if cap(b) <= 64<<10 { // a rare large answer is not kept
		*bp = b
		errBufs.Put(bp)
	}
}

// Most answers are a poll's authorization_pending, whose body never
// changes: pendingBody keeps the last one written, so it is encoded once
// rather than on every poll. It is looked up by the whole description (a
// different one is encoded, and replaces it) and holds only this code, so
// other answers never churn it. A stored body is never written into
// (io.Writer must not modify what it is given).
var pendingBody atomic.Pointer[encodedPending]

const pendingCode = "authorization_pending"

type encodedPending struct {
	desc string
	body []byte
}

// errBufs recycles WriteError's buffers.
var errBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// jsonSafe marks the ASCII bytes encoding/json writes as they are with
// HTML escaping on.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s as encoding/json writes a string with HTML
// escaping on (what Encoder.Encode and json.Marshal do): quotes,
// backslash, control characters, <, > and & escaped, invalid UTF-8 as
// \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// bufs recycles WriteJSON's encoding buffers.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// WriteJSON writes v as a JSON answer with no-store caching.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	buf := bufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 { // a rare large answer is not kept
			buf.Reset()
			bufs.Put(buf)
		}
	}()
	buf.Reset()
	// Encode writes what json.Marshal would, HTML escaping included, and
	// the newline.
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		// Every value passed here is a plain struct of strings and numbers;
		// failing to encode one is a programming error, answered safely.
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"server_error"}` + "\n")
	}
	write(w, status, buf.Bytes())
}

// write sends a JSON answer with no-store caching.
func write(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonType
	NoStore(h)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
