package deviceflow

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
)

// UserCodeAlphabet is the user-code alphabet RFC 8628 §6.1 suggests: upper
// case consonants without vowels (no accidental words) and none that are
// easily confused (no A E I O U Y, no digits).
const UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// UserCodeLength is the number of characters in a user code: 20^8 ≈ 2^34.6
// codes, enough entropy given the rate limits on entry (RFC 8628 §5.1).
const UserCodeLength = 8

// deviceCodeBytes is the device code's entropy: 256 bits, far above the
// 128 bits the issue requires, so guessing one is hopeless (RFC 8628 §5.2).
const deviceCodeBytes = 32

// ErrInvalidUserCode means the input cannot be a user code at all: wrong
// length or a character outside the alphabet after normalisation.
var ErrInvalidUserCode = errors.New("deviceflow: not a valid user code")

// NewUserCode draws a uniformly random user code from r.
func NewUserCode(r io.Reader) (string, error) {
	// Rejection sampling keeps the draw uniform: 256 is not a multiple of
	// 20, so bytes ≥ 240 are discarded rather than folded in with a bias.
	const limit = 256 - 256%len(UserCodeAlphabet)
	out := make([]byte, 0, UserCodeLength)
	buf := make([]byte, UserCodeLength*2)
	for len(out) < UserCodeLength {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("deviceflow: reading randomness: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < UserCodeLength {
				out = append(out, UserCodeAlphabet[int(b)%len(UserCodeAlphabet)])
			}
		}
	}
	return string(out), nil
}

// NewDeviceCode draws a URL-safe device code with 256 bits of entropy.
func NewDeviceCode(r io.Reader) (string, error) {
	return randomToken(r, deviceCodeBytes)
}

// randomToken returns n random bytes from r, base64url without padding.
func randomToken(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("deviceflow: reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NormalizeUserCode turns what a person typed into the canonical code:
// upper case, with spaces, hyphens and similar separators dropped. It fails
// with ErrInvalidUserCode when the result cannot be a code, so a typo is told
// apart from a code that is merely unknown without a store lookup.
func NormalizeUserCode(in string) (string, error) {
	if len(in) > 64 {
		return "", ErrInvalidUserCode
	}
	var b strings.Builder
	for _, r := range in {
		switch {
		case r == ' ' || r == '-' || r == '\t' || r == '_' || r == '.' || r == '\u2010' || r == '\u2011' || r == '\u2012' || r == '\u2013' || r == '\u2014' || r == '\u00a0':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if r > 0x7f || !strings.ContainsRune(UserCodeAlphabet, r) {
			return "", ErrInvalidUserCode
		}
		b.WriteRune(r)
	}
	if b.Len() != UserCodeLength {
		return "", ErrInvalidUserCode
	}
	return b.String(), nil
}

// FormatUserCode shows a canonical code in two halves, "BCDF-GHJK", which is
// easier to read off a screen and type (RFC 8628 §6.1).
func FormatUserCode(code string) string {
	if len(code) != UserCodeLength {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// Hasher turns secret codes into store keys with HMAC-SHA256 under a server
// key. A plain hash would not do for user codes: 20^8 candidates can be
// hashed offline in minutes, so a leaked store would reveal live codes.
type Hasher struct {
	key  []byte
	macs sync.Pool // *macState: HMAC-SHA256 keyed with key
}

// NewHasher returns a Hasher keyed with key, which must be at least 32 bytes.
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("deviceflow: hash key has %d bytes, need at least 32", len(key))
	}
	// Derive a key for this one purpose, so the configured secret can serve
	// other uses (encryption, cookies) without the outputs being related.
	m := hmac.New(sha256.New, key)
	m.Write([]byte("devicegate code hashing v1"))
	return &Hasher{key: m.Sum(nil)}, nil
}

// Code kinds keep the hashes of different secrets apart.
const (
	kindDevice = "device"
	kindUser   = "user"
	kindState  = "state"
	// kindRefresh keys refresh-token bindings.
	kindRefresh = "refresh"
	// kindDecision binds a confirmation page's form token to one record.
	kindDecision = "decision"
)

// Hash returns the hex HMAC of code, domain-separated by kind.
// kindKeyID labels a key's fingerprint.
const kindKeyID = "key-id"

// Fingerprint names h's key without revealing it: an HMAC of a fixed
// label under the key, cut to 12 hex digits. Two keys share one with
// negligible probability; it only tells keys apart in the operator's list.
func (h *Hasher) Fingerprint() string { return h.Hash(kindKeyID, "")[:12] }

func (h *Hasher) Hash(kind, code string) string {
	// Every poll hashes its device code: a keyed HMAC is reused (Reset
	// restores the keyed state) instead of built, and the sum and its hex
	// form go through stack buffers, so the result string is the one
	// allocation.
	st, _ := h.macs.Get().(*macState)
	if st == nil {
		st = &macState{m: hmac.New(sha256.New, h.key)}
	}
	st.m.Reset()
	st.in = append(append(append(st.in[:0], kind...), 0), code...)
	st.m.Write(st.in)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], st.m.Sum(st.sum[:0]))
	if cap(st.in) <= 1024 { // a huge code is not kept around
		h.macs.Put(st)
	}
	return string(out[:])
}

// macState is a keyed HMAC with its input and output buffers, reused
// across Hash calls.
type macState struct {
	m   hash.Hash
	in  []byte
	sum [sha256.Size]byte
}
