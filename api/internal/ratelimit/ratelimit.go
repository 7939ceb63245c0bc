// Package ratelimit bounds how often one client may do a thing, with the
// counts kept in the shared store (store.Counter) so the limit holds across
// every instance of the app. It also owns how a client's address is found,
// since a limit keyed on a spoofable address is no limit.
package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/memory"
)

// Rule is a limit: at most Limit events per Window.
type Rule struct {
	Limit  int
	Window time.Duration
}

// ParseRule reads "30/10m" (30 events per 10 minutes); "0" or "off"
// disables the rule.
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	if s == "0" || strings.EqualFold(s, "off") {
		return Rule{}, nil
	}
	n, w, ok := strings.Cut(s, "/")
	limit, err := strconv.Atoi(n)
	if !ok || err != nil || limit < 1 {
		return Rule{}, fmt.Errorf("%q is not COUNT/WINDOW, e.g. 30/10m", s)
	}
	window, err := time.ParseDuration(w)
	if err != nil || window < time.Second || window > 24*time.Hour {
		return Rule{}, fmt.Errorf("%q: the window must be a duration from 1s to 24h", s)
	}
	return Rule{Limit: limit, Window: window}, nil
}

// Times is the rule with n times the limit in the same window, for a
// network wider than one address (see Prefixes).
func (r Rule) Times(n int) Rule {
	if r.Off() {
		return r
	}
	return Rule{Limit: r.Limit * n, Window: r.Window}
}

// Off reports whether the rule limits nothing.
func (r Rule) Off() bool { return r.Limit == 0 }

func (r Rule) String() string {
	if r.Off() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", r.Limit, r.Window)
}

// Limiter applies rules over a shared counter.
type Limiter struct {
	counter store.Counter
	log     *slog.Logger
	// local counts in this process alone, for when the shared counter
	// fails: a limit that switched off whenever the store is overloaded
	// would be off exactly when an attack overloads it.
	local *memory.Store
	// warned is when the last fallback warning was logged (Unix seconds),
	// so an outage is one log line a minute, not one a request.
	warned atomic.Int64
	// now is the clock the blocks below are timed by: the counter's own,
	// so a window ends for both at the same moment.
	now func() time.Time
	// blocked remembers, in this process, failure keys the shared count put
	// over their limit, with the end of that window, so that Blocked can
	// refuse before a secret is compared or a store is read, at no cost.
	mu      sync.Mutex
	blocked map[string]time.Time
}

// maxBlocked bounds the blocked map (about 100 bytes an entry); expired
// entries are dropped when it fills. See Fail for what a full map means.
const maxBlocked = 1 << 17

// New returns a Limiter counting in c.
func New(c store.Counter, log *slog.Logger) *Limiter {
	return &Limiter{counter: c, log: log, local: memory.New(nil), now: time.Now, blocked: map[string]time.Time{}}
}

// WithClock sets the clock the Limiter times its remembered blocks by; it
// must be the counter's (tests inject one into both).
func (l *Limiter) WithClock(now func() time.Time) *Limiter {
	l.now = now
	l.local = memory.New(now)
	return l
}

// Allow counts one event for key under rule and reports whether it is
// within the limit; if not, retryAfter says when the window ends. When the
// shared counter fails, Allow counts in this process instead and logs it:
// the limit then holds per instance rather than across all of them, which
// is weaker but never off.
func (l *Limiter) Allow(ctx context.Context, name string, rule Rule, key string) (ok bool, retryAfter time.Duration) {
	if l == nil || rule.Off() {
		return true, 0
	}
	n, retry := l.incr(ctx, name, rule, key)
	return l.allowed(ctx, name, rule, key, n, retry)
}

// allowed judges the n-th event of key's window under rule.
func (l *Limiter) allowed(ctx context.Context, name string, rule Rule, key string, n int, retry time.Duration) (bool, time.Duration) {
	if n <= rule.Limit {
		return true, 0
	}
	if n == rule.Limit+1 {
		// Log once per window and client, not once per refused request.
		l.log.WarnContext(ctx, "rate limit reached", "rule", name, "client", key, "limit", rule.String())
	}
	return false, retry
}

