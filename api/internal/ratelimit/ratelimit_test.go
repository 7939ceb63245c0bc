package ratelimit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
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

func (brokenCounter) IncrMember(context.Context, string, string, time.Duration) (map[string]int, time.Time, error) {
	return nil, time.Time{}, errors.New("down")
}

var _ store.Counter = brokenCounter{}

// TestCounterFailureFallsBackToLocal: a shared counter that fails (a
// Cosmos DB 429 under load) does not switch the limit off: the limiter
// counts in this process instead, and says so in the log once.
func TestCounterFailureFallsBackToLocal(t *testing.T) {
	var logs strings.Builder
	l := New(brokenCounter{}, slog.New(slog.NewTextHandler(&logs, nil)))
	rule := Rule{Limit: 2, Window: time.Minute}
	ctx := context.Background()
	for i := range 2 {
		if ok, _ := l.Allow(ctx, "verify", rule, "k"); !ok {
			t.Fatalf("event %d refused within the limit", i+1)
		}
	}
	if ok, retry := l.Allow(ctx, "verify", rule, "k"); ok || retry <= 0 {
		t.Errorf("over the limit with a failing counter: ok=%v retry=%v", ok, retry)
	}
	if n := strings.Count(logs.String(), "counting in this instance only"); n != 1 {
		t.Errorf("the fallback was logged %d times, want once:\n%s", n, logs.String())
	}
	// An address's networks too: the group of its narrowest two, and a
	// wider network's own count, both fall back.
	for _, ip := range []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::1")} {
		for i := range 2 {
			if ok, _ := l.AllowAddr(ctx, "verify", rule, ip); !ok {
				t.Fatalf("%v: event %d refused within the limit", ip, i+1)
			}
		}
		if ok, retry := l.AllowAddr(ctx, "verify", rule, ip); ok || retry <= 0 {
			t.Errorf("%v over the limit with a failing counter: ok=%v retry=%v", ip, ok, retry)
		}
	}
	// The /48's own count: eight /56s of one /48 fill its budget (8×2),
	// the ninth is refused.
	for i := range 9 {
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 5, byte(i), 0, 15: 1})
		for j := range 2 {
			ok, _ := l.AllowAddr(ctx, "wide", rule, ip)
			if want := i < 8; ok != want {
				t.Fatalf("/56 %d, event %d: allowed %v, want %v", i, j+1, ok, want)
			}
		}
	}
}

