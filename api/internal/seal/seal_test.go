package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestRoundTripAndBinding(t *testing.T) {
	s, err := New(rand.Reader, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(`{"access_token":"at-123"}`)
	sealed, err := s.Seal(secret, []byte("record-a"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("at-123")) {
		t.Fatal("plaintext visible in the sealed value")
	}
	got, err := s.Open(sealed, []byte("record-a"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open: %q %v", got, err)
	}
	if _, err := s.Open(sealed, []byte("record-b")); !errors.Is(err, ErrOpen) {
		t.Errorf("opened with another record's id: %v", err)
	}
	again, _ := s.Seal(secret, []byte("record-a"))
	if bytes.Equal(again, sealed) {
		t.Error("two seals of the same value are equal (nonce reuse)")
	}
}

func TestTamperingIsDetected(t *testing.T) {
	s, _ := New(rand.Reader, testKey(1))
	sealed, _ := s.Seal([]byte("secret"), []byte("id"))
	for i := range sealed {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		if _, err := s.Open(c, []byte("id")); !errors.Is(err, ErrOpen) {
			t.Errorf("flipping byte %d went unnoticed", i)
		}
	}
	for _, short := range [][]byte{nil, {1}, sealed[:overhead-1]} {
		if _, err := s.Open(short, []byte("id")); !errors.Is(err, ErrOpen) {
			t.Errorf("short value %x opened", short)
		}
	}
}

func TestRotation(t *testing.T) {
	old, _ := New(rand.Reader, testKey(1))
	sealedOld, _ := old.Seal([]byte("v1"), []byte("id"))

	rotated, err := New(rand.Reader, testKey(2), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(sealedOld, []byte("id")); err != nil || string(got) != "v1" {
		t.Errorf("rotated sealer cannot open the old key's value: %q %v", got, err)
	}
	sealedNew, _ := rotated.Seal([]byte("v2"), []byte("id"))
	if _, err := old.Open(sealedNew, []byte("id")); !errors.Is(err, ErrOpen) {
		t.Errorf("the old sealer opened a value sealed with the new key: %v", err)
	}
	if !bytes.Equal(sealedNew[1:5], func() []byte { id := keyID(testKey(2)); return id[:] }()) {
		t.Error("new values are not sealed with the current key")
	}
}

func TestBadKeys(t *testing.T) {
	if _, err := New(rand.Reader, make([]byte, 16)); err == nil {
		t.Error("16-byte key accepted")
	}
	if _, err := New(rand.Reader, testKey(1), []byte("short")); err == nil {
		t.Error("short old key accepted")
	}
	if _, err := New(nil, testKey(1)); err == nil {
		t.Error("nil randomness accepted")
	}
	if bytes.Equal(DeriveKey(testKey(1)), testKey(1)) || len(DeriveKey(testKey(1))) != 32 {
		t.Error("DeriveKey")
	}
}