// incr counts one event and returns the count and the time left in the
// window (at least a second).
func (l *Limiter) incr(ctx context.Context, name string, rule Rule, key string) (int, time.Duration) {
	n, reset, err := l.counter.Incr(ctx, name+"|"+key, rule.Window)
	if err != nil {
		if now := time.Now().Unix(); now-l.warned.Load() >= 60 {
			l.warned.Store(now)
			l.log.WarnContext(ctx, "rate limit counter failed; counting in this instance only", "rule", name, "err", err)
		}
		// memory.Store's Incr cannot fail.
		n, reset, _ = l.local.Incr(ctx, name+"|"+key, rule.Window)
	}
	return n, max(reset.Sub(l.now()), time.Second)
}

// incrMember counts one event for member in group, as incr does for a key:
// in the shared counter, or in this process when that fails.
func (l *Limiter) incrMember(ctx context.Context, name string, rule Rule, group, member string) (map[string]int, time.Duration) {
	counts, reset, err := l.counter.IncrMember(ctx, name+"|"+group, member, rule.Window)
	if err != nil {
		if now := time.Now().Unix(); now-l.warned.Load() >= 60 {
			l.warned.Store(now)
			l.log.WarnContext(ctx, "rate limit counter failed; counting in this instance only", "rule", name, "err", err)
		}
		// memory.Store's IncrMember cannot fail.
		counts, reset, _ = l.local.IncrMember(ctx, name+"|"+group, member, rule.Window)
	}
	return counts, max(reset.Sub(l.now()), time.Second)
}

// Fail counts one failure (a wrong client secret, a poll of an unknown
// device code, a user code that matched nothing) for key under rule in the
// shared counter. The failure that spends the budget (the Limit-th) puts
// the key in this process's block list until the window ends, so that
// Blocked refuses the next attempt before it is tried: of a budget of
// Limit, exactly Limit attempts are tried. over reports a failure past
// the limit (one that slipped in before the block was known) and when to
// retry.
//
// Another instance learns of the block at its own next failure, so across
// n instances at most n−1 failures past the limit are tried per window
// (and in one instance, as many as are in flight at the moment the budget
// is spent). When the list is full of live blocks, a new block is not
// remembered: that key's attempts are then tried, each one counted, and
// each failure answered as over the limit.
func (l *Limiter) Fail(ctx context.Context, name string, rule Rule, key string) (over bool, retryAfter time.Duration) {
	if l == nil || rule.Off() {
		return false, 0
	}
	n, retry := l.incr(ctx, name, rule, key)
	return l.failed(ctx, name, rule, key, n, retry)
}

// failed judges the n-th failure of key's window under rule, blocking key
// from the failure that spends the budget on.
func (l *Limiter) failed(ctx context.Context, name string, rule Rule, key string, n int, retry time.Duration) (bool, time.Duration) {
	if n < rule.Limit {
		return false, 0
	}
	if n == rule.Limit {
		l.log.WarnContext(ctx, "failure budget spent; further attempts refused before they are tried", "rule", name, "client", key, "limit", rule.String())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.blocked) >= maxBlocked {
		now := l.now()
		for k, until := range l.blocked {
			if !now.Before(until) {
				delete(l.blocked, k)
			}
		}
	}
	if len(l.blocked) < maxBlocked {
		l.blocked[name+"|"+key] = l.now().Add(retry)
	}
	return n > rule.Limit, retry
}

// Blocked reports whether key is known, in this process, to be over the
// limit of failures named name, and for how long; it reads no store.
func (l *Limiter) Blocked(name, key string) (bool, time.Duration) {
	if l == nil {
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.blocked[name+"|"+key]
	if !ok {
		return false, 0
	}
	left := until.Sub(l.now())
	if left <= 0 {
		delete(l.blocked, name+"|"+key)
		return false, 0
	}
	return true, max(left, time.Second)
}

// anyBlocked reports whether any key is blocked now or was until lately.
func (l *Limiter) anyBlocked() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.blocked) > 0
}

