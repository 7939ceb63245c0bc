// Package store defines how devicegate keeps device authorization records,
// independent of where they live.
//
// The interface is deliberately small: point reads by key and conditional
// writes (compare-and-swap inside Update) are all the protocol needs, so a
// backend such as Cosmos DB can serve the hot path without queries. Every
// backend runs the conformance suite in package storetest.
//
// The store never sees a device code or a user code in clear: records are
// keyed by keyed hashes of the codes (see package deviceflow), so a leaked
// store does not hand out live codes.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

var (
	// ErrNotFound means no live record exists for the key.
	ErrNotFound = errors.New("store: record not found")
	// ErrExpired means the record exists but is past its ExpiresAt. It
	// matches ErrNotFound with errors.Is, so callers that do not care about
	// the difference can treat both alike; the token endpoint uses it to
	// answer expired_token (RFC 8628 §3.5) rather than invalid_grant.
	ErrExpired = fmt.Errorf("%w: expired", ErrNotFound)
	// ErrConflict means Create found the device-code or user-code key taken.
	ErrConflict = errors.New("store: key already exists")
)

// Retention is how long a backend keeps a record after it expired before
// sweeping it. During that window reads answer ErrExpired, so a device that
// polls a little late learns expired_token instead of invalid_grant.
const Retention = 15 * time.Minute

// Status is where a record stands in the device flow.
type Status string

const (
	// StatusPending: the device has its codes; nobody has approved yet.
	StatusPending Status = "pending"
	// StatusAuthorizing: the person confirmed on our page and was sent to the
	// upstream provider; the record holds the state hash and PKCE verifier.
	StatusAuthorizing Status = "authorizing"
	// StatusApproved: the upstream issued tokens, which wait for the device
	// (or, in passthrough mode, an authorization code the device's poll
	// exchanges).
	StatusApproved Status = "approved"
	// StatusDenied: the person denied, or the upstream refused or failed.
	StatusDenied Status = "denied"
	// StatusDelivered: the tokens were handed to the device. A record in this
	// state is being deleted; it never hands out tokens again.
	StatusDelivered Status = "delivered"
)

// Record is one device authorization request.
type Record struct {
	// ID is the keyed hash of the device code; it is the primary key.
	ID string `json:"id"`
	// UserCodeHash is the keyed hash of the normalised user code; it is a
	// second unique key.
	UserCodeHash string `json:"user_code_hash"`

	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes,omitempty"`
	Status   Status   `json:"status"`

	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Interval is the polling interval the device must keep, in seconds.
	// slow_down raises it for the rest of the record's life (RFC 8628 §3.5).
	Interval int `json:"interval"`
	// LastPoll is when the device last polled and was not told slow_down.
	// LastPoll and Interval only pace the device, so a backend may keep
	// them less durably than the rest (the local bbolt store keeps them in
	// memory); losing them costs one early poll going unnoticed.
	LastPoll time.Time `json:"last_poll,omitzero"`

	// StateHash is the hash of the OAuth state sent upstream; set while
	// StatusAuthorizing.
	StateHash string `json:"state_hash,omitempty"`
	// CodeVerifier is the PKCE verifier for the upstream exchange.
	CodeVerifier string `json:"code_verifier,omitempty"`

	// Token is the serialised token response for the device, set when
	// StatusApproved. The store treats it as opaque bytes.
	Token []byte `json:"token,omitempty"`
	// AuthCode is the provider's authorization code with its PKCE verifier,
	// sealed, for a client in passthrough mode: there the device presents
	// the provider's client secret when it polls, and the code is exchanged
	// then. Set when StatusApproved without Token.
	AuthCode string `json:"auth_code,omitempty"`
	// ExchangeUntil is when the poll now exchanging AuthCode loses its
	// claim: concurrent polls wait for it, and a crashed one does not keep
	// the code forever.
	ExchangeUntil time.Time `json:"exchange_until,omitzero"`

	// Failures counts failed confirmation attempts against this code: an
	// Allow or Deny without this browser's CSRF token, a callback with a
	// state that is not the record's. At the service's limit the record is
	// denied and Locked.
	Failures int `json:"failures,omitempty"`
	// Locked says the record was denied for too many Failures.
	Locked bool `json:"locked,omitempty"`

	// Reason explains a StatusDenied record to the device
	// (the error_description of access_denied).
	Reason string `json:"reason,omitempty"`

	// Version is the backend's concurrency token (an ETag, a counter). It is
	// set by the backend on reads and ignored on writes.
	Version string `json:"-"`
}

