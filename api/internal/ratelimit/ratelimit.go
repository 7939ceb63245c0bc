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
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
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
}

// New returns a Limiter counting in c.
func New(c store.Counter, log *slog.Logger) *Limiter {
	return &Limiter{counter: c, log: log}
}

// Allow counts one event for key under rule and reports whether it is
// within the limit; if not, retryAfter says when the window ends. When the
// counter fails, Allow lets the event through and logs: the store failing
// is already an outage, and failing closed would only widen it.
func (l *Limiter) Allow(ctx context.Context, name string, rule Rule, key string) (ok bool, retryAfter time.Duration) {
	if l == nil || rule.Off() {
		return true, 0
	}
	n, reset, err := l.counter.Incr(ctx, name+"|"+key, rule.Window)
	if err != nil {
		l.log.WarnContext(ctx, "rate limit counter failed; allowing", "rule", name, "err", err)
		return true, 0
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

// ClientIP returns the address of the client that sent r. Behind a
// trusted front (Azure Static Web Apps) it is the first X-Forwarded-For
// entry, which that front sets as "ip:port"; anywhere else the header is
// ignored, because any client can send it. A header that does not parse
// falls back to the connection's address.
func ClientIP(r *http.Request, trustedProxy bool) netip.Addr {
	if trustedProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if ip, ok := ParseHost(first); ok {
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