// AllowAddr is Allow for a client address, counted in each network of
// Prefixes(ip) under that network's share of rule, narrowest first. A
// request refused by a narrower network is not counted in the wider ones,
// so one /64 that floods cannot spend its /48's budget for its neighbours
// beyond its own limit.
func (l *Limiter) AllowAddr(ctx context.Context, name string, rule Rule, ip netip.Addr) (bool, time.Duration) {
	if l == nil || rule.Off() {
		return true, 0
	}
	for _, c := range l.countAddr(ctx, name, rule, ip) {
		if ok, retry := l.allowed(ctx, name, c.rule, c.key, c.n, c.retry); !ok {
			return false, retry
		}
	}
	return true, 0
}

// FailAddr is Fail for a client address, in each network of Prefixes(ip),
// narrowest first, stopping at the first one over its limit.
func (l *Limiter) FailAddr(ctx context.Context, name string, rule Rule, ip netip.Addr) (bool, time.Duration) {
	if l == nil || rule.Off() {
		return false, 0
	}
	for _, c := range l.countAddr(ctx, name, rule, ip) {
		if over, retry := l.failed(ctx, name, c.rule, c.key, c.n, c.retry); over {
			return true, retry
		}
	}
	return false, 0
}

// counted is one network's count of an event (countAddr).
type counted struct {
	key   string // the network, as Prefixes names it
	rule  Rule   // the network's share of the rule
	n     int    // the event's number in the network's window
	retry time.Duration
}

// countAddr counts one event of ip in the networks of Prefixes(ip),
// narrowest first, and stops after the first network it puts over that
// network's share of rule: an event refused by a narrower network is not
// counted in the wider ones. It returns the networks counted.
//
// The two narrowest networks share one group of the counter, so that one
// store operation counts both (one Cosmos DB patch): the group is the
// second network (an IPv4 /24, an IPv6 /56), its members the narrowest
// networks in it (the address, the /64), each named by the one byte that
// tells them apart, so a group never has more than 256 members. The
// second network's count is then the sum of its members' counts, each
// capped at the narrowest network's limit, which is exactly the count a
// counter of its own would have reached: every event under its member's
// limit added one, every event over it none. A wider network (the IPv6
// /48) has a count of its own.
func (l *Limiter) countAddr(ctx context.Context, name string, rule Rule, ip netip.Addr) []counted {
	ps := Prefixes(ip)
	if len(ps) == 1 {
		n, retry := l.incr(ctx, name, rule, ps[0].Key)
		return []counted{{ps[0].Key, rule, n, retry}}
	}
	narrow, group := rule.Times(ps[0].Factor), rule.Times(ps[1].Factor)
	member := strconv.Itoa(int(ip.As16()[7]))
	if ip.Is4() {
		member = strconv.Itoa(int(ip.As4()[3]))
	}
	counts, retry := l.incrMember(ctx, name, rule, ps[1].Key, member)
	out := []counted{{ps[0].Key, narrow, counts[member], retry}}
	if counts[member] > narrow.Limit {
		return out
	}
	sum := 0
	for _, n := range counts {
		sum += min(n, narrow.Limit)
	}
	out = append(out, counted{ps[1].Key, group, sum, retry})
	if sum > group.Limit {
		return out
	}
	for _, p := range ps[2:] {
		wide := rule.Times(p.Factor)
		n, retry := l.incr(ctx, name, wide, p.Key)
		out = append(out, counted{p.Key, wide, n, retry})
		if n > wide.Limit {
			break
		}
	}
	return out
}

// BlockedAddr is Blocked for any network of Prefixes(ip).
func (l *Limiter) BlockedAddr(name string, ip netip.Addr) (bool, time.Duration) {
	if !l.anyBlocked() {
		// Nearly always: nothing is over a failure budget, and every poll
		// asks; the network keys need not be built for that.
		return false, 0
	}
	for _, p := range Prefixes(ip) {
		if blocked, retry := l.Blocked(name, p.Key); blocked {
			return true, retry
		}
	}
	return false, 0
}

