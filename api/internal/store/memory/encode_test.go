package memory

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// Every field of a record survives the encoding: times as instants with
// UTC and Local kept (a fixed offset otherwise, the monotonic reading
// dropped), nil and empty slices told apart.
func TestEncodeRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	east := time.FixedZone("X", 5*3600+1800)
	recs := []*store.Record{
		{},
		{ID: "a", UserCodeHash: "b", ClientID: "tv", Scopes: []string{"streaming", "", "user-read-email"},
			Status: store.StatusApproved, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour).Local(), Interval: 1 << 40,
			LastPoll: time.Now(), StateHash: "s", CodeVerifier: strings.Repeat("v", 300), Token: []byte{0, 1, 0xff},
			AuthCode: "sealed", ExchangeUntil: t0.In(east), Failures: -3, Locked: true, Reason: "nope\x00"},
		{Scopes: []string{}, Token: []byte{}, CreatedAt: time.Unix(-1e11, 999999999).UTC(), ExpiresAt: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)},
	}
	for _, r := range recs {
		got := decode(string(encode(nil, r, "42")))
		if got.Version != "42" {
			t.Errorf("Version = %q", got.Version)
		}
		want := *r
		want.Version = "42"
		for _, p := range []*time.Time{&want.CreatedAt, &want.ExpiresAt, &want.LastPoll, &want.ExchangeUntil} {
			*p = p.Round(0) // no monotonic reading
		}
		for _, pair := range [][2]time.Time{{got.CreatedAt, want.CreatedAt}, {got.ExpiresAt, want.ExpiresAt}, {got.LastPoll, want.LastPoll}, {got.ExchangeUntil, want.ExchangeUntil}} {
			g, w := pair[0], pair[1]
			_, goff := g.Zone()
			_, woff := w.Zone()
			if !g.Equal(w) || goff != woff || g.IsZero() != w.IsZero() || (w.Location() == time.UTC || w.Location() == time.Local) && g.Location() != w.Location() {
				t.Errorf("time %v decoded as %v", w, g)
			}
		}
		got.CreatedAt, got.ExpiresAt, got.LastPoll, got.ExchangeUntil = want.CreatedAt, want.ExpiresAt, want.LastPoll, want.ExchangeUntil
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("round trip:\n got %#v\nwant %#v", got, &want)
		}
	}
	if z := decode(string(encode(nil, &store.Record{}, ""))); z.LastPoll != (time.Time{}) {
		t.Errorf("zero time decoded as %#v", z.LastPoll)
	}
}

// Keys are one-to-one for short IDs and lowercase hex digests; any other
// ID is keyed by its SHA-256, and a lookup checks the stored ID, so two
// IDs never reach one record.
func TestKeys(t *testing.T) {
	hex := strings.Repeat("0123456789abcdef", 4)
	ids := []string{"", "a", strings.Repeat("x", 32), strings.Repeat("x", 33), hex, strings.ToUpper(hex), hex + "0", hex[:63] + "g"}
	seen := map[key]string{}
	for _, id := range ids {
		k := keyOf(id)
		if other, ok := seen[k]; ok {
			t.Errorf("%q and %q share a key", id, other)
		}
		seen[k] = id
	}
	if keyOf(hex).kind != keyHex || keyOf(strings.ToUpper(hex)).kind != keyDigest || keyOf(strings.Repeat("x", 32)).kind != 32 {
		t.Error("unexpected key forms")
	}

	ctx := context.Background()
	s := New(func() time.Time { return time.Unix(1000, 0) })
	long := strings.Repeat("L", 100)
	for i, id := range []string{long, hex, "short"} {
		r := &store.Record{ID: id, UserCodeHash: long + string(rune('a'+i)), ClientID: "tv", ExpiresAt: time.Unix(2000, 0)}
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, id); err != nil || got.ID != id {
			t.Errorf("Get(%q) = %v, %v", id, got, err)
		}
		if got, err := s.GetByUserCode(ctx, r.UserCodeHash); err != nil || got.ID != id {
			t.Errorf("GetByUserCode(%q) = %v, %v", r.UserCodeHash, got, err)
		}
	}
	// A digest collision is simulated by planting another ID's blob under
	// a long ID's key: the lookup must not return it.
	s.records[keyOf(long+"x")] = s.records[keyOf(long)]
	if _, err := s.Get(ctx, long+"x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a colliding key = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, long+"x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, long); err != nil {
		t.Errorf("Delete of a colliding key removed another record: %v", err)
	}
}