// Expired reports whether the record is past its lifetime at now.
func (r *Record) Expired(now time.Time) bool { return !now.Before(r.ExpiresAt) }

// Clone returns a deep copy, so an update function can never alias the
// backend's own copy.
func (r *Record) Clone() *Record {
	c := *r
	c.Scopes = slices.Clone(r.Scopes)
	c.Token = slices.Clone(r.Token)
	return &c
}

// Store keeps records. Implementations must be safe for concurrent use by
// several goroutines and, where the backend is shared, several processes.
//
// Expiry is part of the contract: once now ≥ ExpiresAt every read and
// update answers ErrExpired (or ErrNotFound after the sweep), whatever the
// backend's own cleanup has done.
type Store interface {
	// Create stores a new record. It fails with ErrConflict when the ID or
	// the UserCodeHash is already taken by a record that has not been swept.
	Create(ctx context.Context, r *Record) error
	// Get returns the record with the given ID.
	Get(ctx context.Context, id string) (*Record, error)
	// GetByUserCode returns the record whose UserCodeHash matches.
	GetByUserCode(ctx context.Context, userCodeHash string) (*Record, error)
	// Update reads the record, calls fn with a copy and writes back what fn
	// left there, if nobody else wrote the record in between; otherwise it
	// reads again and calls fn again. fn may therefore run more than once and
	// must not have side effects beyond the record. If fn returns an error
	// nothing is written and Update returns that error. The ID and
	// UserCodeHash cannot be changed. Update returns the record as written.
	//
	// Contention is not failure: concurrent Updates of one record, from one
	// process or several, all apply, each exactly once, in some order. A
	// backend that detects a conflicting write (Cosmos DB's ETag) tries
	// again with randomised backoff until it writes or ctx ends; when ctx
	// has no deadline the backend sets one of several seconds. Update never
	// gives up after a fixed number of rounds. If ctx ends first, Update
	// returns an error matching ctx.Err() with errors.Is; a write in flight
	// at that moment may or may not have landed, as with any write whose
	// answer was lost.
	Update(ctx context.Context, id string, fn func(*Record) error) (*Record, error)
	// Delete removes the record and its user-code key. Deleting a missing
	// record is not an error.
	Delete(ctx context.Context, id string) error
	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error

	Bindings
}

// KnownUpdater is implemented by a backend for which reading a record costs
// (Cosmos DB): UpdateKnown is Update for a record the caller read a moment
// ago (known, with the Version that read gave), sparing Update's read when
// the stored record is still that version. Use it through UpdateKnown.
type KnownUpdater interface {
	// UpdateKnown calls fn with a copy of known and writes what fn left
	// there if the stored record is still known's version; if it is not,
	// or the backend cannot tell, it does what Update(ctx, known.ID, fn)
	// does. fn may therefore run on known and then again on a fresh read;
	// everything Update promises holds.
	UpdateKnown(ctx context.Context, known *Record, fn func(*Record) error) (*Record, error)
}

// UpdateKnown is s.Update(ctx, known.ID, fn), sparing its read where s can
// (KnownUpdater). known must be a record s returned, unchanged since.
func UpdateKnown(ctx context.Context, s Store, known *Record, fn func(*Record) error) (*Record, error) {
	if k, ok := s.(KnownUpdater); ok && known.Version != "" {
		return k.UpdateKnown(ctx, known, fn)
	}
	return s.Update(ctx, known.ID, fn)
}

