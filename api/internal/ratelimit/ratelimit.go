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
}

// New returns a Limiter counting in c.
func New(c store.Counter, log *slog.Logger) *Limiter {
	return &Limiter{counter: c, log: log, local: memory.New(nil)}
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
	n, reset, err := l.counter.Incr(ctx, name+"|"+key, rule.Window)
	if err != nil {
		if now := time.Now().Unix(); now-l.warned.Load() >= 60 {
			l.warned.Store(now)
			l.log.WarnContext(ctx, "rate limit counter failed; counting in this instance only", "rule", name, "err", err)
		}
		// memory.Store's Incr cannot fail.
		n, reset, _ = l.local.Incr(ctx, name+"|"+key, rule.Window)
	}
	if n <= rule.Limit {
		return true, 0
	}
	retry := time.Until(reset)
	if retry < time.Second {
		retry = time.Second
	}
	if n == rule.Limit+1 {
		// Log once per window and client, not once per refused request.
		l.log.WarnContext(ctx, "rate limit reached", "rule", name, "client", key, "limit", rule.String())
	}
	return false, retry
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
		var entries []string
		for _, h := range r.Header.Values("X-Forwarded-For") {
			entries = append(entries, strings.Split(h, ",")...)
		}
		if len(entries) > 0 {
			i := max(0, len(entries)-hops)
			if ip, ok := ParseHost(entries[i]); ok {
				return ip
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