func TestClientIP(t *testing.T) {
	tests := []struct {
		name, remote string
		xff          []string // header lines
		hops         int
		want         string
	}{
		{"direct", "192.0.2.1:5555", nil, 0, "192.0.2.1"},
		{"xff ignored when untrusted", "192.0.2.1:5555", []string{"203.0.113.9"}, 0, "192.0.2.1"},
		{"xff ip:port", "10.0.0.1:1", []string{"203.0.113.9:41234"}, 1, "203.0.113.9"},
		{"the proxy's entry is the last", "10.0.0.1:1", []string{"203.0.113.9:1, 198.51.100.4:2"}, 1, "198.51.100.4"},
		{"spoofed prefix ignored", "10.0.0.1:1", []string{"1.2.3.4, 5.6.7.8, 198.51.100.4:443"}, 1, "198.51.100.4"},
		{"spoofed header line ignored", "10.0.0.1:1", []string{"1.2.3.4", "198.51.100.4:443"}, 1, "198.51.100.4"},
		{"two trusted hops", "10.0.0.1:1", []string{"1.2.3.4, 198.51.100.4:443, 10.9.9.9"}, 2, "198.51.100.4"},
		{"shorter than the hops", "10.0.0.1:1", []string{"198.51.100.4:443"}, 2, "198.51.100.4"},
		{"xff ipv6 bracketed", "10.0.0.1:1", []string{"[2001:db8::7]:443"}, 1, "2001:db8::7"},
		{"xff ipv6 bare", "10.0.0.1:1", []string{"2001:db8::7"}, 1, "2001:db8::7"},
		{"xff mapped", "10.0.0.1:1", []string{"::ffff:203.0.113.9"}, 1, "203.0.113.9"},
		{"xff garbage", "10.0.0.1:1", []string{"<script>"}, 1, "10.0.0.1"},
		{"xff empty last entry", "10.0.0.1:1", []string{"203.0.113.9, "}, 1, "10.0.0.1"},
		{"xff zone", "10.0.0.1:1", []string{"fe80::1%eth0"}, 1, "fe80::1"},
		{"remote ipv6", "[2001:db8::1]:80", nil, 0, "2001:db8::1"},
		{"remote garbage", "pipe", nil, 0, "invalid IP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, tc.hops).String(); got != tc.want {
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

// TestNestedPrefixesShareABudget: 100 /64s of one /48, each under its own
// limit, together get no more than the /48's budget (eight times the
// per-address limit); a /64 that floods spends no more of its /48 than its
// own limit; another /48 is untouched. IPv4 counts per address and per /24.
func TestNestedPrefixesShareABudget(t *testing.T) {
	c := storetest.NewClock()
	l := New(memory.New(c.Now), quiet).WithClock(c.Now)
	rule := Rule{Limit: 3, Window: time.Minute}
	ctx := context.Background()
	allowed := 0
	for i := range 100 {
		// Each /64 in a /56 of its own, so only the /48 binds.
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 7, byte(i), 0, 15: 1})
		for range 5 {
			if ok, _ := l.AllowAddr(ctx, "verify", rule, ip); ok {
				allowed++
			}
		}
	}
	if allowed != 8*rule.Limit {
		t.Errorf("100 /64s of one /48 were allowed %d requests, want the /48's %d", allowed, 8*rule.Limit)
	}
	if ok, _ := l.AllowAddr(ctx, "verify", rule, netip.MustParseAddr("2001:db8:8::1")); !ok {
		t.Error("another /48 was refused")
	}

	// A flooding /64 spends only its own limit of its /48.
	l = New(memory.New(c.Now), quiet).WithClock(c.Now)
	flood := netip.MustParseAddr("2001:db8:9:1::1")
	for range 100 {
		l.AllowAddr(ctx, "verify", rule, flood)
	}
	neighbour := 0
	for i := range 10 {
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 9, byte(10 + i), 0, 15: 1})
		for range 3 {
			if ok, _ := l.AllowAddr(ctx, "verify", rule, ip); ok {
				neighbour++
			}
		}
	}
	if want := 8*rule.Limit - rule.Limit; neighbour != want {
		t.Errorf("neighbours of a flooding /64 got %d, want %d", neighbour, want)
	}

	l = New(memory.New(c.Now), quiet).WithClock(c.Now)
	allowed = 0
	for i := range 50 {
		for range 5 {
			if ok, _ := l.AllowAddr(ctx, "verify", rule, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})); ok {
				allowed++
			}
		}
	}
	if allowed != 8*rule.Limit {
		t.Errorf("50 addresses of one IPv4 /24 were allowed %d, want %d", allowed, 8*rule.Limit)
	}

	// An IPv4 address that floods spends only its own limit of its /24,
	// and a /64 that floods only its own limit of its /56: the networks an
	// address shares one counter item with are derived from the members'
	// counts, so this is where a sum that forgot the cap would show.
	for _, tc := range []struct {
		flood      netip.Addr
		neighbour  func(i int) netip.Addr
		wider      int // the shared network's factor
		neighbours int
	}{
		{netip.MustParseAddr("198.51.101.1"), func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 101, byte(10 + i)}) }, 8, 10},
		{netip.MustParseAddr("2001:db8:a:1::1"), func(i int) netip.Addr {
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0x0a, 0, byte(10 + i), 15: 1})
		}, 4, 5},
	} {
		l = New(memory.New(c.Now), quiet).WithClock(c.Now)
		for range 100 {
			l.AllowAddr(ctx, "verify", rule, tc.flood)
		}
		got := 0
		for i := range tc.neighbours {
			for range rule.Limit {
				if ok, _ := l.AllowAddr(ctx, "verify", rule, tc.neighbour(i)); ok {
					got++
				}
			}
		}
		if want := tc.wider*rule.Limit - rule.Limit; got != want {
			t.Errorf("neighbours of flooding %v got %d, want %d", tc.flood, got, want)
		}
	}
}

