package ratelimit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/memory"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestParseRule(t *testing.T) {
	good := map[string]Rule{"30/10m": {30, 10 * time.Minute}, " 5/1s ": {5, time.Second}, "off": {}, "0": {}}
	for in, want := range good {
		if got, err := ParseRule(in); err != nil || got != want {
			t.Errorf("ParseRule(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "30", "x/1m", "-1/1m", "5/0s", "5/48h", "5/abc"} {
		if _, err := ParseRule(in); err == nil {
			t.Errorf("ParseRule(%q) accepted", in)
		}
	}
}

func TestLimitHoldsAndResets(t *testing.T) {
	c := storetest.NewClock()
	l := New(memory.New(c.Now), quiet)
	rule := Rule{Limit: 3, Window: time.Minute}
	ctx := context.Background()
	for i := range 3 {
		if ok, _ := l.Allow(ctx, "verify", rule, "192.0.2.1"); !ok {
			t.Fatalf("event %d refused within the limit", i+1)
		}
	}
	for range 5 {
		if ok, retry := l.Allow(ctx, "verify", rule, "192.0.2.1"); ok || retry <= 0 {
			t.Fatalf("over the limit: ok=%v retry=%v", ok, retry)
		}
	}
	if ok, _ := l.Allow(ctx, "verify", rule, "192.0.2.2"); !ok {
		t.Error("another client was refused")
	}
	if ok, _ := l.Allow(ctx, "authorize", rule, "192.0.2.1"); !ok {
		t.Error("another rule shares the count")
	}
	c.Advance(time.Minute)
	if ok, _ := l.Allow(ctx, "verify", rule, "192.0.2.1"); !ok {
		t.Error("refused in the next window")
	}
	if ok, _ := l.Allow(ctx, "verify", Rule{}, "192.0.2.1"); !ok {
		t.Error("an off rule refused")
	}
	var nilLimiter *Limiter
	if ok, _ := nilLimiter.Allow(ctx, "verify", rule, "x"); !ok {
		t.Error("a nil limiter refused")
	}
}

type brokenCounter struct{}

func (brokenCounter) Incr(context.Context, string, time.Duration) (int, time.Time, error) {
	return 0, time.Time{}, errors.New("down")
}

var _ store.Counter = brokenCounter{}

func TestCounterFailureFailsOpen(t *testing.T) {
	l := New(brokenCounter{}, quiet)
	if ok, _ := l.Allow(context.Background(), "verify", Rule{Limit: 1, Window: time.Minute}, "k"); !ok {
		t.Error("a failing counter refused the request")
	}
}

func TestClientIP(t *testing.T) {
	tests := []struct {
		name, remote, xff string
		trusted           bool
		want              string
	}{
		{"direct", "192.0.2.1:5555", "", false, "192.0.2.1"},
		{"xff ignored when untrusted", "192.0.2.1:5555", "203.0.113.9", false, "192.0.2.1"},
		{"xff ip:port", "10.0.0.1:1", "203.0.113.9:41234", true, "203.0.113.9"},
		{"xff list", "10.0.0.1:1", "203.0.113.9:1, 10.1.1.1", true, "203.0.113.9"},
		{"xff ipv6 bracketed", "10.0.0.1:1", "[2001:db8::7]:443", true, "2001:db8::7"},
		{"xff ipv6 bare", "10.0.0.1:1", "2001:db8::7", true, "2001:db8::7"},
		{"xff mapped", "10.0.0.1:1", "::ffff:203.0.113.9", true, "203.0.113.9"},
		{"xff garbage", "10.0.0.1:1", "<script>", true, "10.0.0.1"},
		{"xff empty entry", "10.0.0.1:1", " , 203.0.113.9", true, "10.0.0.1"},
		{"xff zone", "10.0.0.1:1", "fe80::1%eth0", true, "fe80::1"},
		{"remote ipv6", "[2001:db8::1]:80", "", false, "2001:db8::1"},
		{"remote garbage", "pipe", "", false, "invalid IP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := ClientIP(r, tc.trusted).String(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	if Key(netip.MustParseAddr("192.0.2.1")) != "192.0.2.1" {
		t.Error("ipv4 key")
	}
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	if Key(a) != Key(b) || Key(a) != "2001:db8:1:2::/64" {
		t.Errorf("ipv6 keys %s %s", Key(a), Key(b))
	}
	if Key(netip.Addr{}) != "unknown" {
		t.Error("invalid key")
	}
}

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "192.0.2.1:80", "[::1]:80", "::1", "", "a,b", "[[::1]]:x", "1.2.3.4%x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, ok := ParseHost(s)
		if ok && !ip.IsValid() {
			t.Errorf("ParseHost(%q) ok with an invalid address", s)
		}
		_ = Key(ip)
	})
}
