package deviceflow

import (
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// Outcome is the single answer a poll gets (RFC 8628 §3.5).
type Outcome int

const (
	// OutcomePending: authorization_pending.
	OutcomePending Outcome = iota
	// OutcomeSlowDown: slow_down; the interval grows by SlowDownStep.
	OutcomeSlowDown
	// OutcomeDenied: access_denied.
	OutcomeDenied
	// OutcomeExpired: expired_token.
	OutcomeExpired
	// OutcomeTokens: the tokens, handed out now and never again.
	OutcomeTokens
	// OutcomeUsed: invalid_grant; the tokens were already handed out.
	OutcomeUsed
	// OutcomeExchange: passthrough mode; this poll may exchange the
	// authorization code with the client secret the device presented.
	OutcomeExchange
	// OutcomeUnknown: invalid_grant; no record has this device code, or
	// it belongs to another client. The token endpoint counts these per
	// address (junk polls).
	OutcomeUnknown
)

func (o Outcome) String() string {
	switch o {
	case OutcomePending:
		return "authorization_pending"
	case OutcomeSlowDown:
		return "slow_down"
	case OutcomeDenied:
		return "access_denied"
	case OutcomeExpired:
		return "expired_token"
	case OutcomeTokens:
		return "tokens"
	case OutcomeUsed:
		return "invalid_grant"
	case OutcomeExchange:
		return "exchange"
	case OutcomeUnknown:
		return "unknown_device_code"
	}
	return "unknown"
}

// SlowDownStep is how much slow_down raises the interval (RFC 8628 §3.5).
const SlowDownStep = 5 * time.Second

// PollTolerance is how much earlier than its interval a poll may arrive and
// still count as on time: a fifth of the interval, at most a second.
// Timers, scheduling and network latency make a well-behaved device's polls
// arrive a little early now and then; without slack, such jitter would earn
// it slow_down for nothing. A fixed second would switch slow_down off for
// an interval of one second (every poll, however fast, would be on time);
// a fifth of it still refuses back-to-back polls.
func PollTolerance(interval time.Duration) time.Duration {
	return min(time.Second, interval/5)
}

// Decide is the one place a poll is decided: given the record and the time,
// exactly one outcome. Terminal states come first, so a device that polls
// too fast still learns at once that it was approved, denied or expired.
//
// Early polls are measured against LastPoll, the last poll that was *not*
// answered slow_down, and the caller leaves LastPoll alone on slow_down.
// That avoids a trap: if an early poll both moved LastPoll and raised the
// interval, a device whose jitter makes it early once would be measured
// against an ever-later mark and could stay in slow_down forever. Here a
// device that adds SlowDownStep to its own interval, as RFC 8628 asks, is on
// time again at its very next poll.
func Decide(r *store.Record, now time.Time) Outcome {
	switch {
	case r.Status == store.StatusDelivered:
		return OutcomeUsed
	case r.Expired(now):
		return OutcomeExpired
	case r.Status == store.StatusApproved && r.AuthCode == "":
		return OutcomeTokens
	case r.Status == store.StatusApproved && !now.Before(r.ExchangeUntil):
		return OutcomeExchange
	case r.Status == store.StatusDenied:
		return OutcomeDenied
	}
	// Pending, authorizing, or a passthrough code another poll is
	// exchanging right now: the device waits like any pending one.
	if r.LastPoll.IsZero() {
		// The first poll is never early: some clients poll at once.
		return OutcomePending
	}
	interval := time.Duration(r.Interval) * time.Second
	if now.Sub(r.LastPoll) < interval-PollTolerance(interval) {
		return OutcomeSlowDown
	}
	return OutcomePending
}

// slowerInterval is the interval a slow_down answer sets: SlowDownStep
// more (RFC 8628 §3.5), but never more than the code has left to live. A
// device that bursts early polls would otherwise be told to wait longer
// than its code lives (one sent 240,000 early polls was told to wait two
// weeks); capped, it is told to wait out the code, which is the truth.
func slowerInterval(r *store.Record, now time.Time) int {
	left := int((r.ExpiresAt.Sub(now) + time.Second - 1) / time.Second)
	return max(1, min(r.Interval+int(SlowDownStep/time.Second), left))
}
