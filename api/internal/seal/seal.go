// Package seal encrypts the secrets devicegate must keep for a while —
// upstream tokens waiting for their device, PKCE verifiers — so that a
// leaked store (a backup, a stolen key to the database) reveals nothing
// usable.
//
// It uses AES-256-GCM with a random 96-bit nonce and the record's ID as
// associated data, so a sealed value cannot be moved to another record. A
// key id travels in every sealed value, so the key can rotate: a Sealer
// seals with its current key and opens with any key it was given.
//
// It also keeps the secret key those keys derive from, for local use, in
// a key file that must be its owner's alone (keyfile.go).
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// version is the first byte of every sealed value, for future formats.
const version = 1

const (
	keyIDLen = 4
	nonceLen = 12
	overhead = 1 + keyIDLen + nonceLen + 16 // version, key id, nonce, GCM tag
)

// ErrOpen means a sealed value could not be opened: unknown key, damage,
// or associated data (the record) that does not match.
var ErrOpen = errors.New("seal: cannot open sealed value")

type key struct {
	id   [keyIDLen]byte
	aead cipher.AEAD
}

// Sealer seals and opens values. It is safe for concurrent use.
type Sealer struct {
	rand    io.Reader
	current key
	byID    map[[keyIDLen]byte]cipher.AEAD
}

// DeriveKey derives the 32-byte encryption key from devicegate's master
// secret, so one configured secret serves hashing and encryption without
// the two keys being related.
func DeriveKey(master []byte) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("devicegate sealing v1"))
	return m.Sum(nil)
}

// New returns a Sealer that seals with current and opens with current and
// any of old. Every key must be 32 bytes. rand supplies nonces.
func New(rand io.Reader, current []byte, old ...[]byte) (*Sealer, error) {
	if rand == nil {
		return nil, errors.New("seal: a randomness source is required")
	}
	s := &Sealer{rand: rand, byID: map[[keyIDLen]byte]cipher.AEAD{}}
	for i, k := range append([][]byte{current}, old...) {
		if len(k) != 32 {
			return nil, fmt.Errorf("seal: key %d has %d bytes, want 32", i, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := keyID(k)
		if _, dup := s.byID[id]; dup {
			continue
		}
		s.byID[id] = aead
		if i == 0 {
			s.current = key{id: id, aead: aead}
		}
	}
	return s, nil
}

// keyID names a key without revealing it.
func keyID(k []byte) [keyIDLen]byte {
	sum := sha256.Sum256(append([]byte("devicegate key id\x00"), k...))
	var id [keyIDLen]byte
	copy(id[:], sum[:])
	return id
}

// Seal encrypts plaintext bound to ad (the record ID).
func (s *Sealer) Seal(plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, 1+keyIDLen+nonceLen, overhead+len(plaintext))
	out[0] = version
	copy(out[1:], s.current.id[:])
	nonce := out[1+keyIDLen:]
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, fmt.Errorf("seal: reading randomness: %w", err)
	}
	return s.current.aead.Seal(out, nonce, plaintext, ad), nil
}

// Open decrypts a value sealed for ad.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < overhead || sealed[0] != version {
		return nil, ErrOpen
	}
	var id [keyIDLen]byte
	copy(id[:], sealed[1:])
	aead, ok := s.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w: sealed with a key this process does not have", ErrOpen)
	}
	nonce := sealed[1+keyIDLen : 1+keyIDLen+nonceLen]
	pt, err := aead.Open(nil, nonce, sealed[1+keyIDLen+nonceLen:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
