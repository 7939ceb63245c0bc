package deviceflow

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestNewUserCodeAlphabetAndLength(t *testing.T) {
	// What SECURITY.md's arithmetic rests on: 8 characters from the 20
	// consonants RFC 8628 §6.1 suggests (no vowels, so no words; no
	// digits, so nothing to confuse with letters).
	if UserCodeAlphabet != "BCDFGHJKLMNPQRSTVWXZ" || UserCodeLength != 8 {
		t.Fatalf("user codes are %d of %q, not 8 of the 20 consonants", UserCodeLength, UserCodeAlphabet)
	}
	seen := map[rune]int{}
	for range 2000 {
		c, err := NewUserCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != UserCodeLength {
			t.Fatalf("code %q has length %d", c, len(c))
		}
		for _, r := range c {
			if !strings.ContainsRune(UserCodeAlphabet, r) {
				t.Fatalf("code %q has %q outside the alphabet", c, r)
			}
			seen[r]++
		}
	}
	// 16000 draws over 20 letters: each should appear about 800 times.
	if len(seen) != len(UserCodeAlphabet) {
		t.Errorf("only %d of %d letters were ever drawn", len(seen), len(UserCodeAlphabet))
	}
	for r, n := range seen {
		if n < 600 || n > 1000 {
			t.Errorf("letter %q drawn %d times of 16000; the draw looks biased", r, n)
		}
	}
}

func TestNewUserCodeRejectsBiasedBytes(t *testing.T) {
	// Bytes ≥ 240 must be skipped, not folded onto the first letters.
	in := append(bytes.Repeat([]byte{255}, 16), []byte{0, 1, 2, 3, 4, 5, 6, 19, 0, 0, 0, 0, 0, 0, 0, 0}...)
	c, err := NewUserCode(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if c != "BCDFGHJZ" {
		t.Errorf("got %q, want BCDFGHJZ", c)
	}
}

func TestNewCodesFailOnShortRandomness(t *testing.T) {
	if _, err := NewUserCode(bytes.NewReader(nil)); err == nil {
		t.Error("NewUserCode with no randomness did not fail")
	}
	if _, err := NewDeviceCode(bytes.NewReader(make([]byte, 5))); err == nil {
		t.Error("NewDeviceCode with short randomness did not fail")
	}
}

func TestNewDeviceCode(t *testing.T) {
	a, _ := NewDeviceCode(rand.Reader)
	b, _ := NewDeviceCode(rand.Reader)
	if a == b {
		t.Fatal("two device codes are equal")
	}
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil {
		t.Fatalf("device code %q is not base64url: %v", a, err)
	}
	if len(raw)*8 < 128 {
		t.Errorf("device code has %d bits, want ≥ 128", len(raw)*8)
	}
}

func TestNormalizeUserCode(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "BCDFGHJK", want: "BCDFGHJK"},
		{in: "BCDF-GHJK", want: "BCDFGHJK"},
		{in: "bcdf-ghjk", want: "BCDFGHJK"},
		{in: " bcdf ghjk ", want: "BCDFGHJK"},
		{in: "b c d f g h j k", want: "BCDFGHJK"},
		{in: "BCDF–GHJK", want: "BCDFGHJK"}, // en dash from a phone keyboard
		{in: "bCdF_gHjK", want: "BCDFGHJK"},
		{in: "", err: true},
		{in: "BCDF-GHJ", err: true},
		{in: "BCDF-GHJKL", err: true},
		{in: "ABCD-EFGH", err: true}, // vowels are not in the alphabet
		{in: "BCDF-GHJ1", err: true},
		{in: "BCDF-GHJ\x00", err: true},
		{in: "ВCDF-GHJK", err: true}, // Cyrillic В
		{in: "<script>", err: true},
		{in: strings.Repeat("B", 100), err: true},
	}
	for _, tc := range tests {
		got, err := NormalizeUserCode(tc.in)
		if tc.err {
			if !errors.Is(err, ErrInvalidUserCode) {
				t.Errorf("NormalizeUserCode(%q) = %q, %v; want ErrInvalidUserCode", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeUserCode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatUserCode(t *testing.T) {
	if got := FormatUserCode("BCDFGHJK"); got != "BCDF-GHJK" {
		t.Errorf("got %q", got)
	}
	if got := FormatUserCode("odd"); got != "odd" {
		t.Errorf("got %q", got)
	}
}

func TestHasher(t *testing.T) {
	if _, err := NewHasher(make([]byte, 16)); err == nil {
		t.Error("a 16-byte key was accepted")
	}
	h1, _ := NewHasher(bytes.Repeat([]byte{1}, 32))
	h2, _ := NewHasher(bytes.Repeat([]byte{2}, 32))
	a := h1.Hash(kindUser, "BCDFGHJK")
	if a != h1.Hash(kindUser, "BCDFGHJK") {
		t.Error("hash is not deterministic")
	}
	if a == h2.Hash(kindUser, "BCDFGHJK") {
		t.Error("different keys give the same hash")
	}
	if a == h1.Hash(kindDevice, "BCDFGHJK") {
		t.Error("kinds are not separated")
	}
	if strings.Contains(a, "BCDFGHJK") || len(a) != 64 {
		t.Errorf("hash %q looks wrong", a)
	}
}

// FuzzNormalizeUserCode: whatever a person types, normalisation never
// panics, and what it accepts is canonical and stable.
func FuzzNormalizeUserCode(f *testing.F) {
	for _, s := range []string{"BCDF-GHJK", "bcdf ghjk", "", "ABCD-EFGH", "BCDF–GHJK", "\x00\xff", strings.Repeat("B", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizeUserCode(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidUserCode) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(got) != UserCodeLength {
			t.Fatalf("accepted %q as %q", in, got)
		}
		for _, r := range got {
			if !strings.ContainsRune(UserCodeAlphabet, r) {
				t.Fatalf("accepted %q as %q", in, got)
			}
		}
		if again, err := NormalizeUserCode(FormatUserCode(got)); err != nil || again != got {
			t.Fatalf("not stable: %q → %q → %q, %v", in, got, again, err)
		}
	})
}