// TestFailBlocksUntilTheWindowEnds: the failure that spends the budget
// puts the key in the local block list, which Blocked reads without the
// store, until the counter's window ends, so exactly Limit attempts are
// tried; a failure past the limit (one already in flight) says so.
func TestFailBlocksUntilTheWindowEnds(t *testing.T) {
	c := storetest.NewClock()
	l := New(memory.New(c.Now), quiet).WithClock(c.Now)
	rule := Rule{Limit: 2, Window: time.Minute}
	ctx := context.Background()
	ip := netip.MustParseAddr("203.0.113.5")
	if over, _ := l.FailAddr(ctx, "auth", rule, ip); over {
		t.Fatal("first failure over a limit of 2")
	}
	if b, _ := l.BlockedAddr("auth", ip); b {
		t.Fatal("blocked after one failure of two")
	}
	if over, _ := l.FailAddr(ctx, "auth", rule, ip); over {
		t.Fatal("second failure over a limit of 2")
	}
	if b, retry := l.BlockedAddr("auth", ip); !b || retry <= 0 || retry > time.Minute {
		t.Errorf("not blocked once the budget is spent: %v %v", b, retry)
	}
	if over, retry := l.FailAddr(ctx, "auth", rule, ip); !over || retry <= 0 {
		t.Errorf("a failure past the limit: over=%v retry=%v", over, retry)
	}
	if b, _ := l.BlockedAddr("auth", netip.MustParseAddr("203.0.114.5")); b {
		t.Error("another network blocked")
	}
	if b, _ := l.Blocked("other", Key(ip)); b {
		t.Error("another rule blocked")
	}
	c.Advance(time.Minute)
	if b, _ := l.BlockedAddr("auth", ip); b {
		t.Error("still blocked after the window")
	}
	var nilLimiter *Limiter
	if over, _ := nilLimiter.Fail(ctx, "auth", rule, "k"); over {
		t.Error("a nil limiter failed")
	}
}

// ClientIP and ParseHost no longer split the header or try ParseAddr on
// an address with a port (allocations on every request); they must answer
// exactly what the plain forms below — the code they replaced — answer.
func FuzzClientIPAsPlain(f *testing.F) {
	f.Add("192.0.2.1:5555", "1.2.3.4, 5.6.7.8, 198.51.100.4:443", "", 1)
	f.Add("[2001:db8::1]:80", "1.2.3.4", "198.51.100.4:443", 2)
	f.Add("::1", "203.0.113.9, ", "[2001:db8::7]:443,fe80::1%eth0", 3)
	f.Add("1.2.3.4:80:90", ",,,", "::ffff:1.2.3.4:80", 1)
	f.Add("[::1]", "", "", 0)
	f.Fuzz(func(t *testing.T, remote, xff1, xff2 string, hops int) {
		hops = max(0, hops%4)
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		for _, v := range []string{xff1, xff2} {
			if v != "" {
				r.Header.Add("X-Forwarded-For", v)
			}
		}
		if got, want := ClientIP(r, hops), plainClientIP(r, hops); got != want {
			t.Errorf("ClientIP(%q, %q, %d) = %v, plain form %v", remote, r.Header.Values("X-Forwarded-For"), hops, got, want)
		}
	})
}

func plainClientIP(r *http.Request, hops int) netip.Addr {
	if hops > 0 {
		var entries []string
		for _, h := range r.Header.Values("X-Forwarded-For") {
			entries = append(entries, strings.Split(h, ",")...)
		}
		if len(entries) > 0 {
			if ip, ok := plainParseHost(entries[max(0, len(entries)-hops)]); ok {
				return ip
			}
		}
	}
	ip, _ := plainParseHost(r.RemoteAddr)
	return ip
}

func plainParseHost(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 0 || len(s) > 64 {
		return netip.Addr{}, false
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap().WithZone(""), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil {
			return ip.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// TestGroupMembersAreOneByte: countAddr names an address's narrowest
// network within the second by the one byte between them, which holds
// only while the two are 8 bits apart (an IPv4 address in its /24, a /64
// in its /56). Were Prefixes to change that, two narrow networks could
// share a member's count and the wider count come out short; this fails
// first.
func TestGroupMembersAreOneByte(t *testing.T) {
	for _, ip := range []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8:1:2:3::1")} {
		ps := Prefixes(ip)
		bits := func(key string) int {
			if p, err := netip.ParsePrefix(key); err == nil {
				return p.Bits()
			}
			return netip.MustParseAddr(key).BitLen()
		}
		narrow, group := bits(ps[0].Key), bits(ps[1].Key)
		if want := map[bool]int{true: 24, false: 56}[ip.Is4()]; narrow-group != 8 || group != want {
			t.Errorf("%v: networks /%d in /%d; countAddr names members by byte %d of a /%d", ip, narrow, group, want/8, want)
		}
	}
}
