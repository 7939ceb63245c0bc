package deviceflow

import (
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestDecide(t *testing.T) {
	base := store.Record{Status: store.StatusPending, CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute), Interval: 5}
	with := func(f func(*store.Record)) *store.Record { r := base; f(&r); return &r }
	tests := []struct {
		name string
		rec  *store.Record
		at   time.Time
		want Outcome
	}{
		{"first poll at once is pending", with(func(*store.Record) {}), t0, OutcomePending},
		{"on time is pending", with(func(r *store.Record) { r.LastPoll = t0 }), t0.Add(5 * time.Second), OutcomePending},
		{"late is pending", with(func(r *store.Record) { r.LastPoll = t0 }), t0.Add(time.Minute), OutcomePending},
		{"jitter within tolerance is pending", with(func(r *store.Record) { r.LastPoll = t0 }), t0.Add(4100 * time.Millisecond), OutcomePending},
		{"early is slow_down", with(func(r *store.Record) { r.LastPoll = t0 }), t0.Add(3 * time.Second), OutcomeSlowDown},
		{"just past tolerance is slow_down", with(func(r *store.Record) { r.LastPoll = t0 }), t0.Add(3999 * time.Millisecond), OutcomeSlowDown},
		{"raised interval is measured", with(func(r *store.Record) { r.LastPoll = t0; r.Interval = 10 }), t0.Add(6 * time.Second), OutcomeSlowDown},
		{"raised interval kept is pending", with(func(r *store.Record) { r.LastPoll = t0; r.Interval = 10 }), t0.Add(9500 * time.Millisecond), OutcomePending},
		{"authorizing is still pending", with(func(r *store.Record) { r.Status = store.StatusAuthorizing; r.LastPoll = t0 }), t0.Add(5 * time.Second), OutcomePending},
		{"approved gives tokens", with(func(r *store.Record) { r.Status = store.StatusApproved }), t0, OutcomeTokens},
		{"approved gives tokens even when early", with(func(r *store.Record) { r.Status = store.StatusApproved; r.LastPoll = t0 }), t0.Add(time.Second), OutcomeTokens},
		{"passthrough code is exchanged", with(func(r *store.Record) { r.Status = store.StatusApproved; r.AuthCode = "c"; r.LastPoll = t0 }), t0.Add(time.Second), OutcomeExchange},
		{"passthrough code being exchanged is pending", with(func(r *store.Record) {
			r.Status = store.StatusApproved
			r.AuthCode = "c"
			r.LastPoll = t0
			r.ExchangeUntil = t0.Add(30 * time.Second)
		}), t0.Add(5 * time.Second), OutcomePending},
		{"passthrough claim lapsed is exchanged again", with(func(r *store.Record) {
			r.Status = store.StatusApproved
			r.AuthCode = "c"
			r.ExchangeUntil = t0.Add(30 * time.Second)
		}), t0.Add(30 * time.Second), OutcomeExchange},
		{"denied", with(func(r *store.Record) { r.Status = store.StatusDenied; r.LastPoll = t0 }), t0.Add(time.Second), OutcomeDenied},
		{"delivered is used", with(func(r *store.Record) { r.Status = store.StatusDelivered }), t0, OutcomeUsed},
		{"delivered stays used after expiry", with(func(r *store.Record) { r.Status = store.StatusDelivered }), t0.Add(time.Hour), OutcomeUsed},
		{"expired pending", with(func(*store.Record) {}), t0.Add(10 * time.Minute), OutcomeExpired},
		{"expired approved", with(func(r *store.Record) { r.Status = store.StatusApproved }), t0.Add(11 * time.Minute), OutcomeExpired},
		{"expired beats early", with(func(r *store.Record) { r.LastPoll = t0.Add(10*time.Minute - time.Second) }), t0.Add(10 * time.Minute), OutcomeExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.rec, tc.at); got != tc.want {
				t.Errorf("Decide = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFastestIntervalStillSlowsDown: at the fastest interval the
// configuration allows (DEVICEGATE_POLL_INTERVAL=1s), back-to-back polls
// and polls well before the second are slow_down, while a device polling
// each second with a little jitter is on time.
func TestFastestIntervalStillSlowsDown(t *testing.T) {
	rec := store.Record{Status: store.StatusPending, CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute), Interval: 1, LastPoll: t0}
	for _, early := range []time.Duration{0, time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond, 790 * time.Millisecond} {
		if got := Decide(&rec, t0.Add(early)); got != OutcomeSlowDown {
			t.Errorf("poll %v after the last at a 1 s interval: %v, want slow_down", early, got)
		}
	}
	for _, onTime := range []time.Duration{850 * time.Millisecond, time.Second, 1200 * time.Millisecond} {
		if got := Decide(&rec, t0.Add(onTime)); got != OutcomePending {
			t.Errorf("poll %v after the last at a 1 s interval: %v, want authorization_pending", onTime, got)
		}
	}
}

// TestJitterNeverTrapsAWellBehavedDevice simulates a device that follows RFC
// 8628: it waits its interval (with up to ±800 ms of jitter) and adds 5 s to
// it on slow_down. It must spend almost all its polls pending, and never
// get slow_down twice in a row.
func TestJitterNeverTrapsAWellBehavedDevice(t *testing.T) {
	rec := store.Record{Status: store.StatusPending, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), Interval: 5}
	jitter := []time.Duration{-800, 300, -500, 0, 800, -800, -799, 100}
	deviceInterval := 5 * time.Second
	now := t0
	slowDowns, lastWasSlow := 0, false
	for i := range 200 {
		now = now.Add(deviceInterval + jitter[i%len(jitter)]*time.Millisecond)
		switch Decide(&rec, now) {
		case OutcomePending:
			rec.LastPoll = now
			lastWasSlow = false
		case OutcomeSlowDown:
			if lastWasSlow {
				t.Fatalf("poll %d: slow_down twice in a row; the device is trapped", i)
			}
			rec.Interval += 5
			deviceInterval += SlowDownStep
			slowDowns++
			lastWasSlow = true
		default:
			t.Fatalf("poll %d: unexpected outcome", i)
		}
	}
	if slowDowns != 0 {
		t.Errorf("jitter under the tolerance earned %d slow_down answers", slowDowns)
	}
}

// TestEarlyDeviceRecovers: a device that polls early once gets slow_down,
// adds 5 s as the RFC says, and is on time from then on.
func TestEarlyDeviceRecovers(t *testing.T) {
	rec := store.Record{Status: store.StatusPending, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), Interval: 5, LastPoll: t0}
	now := t0.Add(2 * time.Second)
	if got := Decide(&rec, now); got != OutcomeSlowDown {
		t.Fatalf("early poll: %v", got)
	}
	rec.Interval += 5
	for i := range 10 {
		// The device now waits 10 s, with jitter of up to a second early.
		now = now.Add(10*time.Second - 900*time.Millisecond)
		if got := Decide(&rec, now); got != OutcomePending {
			t.Fatalf("poll %d after slowing down: %v", i, got)
		}
		rec.LastPoll = now
	}
}