// Binding ties a refresh token devicegate handed out to the device client,
// the upstream and the scopes it was issued for, so that only that client
// can refresh it through devicegate (with devicegate's credentials added).
// It is keyed by a keyed hash of the refresh token, like records are by
// their codes: a store leak hands out no usable token.
type Binding struct {
	// ID is the keyed hash of the refresh token.
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	// Upstream names the provider the token is for (see deviceflow).
	Upstream string   `json:"upstream"`
	Scopes   []string `json:"scopes,omitempty"`
	// ExpiresAt ends the binding: past it the refresh token is refused and
	// the device must sign in again. A refresh renews it.
	ExpiresAt time.Time `json:"expires_at"`
	// CreatedAt is when the device signed in (the binding was first made);
	// a move to a rotated token keeps it. RefreshedAt is when the device
	// last refreshed, recorded when the binding is written anyway and at
	// most a day late otherwise (see deviceflow.Service.Refreshed). Both
	// are zero on bindings written before they existed: every backend
	// reads those as they are, and the operator's list shows "unknown"
	// until the device's next refresh fills RefreshedAt in.
	CreatedAt   time.Time `json:"created_at,omitzero"`
	RefreshedAt time.Time `json:"refreshed_at,omitzero"`
	// Account is a keyed hash of the provider's identifier of the person's
	// account (deviceflow's account label), so the person can list and
	// disconnect their own devices at /devices; "" when the provider did
	// not name the account. It cannot be turned back into the identifier.
	Account string `json:"account,omitempty"`
	// Key is the fingerprint of the server key ID was computed under
	// (deviceflow.Hasher.Fingerprint; it reveals nothing about the key).
	// It lets the operator see how many devices still depend on a previous
	// key before removing it; empty on bindings written before it existed.
	Key string `json:"key,omitempty"`
}

// Expired reports whether the binding is past its lifetime at now.
func (b *Binding) Expired(now time.Time) bool { return !now.Before(b.ExpiresAt) }

// Clone returns a deep copy.
func (b *Binding) Clone() *Binding {
	c := *b
	c.Scopes = slices.Clone(b.Scopes)
	return &c
}

// Bindings keeps refresh-token bindings. Reads of an expired binding answer
// ErrNotFound whatever the backend's cleanup has done; backends drop
// expired ones on their own (Cosmos by per-item TTL, bolt and memory by
// their sweep).
type Bindings interface {
	// PutBinding creates or replaces the binding with b's ID.
	PutBinding(ctx context.Context, b *Binding) error
	// GetBinding returns the live binding with the given ID.
	GetBinding(ctx context.Context, id string) (*Binding, error)
	// MoveBinding puts b and deletes the binding oldID, for a provider that
	// rotated the refresh token. There is never a moment when neither
	// exists: bolt and memory do both in one transaction; Cosmos DB, whose
	// items are each their own partition, writes b before it deletes oldID.
	MoveBinding(ctx context.Context, oldID string, b *Binding) error
	// DeleteBinding removes a binding; a missing one is not an error.
	DeleteBinding(ctx context.Context, id string) error
	// EachBinding calls fn with every live binding, in no set order, until
	// fn returns an error, which EachBinding then returns. It is for the
	// operator's tools (devicegate devices), never the request path: on
	// Cosmos DB it is a cross-partition query. fn may keep the binding.
	EachBinding(ctx context.Context, fn func(*Binding) error) error
}

// Clock is the time source backends use for expiry checks; tests inject one.
type Clock func() time.Time

// Counter counts events per key in fixed time windows. Rate limits keep
// their counts here rather than in process memory, so that a limit holds
// across every instance serving the app.
type Counter interface {
	// Incr adds one to key's count in the fixed window of the given length
	// that contains the current time, and returns the count after adding
	// and when that window ends. Counts of past windows are forgotten.
	Incr(ctx context.Context, key string, window time.Duration) (count int, resetAt time.Time, err error)
	// IncrMember adds one to member's count in group, in the fixed window
	// of the given length that contains the current time, and returns the
	// count of every member of group in that window after adding (member's
	// included) and when that window ends. A group's counts are kept
	// together (one item on Cosmos DB), so one call counts what would take
	// Incr one call per key: rate limits keep the addresses of one network
	// as the members of that network's group. A group is meant to stay
	// small (the limiter's hold at most 256 members); its keys are apart
	// from Incr's, and counts of past windows are forgotten.
	IncrMember(ctx context.Context, group, member string, window time.Duration) (counts map[string]int, resetAt time.Time, err error)
}

// WindowStart returns the start of the fixed window of length window that
// contains now; backends share it so every instance agrees on windows.
func WindowStart(now time.Time, window time.Duration) time.Time {
	return now.Truncate(window)
}