// ClientIP returns the address of the client that sent r.
//
// hops is how many trusted proxies in front of devicegate append to
// X-Forwarded-For; 0 means none, and the header is ignored because any
// client can send it. A proxy appends the address it received the request
// from, so of the list only the last hops entries were written by trusted
// proxies: the client's address is the hops-th entry from the right, and
// anything to the left of it is whatever the client sent. Reading the
// left-most entry instead, as many do, lets a client choose its address,
// and so a fresh rate-limit allowance, with every request.
//
// Azure Static Web Apps writes entries as "ip:port"; see SECURITY.md for
// what is known of the header there and how the deployment check verifies
// it. A list shorter than hops means no client entry was sent, and its
// first entry is the client; an entry that does not parse falls back to
// the connection's address.
func ClientIP(r *http.Request, hops int) netip.Addr {
	if hops > 0 {
		// The entries of every X-Forwarded-For line, comma-separated, in
		// order; found by counting rather than by splitting them all.
		lines := r.Header.Values("X-Forwarded-For")
		n := 0
		for _, h := range lines {
			n += strings.Count(h, ",") + 1
		}
		if n > 0 {
			i := max(0, n-hops)
			for _, h := range lines {
				if c := strings.Count(h, ",") + 1; i >= c {
					i -= c
					continue
				}
				for ; i > 0; i-- {
					_, h, _ = strings.Cut(h, ",")
				}
				entry, _, _ := strings.Cut(h, ",")
				if ip, ok := ParseHost(entry); ok {
					return ip
				}
				break
			}
		}
	}
	ip, _ := ParseHost(r.RemoteAddr)
	return ip
}

// ParseHost reads an address in any of the shapes proxies write:
// "192.0.2.1", "192.0.2.1:443", "2001:db8::1", "[2001:db8::1]:443",
// with surrounding spaces. An IPv4-mapped IPv6 address becomes IPv4.
func ParseHost(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 0 || len(s) > 64 {
		return netip.Addr{}, false
	}
	// An address with a port (what RemoteAddr always is) has one colon,
	// or starts with a bracket; ParseAddr would refuse it, and building
	// its error costs an allocation on every request.
	if strings.Count(s, ":") != 1 && s[0] != '[' {
		if ip, err := netip.ParseAddr(s); err == nil {
			return ip.Unmap().WithZone(""), true
		}
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil {
			return ip.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// Prefix is one network a client address is counted in, and how many
// times a rule's per-address limit that network gets.
type Prefix struct {
	Key    string
	Factor int
}

// Prefixes lists the networks an address is counted in, narrowest first:
// for IPv4 the address (×1) and its /24 (×8); for IPv6 its /64 (×1), /56
// (×4) and /48 (×8). One subscriber usually holds a /64, a site a /56 or
// /48, and a /48 (65,536 /64s) is free from tunnel brokers: counted per
// /64 alone, it would hold 65,536 budgets. Counted per /48 too, it holds
// eight. SECURITY.md gives the arithmetic. The first two networks are 8
// bits apart, which countAddr relies on (TestGroupMembersAreOneByte).
func Prefixes(ip netip.Addr) []Prefix {
	switch {
	case !ip.IsValid():
		return []Prefix{{"unknown", 1}}
	case ip.Is4():
		p24, _ := ip.Prefix(24)
		return []Prefix{{ip.String(), 1}, {p24.String(), 8}}
	}
	p64, _ := ip.Prefix(64)
	p56, _ := ip.Prefix(56)
	p48, _ := ip.Prefix(48)
	return []Prefix{{p64.String(), 1}, {p56.String(), 4}, {p48.String(), 8}}
}

// Key is what limits count by: an IPv4 address, or the /64 network of an
// IPv6 address, since one IPv6 subscriber usually holds a whole /64.
func Key(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "unknown"
	case ip.Is4():
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}
