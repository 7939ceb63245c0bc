package store

import (
	"bytes"
	"slices"
)

// PacingOnly reports whether next differs from cur in nothing but the
// pacing figures (LastPoll, Interval; Version is the backend's own): what
// a pending or too-early poll changes. A backend may keep such a change
// less durably than the rest (see Record.LastPoll). Every poll asks, so the
// fields are compared one by one rather than by reflection;
// TestPacingOnlyKnowsEveryField fails when Record gains a field this does
// not compare, so a new field is durable unless it is left out here on
// purpose.
func PacingOnly(cur, next *Record) bool {
	a, b := cur, next
	return a.ID == b.ID && a.UserCodeHash == b.UserCodeHash && a.ClientID == b.ClientID &&
		slices.Equal(a.Scopes, b.Scopes) && a.Status == b.Status &&
		a.CreatedAt == b.CreatedAt && a.ExpiresAt == b.ExpiresAt &&
		a.StateHash == b.StateHash && a.CodeVerifier == b.CodeVerifier &&
		bytes.Equal(a.Token, b.Token) && a.AuthCode == b.AuthCode && a.ExchangeUntil == b.ExchangeUntil &&
		a.Failures == b.Failures && a.Locked == b.Locked && a.Reason == b.Reason
}
