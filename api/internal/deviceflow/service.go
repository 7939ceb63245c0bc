// Package deviceflow is the protocol core of devicegate: the RFC 8628 Device
// Authorization Grant as states and decisions, with no HTTP and no SDKs.
//
// It owns code generation and hashing, the poll decision, and the state
// transitions of a record (pending → authorizing → approved → delivered, or
// → denied). Everything it touches comes in through its Config: the store,
// the clock and the randomness, so tests run at a fixed time with fixed
// codes. It never calls time.Now or crypto/rand itself.
package deviceflow

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/devicegate/devicegate/api/internal/oauth"
	"github.com/devicegate/devicegate/api/internal/seal"
	"github.com/devicegate/devicegate/api/internal/store"
)

// Errors of the verification side, each shown to the person differently.
var (
	ErrUnknownCode = errors.New("deviceflow: no such user code")
	ErrCodeExpired = errors.New("deviceflow: the code has expired")
	ErrCodeUsed    = errors.New("deviceflow: the code was already used")
	ErrCodeDenied  = errors.New("deviceflow: the request was denied")
	// ErrCodeLocked: the request was denied after too many failed
	// confirmation attempts against its code.
	ErrCodeLocked = errors.New("deviceflow: the code is locked after failed attempts")
	// ErrStateMismatch: the callback's state does not belong to this
	// browser's authorization, or the authorization was replaced.
	ErrStateMismatch = errors.New("deviceflow: state does not match")
	// ErrCallbackUsed: the callback for this state was already handled.
	ErrCallbackUsed = errors.New("deviceflow: callback already handled")
	// ErrCodeSpace means fresh codes kept colliding: the store is
	// misbehaving or holds absurdly many records.
	ErrCodeSpace = errors.New("deviceflow: could not find a free code")
)

// errWrongClient aborts an update when the poller is not the record's client.
var errWrongClient = errors.New("deviceflow: device code issued to another client")

// errNoWrite aborts an update whose outcome needs no write.
var errNoWrite = errors.New("deviceflow: nothing to write")

// Config is what a Service needs. All fields are required.
type Config struct {
	Store  store.Store
	Hasher *Hasher
	// Previous hashers are tried when a code is not found under Hasher, so
	// flows started before a key rotation still finish.
	Previous []*Hasher
	// Sealer encrypts the tokens and PKCE verifiers kept on records.
	Sealer   *seal.Sealer
	Now      func() time.Time
	Rand     io.Reader
	Lifetime time.Duration // how long codes live (expires_in)
	Interval time.Duration // the polling interval devices start with
	// ExchangeLease bounds how long one poll may spend exchanging a
	// passthrough client's code before another poll may try; it should
	// exceed the upstream's timeout. Zero means DefaultExchangeLease.
	ExchangeLease time.Duration
	// MaxFailures is how many failed confirmation attempts a code takes
	// before it is locked (RecordFailure). Zero means DefaultMaxFailures.
	MaxFailures int
	// RefreshLifetime is how long a refresh-token binding lives without a
	// refresh. Zero means DefaultRefreshLifetime.
	RefreshLifetime time.Duration
}

// DefaultExchangeLease is the ExchangeLease when none is configured.
const DefaultExchangeLease = 30 * time.Second

// DefaultMaxFailures is the MaxFailures when none is configured: a person
// whose page went stale retries once or twice; more is someone else.
const DefaultMaxFailures = 5

// Service runs the device flow over a store.
type Service struct {
	c   Config
	all []*Hasher // c.Hasher, then c.Previous
}

// New checks c and returns a Service.
func New(c Config) (*Service, error) {
	switch {
	case c.Store == nil, c.Hasher == nil, c.Sealer == nil, c.Now == nil, c.Rand == nil:
		return nil, errors.New("deviceflow: Store, Hasher, Sealer, Now and Rand are required")
	case c.Lifetime < time.Second:
		return nil, fmt.Errorf("deviceflow: lifetime %v is too short", c.Lifetime)
	case c.Interval < time.Second || c.Interval%time.Second != 0:
		return nil, fmt.Errorf("deviceflow: interval %v must be whole seconds, at least 1", c.Interval)
	}
	if c.ExchangeLease <= 0 {
		c.ExchangeLease = DefaultExchangeLease
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if c.RefreshLifetime <= 0 {
		c.RefreshLifetime = DefaultRefreshLifetime
	}
	return &Service{c: c, all: append([]*Hasher{c.Hasher}, c.Previous...)}, nil
}

// errPending is the answer to most polls, boxed once rather than per poll.
var errPending error = oauth.ErrAuthorizationPending.WithDescription("the user has not finished yet")

// hashers lists the current hasher first, then the previous ones. Callers
// only read it; it is built once, as every poll asks for it.
func (s *Service) hashers() []*Hasher { return s.all }

// Authorization is what the device authorization endpoint hands a device
// (RFC 8628 §3.2), before URLs are added.
type Authorization struct {
	DeviceCode string
	UserCode   string // canonical, unformatted
	ExpiresIn  time.Duration
	Interval   time.Duration
}

// Authorize creates a pending record for clientID and scopes and returns its
// codes. The codes exist only in the answer; the store keeps their hashes.
func (s *Service) Authorize(ctx context.Context, clientID string, scopes []string) (*Authorization, error) {
	now := s.c.Now()
	// A collision needs two equal 256-bit device codes or two equal user
	// codes among the live ones; retrying a few times turns the latter's
	// small chance into none worth mentioning.
	for range 8 {
		dc, err := NewDeviceCode(s.c.Rand)
		if err != nil {
			return nil, err
		}
		uc, err := NewUserCode(s.c.Rand)
		if err != nil {
			return nil, err
		}
		rec := &store.Record{
			ID:           s.c.Hasher.Hash(kindDevice, dc),
			UserCodeHash: s.c.Hasher.Hash(kindUser, uc),
			ClientID:     clientID,
			Scopes:       scopes,
			Status:       store.StatusPending,
			CreatedAt:    now,
			ExpiresAt:    now.Add(s.c.Lifetime),
			Interval:     int(s.c.Interval / time.Second),
		}
		err = s.c.Store.Create(ctx, rec)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("deviceflow: creating record: %w", err)
		}
		return &Authorization{DeviceCode: dc, UserCode: uc, ExpiresIn: s.c.Lifetime, Interval: s.c.Interval}, nil
	}
	return nil, ErrCodeSpace
}

// Tokens is what the upstream issued, kept on the record until the device
// takes it.
type Tokens struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Scope        string    `json:"scope,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// TokenResponse is the RFC 6749 §5.1 answer a device receives.
//
// It carries no id_token, even when the provider issued one: an ID token
// is the provider's assertion to devicegate's client (its aud is
// devicegate's client id at the provider, its iss the provider), not to the
// device, and OpenID clients rightly reject one whose issuer is not the
// server they talk to. A device that needs the user's identity calls the
// provider's userinfo endpoint with the access token.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// Response turns stored tokens into the answer at now: expires_in counts
// from the moment of delivery, not from the upstream's issue time.
func (t *Tokens) Response(now time.Time) TokenResponse {
	r := TokenResponse{
		AccessToken:  t.AccessToken,
		TokenType:    t.TokenType,
		RefreshToken: t.RefreshToken,
		Scope:        t.Scope,
	}
	if r.TokenType == "" {
		r.TokenType = "Bearer"
	}
	if !t.Expiry.IsZero() {
		r.ExpiresIn = max(1, int64(math.Ceil(t.Expiry.Sub(now).Seconds())))
	}
	return r
}

// Poll answers a device's poll on the token endpoint (RFC 8628 §3.4–3.5).
// Protocol outcomes come back as oauth.Error values; any other error is a
// fault of the store. Tokens are handed out at most once: the transition to
// StatusDelivered is a compare-and-swap, so of many concurrent polls only
// one wins.
func (s *Service) Poll(ctx context.Context, clientID, deviceCode string) (*TokenResponse, Outcome, error) {
	return s.PollExchange(ctx, clientID, deviceCode, nil)
}

// Exchanger trades a passthrough client's authorization code (with its
// PKCE verifier) for tokens at the provider, using the client secret the
// device presented. Its failures should be *ExchangeFailure values.
type Exchanger func(ctx context.Context, code, verifier string) (*Tokens, error)

// ExchangeFailure says what a failed passthrough exchange means for the
// record and the device.
type ExchangeFailure struct {
	// Retry keeps the code for a later poll: the failure was passing (the
	// provider unreachable) or the device's to fix (a wrong secret). Without
	// it the flow ends as denied, with Answer's description as the reason.
	Retry bool
	// Answer is what the device is told now.
	Answer oauth.Error
}

func (e *ExchangeFailure) Error() string { return "deviceflow: exchange failed: " + e.Answer.Code }

// pollState is one poll's update function and what it decided. It is
// recycled with the function bound to it once (decideFn), so a poll
// allocates neither a closure nor the variables it would capture; Update
// calls the function only before it returns (store.Store), so nothing
// runs it after release.
type pollState struct {
	s        *Service
	clientID string
	exchange Exchanger
	decideFn func(*store.Record) error

	outcome      Outcome
	token        []byte
	code, reason string
	now          time.Time
}

var pollStates = sync.Pool{New: func() any {
	p := new(pollState)
	p.decideFn = p.decide
	return p
}}

func (p *pollState) release() {
	*p = pollState{decideFn: p.decideFn}
	pollStates.Put(p)
}

// decide is the update function of a poll: it may run more than once, and
// each run starts over.
func (p *pollState) decide(r *store.Record) error {
	if r.ClientID != p.clientID {
		return errWrongClient
	}
	p.now = p.s.c.Now()
	p.outcome, p.token, p.code, p.reason = Decide(r, p.now), nil, "", r.Reason
	switch p.outcome {
	case OutcomePending:
		r.LastPoll = p.now
	case OutcomeSlowDown:
		r.Interval = slowerInterval(r, p.now)
	case OutcomeTokens:
		p.token = r.Token
		r.Status = store.StatusDelivered
		r.Token = nil
		r.LastPoll = time.Time{}
	case OutcomeExchange:
		if p.exchange == nil {
			// The client left passthrough mode during the flow.
			p.outcome, p.reason = OutcomeDenied, "the client's configuration changed during sign-in; start again"
			return errNoWrite
		}
		p.code = r.AuthCode
		r.ExchangeUntil = p.now.Add(p.s.c.ExchangeLease)
		r.LastPoll = p.now
	default:
		return errNoWrite
	}
	return nil
}

// handoffCode is what a passthrough record keeps, sealed, in AuthCode.
type handoffCode struct {
	Code     string `json:"code"`
	Verifier string `json:"verifier,omitempty"`
}

// PollExchange is Poll for a client in passthrough mode: when the person
// has approved, this poll claims the stored authorization code for a while
// (ExchangeLease), exchanges it through exchange, and hands the tokens
// over. Concurrent polls meanwhile get authorization_pending, so the code
// is exchanged once.
func (s *Service) PollExchange(ctx context.Context, clientID, deviceCode string, exchange Exchanger) (*TokenResponse, Outcome, error) {
	var (
		outcome Outcome
		token   []byte
		code    string
		reason  string
		now     time.Time
		id      string
		rec     *store.Record
		err     error
	)
	p := pollStates.Get().(*pollState)
	defer p.release()
	p.s, p.clientID, p.exchange = s, clientID, exchange
	for _, h := range s.hashers() {
		id = h.Hash(kindDevice, deviceCode)
		rec, err = s.c.Store.Update(ctx, id, p.decideFn)
		if !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired) {
			break
		}
	}
	outcome, token, code, reason, now = p.outcome, p.token, p.code, p.reason, p.now
	switch {
	case errors.Is(err, errNoWrite):
	case errors.Is(err, store.ErrExpired):
		return nil, OutcomeExpired, oauth.ErrExpiredToken.WithDescription("the device_code has expired; start again")
	case errors.Is(err, store.ErrNotFound):
		return nil, OutcomeUnknown, oauth.ErrInvalidGrant.WithDescription("unknown or already used device_code")
	case errors.Is(err, errWrongClient):
		return nil, OutcomeUnknown, oauth.ErrInvalidGrant.WithDescription("the device_code was issued to another client")
	case err != nil:
		return nil, 0, fmt.Errorf("deviceflow: polling: %w", err)
	}

	switch outcome {
	case OutcomePending:
		return nil, outcome, errPending
	case OutcomeSlowDown:
		return nil, outcome, oauth.ErrSlowDown.WithDescription("polling too fast; wait " + strconv.Itoa(rec.Interval) + " seconds between polls")
	case OutcomeDenied:
		return nil, outcome, oauth.ErrAccessDenied.WithDescription(reason)
	case OutcomeExpired:
		return nil, outcome, oauth.ErrExpiredToken.WithDescription("the device_code has expired; start again")
	case OutcomeUsed:
		return nil, outcome, oauth.ErrInvalidGrant.WithDescription("the tokens for this device_code were already delivered")
	case OutcomeExchange:
		return s.handoff(ctx, id, code, exchange)
	}

	// OutcomeTokens: this poll won the swap. The record is spent and holds
	// no secret any more; it stays as a tombstone until it expires, so the
	// device code keeps answering invalid_grant and the user code "already
	// used" for the code's whole life (the store's expiry removes it).
	var t Tokens
	plain, err := s.c.Sealer.Open(token, []byte(id))
	if err != nil {
		return nil, 0, fmt.Errorf("deviceflow: opening stored tokens: %w", err)
	}
	if err := json.Unmarshal(plain, &t); err != nil {
		return nil, 0, fmt.Errorf("deviceflow: stored tokens are unreadable: %w", err)
	}
	if t.AccessToken == "" {
		return nil, 0, errors.New("deviceflow: stored tokens hold no access token")
	}
	resp := t.Response(now)
	return &resp, OutcomeTokens, nil
}

// handoff exchanges the passthrough code this poll claimed. The exchange
// and what follows run even if the device hangs up: the provider accepts a
// code once, so tokens obtained must never be dropped. If the device is
// gone by then they are sealed onto the record for its next poll.
func (s *Service) handoff(ctx context.Context, id, sealed string, exchange Exchanger) (*TokenResponse, Outcome, error) {
	bg := context.WithoutCancel(ctx)
	var hc handoffCode
	plain, err := s.openString(sealed, id)
	if err == nil {
		err = json.Unmarshal([]byte(plain), &hc)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("deviceflow: the stored authorization code is unreadable: %w", err)
	}
	if hc.Code == "" {
		return nil, 0, errors.New("deviceflow: the stored authorization code is empty")
	}
	t, err := exchange(bg, hc.Code, hc.Verifier)
	if err != nil {
		var f *ExchangeFailure
		if !errors.As(err, &f) {
			f = &ExchangeFailure{Retry: true}
		}
		_, uerr := s.c.Store.Update(bg, id, func(r *store.Record) error {
			if r.Status != store.StatusApproved || r.AuthCode != sealed {
				return errNoWrite
			}
			r.ExchangeUntil = time.Time{}
			if !f.Retry {
				r.Status, r.Reason, r.AuthCode = store.StatusDenied, f.Answer.Description, ""
			}
			return nil
		})
		switch {
		case f.Answer.Code == "":
			// Not an ExchangeFailure: a fault, answered as one.
			return nil, 0, fmt.Errorf("deviceflow: passthrough exchange: %w", err)
		case uerr != nil && !errors.Is(uerr, errNoWrite) && !f.Retry:
			return nil, 0, fmt.Errorf("deviceflow: recording the failed exchange: %w", uerr)
		case !f.Retry:
			return nil, OutcomeDenied, oauth.ErrAccessDenied.WithDescription(f.Answer.Description)
		}
		return nil, OutcomePending, f.Answer
	}
	if ctx.Err() != nil {
		box, err := s.sealTokens(t, id)
		if err != nil {
			return nil, 0, err
		}
		_, err = s.c.Store.Update(bg, id, func(r *store.Record) error {
			r.Status, r.Token, r.AuthCode, r.ExchangeUntil = store.StatusApproved, box, "", time.Time{}
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("deviceflow: keeping tokens for a device that hung up: %w", err)
		}
		return nil, 0, ctx.Err()
	}
	// Mark the record spent; it stays as a tombstone until it expires, like
	// a record delivered by Poll. If the store fails here the device still
	// gets its tokens: the code is used up at the provider, so a later poll
	// can only be refused, never served twice.
	_, _ = s.c.Store.Update(bg, id, func(r *store.Record) error {
		r.Status, r.AuthCode, r.ExchangeUntil = store.StatusDelivered, "", time.Time{}
		return nil
	})
	resp := t.Response(s.c.Now())
	return &resp, OutcomeTokens, nil
}

// Pending is a record found by its user code, for the confirmation screen.
type Pending struct {
	Record   *store.Record
	UserCode string // canonical
}

// Lookup finds the record a person's typed code refers to, as long as it
// still awaits a decision.
func (s *Service) Lookup(ctx context.Context, input string) (*Pending, error) {
	code, err := NormalizeUserCode(input)
	if err != nil {
		return nil, err
	}
	var rec *store.Record
	for _, h := range s.hashers() {
		rec, err = s.c.Store.GetByUserCode(ctx, h.Hash(kindUser, code))
		if !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired) {
			break
		}
	}
	if err != nil {
		return nil, mapLookupErr(err)
	}
	if err := awaiting(rec); err != nil {
		return nil, err
	}
	return &Pending{Record: rec, UserCode: code}, nil
}

func mapLookupErr(err error) error {
	switch {
	case errors.Is(err, store.ErrExpired):
		return ErrCodeExpired
	case errors.Is(err, store.ErrNotFound):
		return ErrUnknownCode
	}
	return err
}

// awaiting tells whether a record still takes a decision from the person.
// An authorizing record does: the person may come back and press Allow
// again, for instance after closing the provider's tab.
func awaiting(r *store.Record) error {
	switch r.Status {
	case store.StatusPending, store.StatusAuthorizing:
		return nil
	case store.StatusDenied:
		if r.Locked {
			return ErrCodeLocked
		}
		return ErrCodeDenied
	default:
		return ErrCodeUsed
	}
}

// RecordFailure counts a failed confirmation attempt against the code p was
// looked up by — an Allow or Deny that did not come from the page
// devicegate showed this browser for this code — and locks the code at
// MaxFailures: the request is denied, and the device told why. It reports
// whether the code is now locked. The count lives on the record, so it
// holds across instances. Callers apply their rate limit before the
// lookup, so failures cannot be sent faster than codes can be tried.
func (s *Service) RecordFailure(ctx context.Context, p *Pending) (bool, error) {
	return s.recordFailure(ctx, p.Record.ID)
}

// RecordCallbackFailure counts a callback whose state is not the one the
// record holds against the record the browser's cookie named.
func (s *Service) RecordCallbackFailure(ctx context.Context, recordID string) (bool, error) {
	return s.recordFailure(ctx, recordID)
}

func (s *Service) recordFailure(ctx context.Context, id string) (bool, error) {
	rec, err := s.c.Store.Update(ctx, id, func(r *store.Record) error {
		if err := awaiting(r); err != nil {
			return err
		}
		r.Failures++
		if r.Failures >= s.c.MaxFailures {
			r.Status, r.Locked = store.StatusDenied, true
			r.Reason = "the code was locked after " + strconv.Itoa(r.Failures) + " failed confirmation attempts; start again"
			r.StateHash, r.CodeVerifier = "", ""
		}
		return nil
	})
	if err != nil {
		return false, mapLookupErr(err)
	}
	return rec.Locked, nil
}

// Deny records the person's refusal on our confirmation screen for the
// code p was looked up by.
func (s *Service) Deny(ctx context.Context, p *Pending) error {
	_, err := store.UpdateKnown(ctx, s.c.Store, p.Record, func(r *store.Record) error {
		if err := awaiting(r); err != nil {
			return err
		}
		r.Status = store.StatusDenied
		r.Reason = "the user denied the request on the devicegate page"
		r.StateHash, r.CodeVerifier = "", ""
		return nil
	})
	return mapLookupErr(err)
}

// Begin is a started upstream authorization.
type Begin struct {
	RecordID string
	State    string // for the upstream's state parameter and the browser cookie
	Verifier string // the PKCE verifier
	Record   *store.Record
}

// BeginAuthorization moves the record p was looked up by to
// StatusAuthorizing with a fresh state and PKCE verifier. Pressing Allow
// again replaces both, so only the newest redirect can complete.
func (s *Service) BeginAuthorization(ctx context.Context, p *Pending) (*Begin, error) {
	state, err := randomToken(s.c.Rand, 32)
	if err != nil {
		return nil, err
	}
	// 32 random bytes give a 43-character verifier, the minimum length and
	// maximum entropy RFC 7636 §4.1 recommends.
	verifier, err := randomToken(s.c.Rand, 32)
	if err != nil {
		return nil, err
	}
	sealed, err := s.sealString(verifier, p.Record.ID)
	if err != nil {
		return nil, err
	}
	// p.Record was read by Lookup just now: the write goes over it unless
	// the record changed since (store.UpdateKnown), sparing a read.
	rec, err := store.UpdateKnown(ctx, s.c.Store, p.Record, func(r *store.Record) error {
		if err := awaiting(r); err != nil {
			return err
		}
		r.Status = store.StatusAuthorizing
		r.StateHash = s.c.Hasher.Hash(kindState, state)
		r.CodeVerifier = sealed
		return nil
	})
	if err != nil {
		return nil, mapLookupErr(err)
	}
	return &Begin{RecordID: rec.ID, State: state, Verifier: verifier, Record: rec}, nil
}

// Claim is a callback that won the right to exchange the upstream code.
type Claim struct {
	Record   *store.Record
	Verifier string
	// sealed is the verifier as stored, which identifies this authorization
	// when the result is written back.
	sealed string
}

// sealTokens seals tokens for the record recordID, as Record.Token keeps
// them.
func (s *Service) sealTokens(t *Tokens, recordID string) ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("deviceflow: encoding tokens: %w", err)
	}
	box, err := s.c.Sealer.Seal(b, []byte(recordID))
	if err != nil {
		return nil, fmt.Errorf("deviceflow: sealing tokens: %w", err)
	}
	return box, nil
}

// sealString seals a short secret for a record and encodes it as text.
func (s *Service) sealString(v, recordID string) (string, error) {
	b, err := s.c.Sealer.Seal([]byte(v), []byte(recordID))
	if err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(b), nil
}

func (s *Service) openString(v, recordID string) (string, error) {
	b, err := base64.RawStdEncoding.DecodeString(v)
	if err != nil {
		return "", fmt.Errorf("deviceflow: sealed value is not base64: %w", err)
	}
	plain, err := s.c.Sealer.Open(b, []byte(recordID))
	if err != nil {
		return "", fmt.Errorf("deviceflow: opening a sealed value: %w", err)
	}
	return string(plain), nil
}

// ClaimCallback checks the callback's state against the record's and marks
// the state used, so a replayed or concurrent callback cannot exchange a
// second time. The caller then exchanges the code and calls Complete or Fail.
func (s *Service) ClaimCallback(ctx context.Context, recordID, state string) (*Claim, error) {
	var sealed string
	rec, err := s.c.Store.Update(ctx, recordID, func(r *store.Record) error {
		switch r.Status {
		case store.StatusAuthorizing:
		case store.StatusPending:
			return ErrStateMismatch
		default:
			return awaiting(r)
		}
		if r.StateHash == "" {
			return ErrCallbackUsed
		}
		match := 0
		for _, h := range s.hashers() {
			match |= subtle.ConstantTimeCompare([]byte(r.StateHash), []byte(h.Hash(kindState, state)))
		}
		if match != 1 {
			return ErrStateMismatch
		}
		r.StateHash = ""
		sealed = r.CodeVerifier
		return nil
	})
	if err != nil {
		return nil, mapLookupErr(err)
	}
	verifier, err := s.openString(sealed, rec.ID)
	if err != nil {
		return nil, fmt.Errorf("deviceflow: opening the PKCE verifier: %w", err)
	}
	return &Claim{Record: rec, Verifier: verifier, sealed: sealed}, nil
}

// Complete stores the upstream's tokens for the device, provided the claim
// is still the current authorization (the person did not start over).
func (s *Service) Complete(ctx context.Context, c *Claim, t *Tokens) error {
	sealed, err := s.sealTokens(t, c.Record.ID)
	if err != nil {
		return err
	}
	return s.finish(ctx, c, func(r *store.Record) {
		r.Status = store.StatusApproved
		r.Token = sealed
	})
}

// CompleteWithCode keeps the provider's authorization code, sealed with
// the PKCE verifier, for a client in passthrough mode: the device's next
// poll exchanges it with the client secret the device holds.
func (s *Service) CompleteWithCode(ctx context.Context, c *Claim, code string) error {
	b, err := json.Marshal(handoffCode{Code: code, Verifier: c.Verifier})
	if err != nil {
		return err
	}
	sealed, err := s.sealString(string(b), c.Record.ID)
	if err != nil {
		return err
	}
	return s.finish(ctx, c, func(r *store.Record) {
		r.Status = store.StatusApproved
		r.AuthCode = sealed
	})
}

// Fail ends the flow as denied with reason, which the device receives as
// access_denied's error_description (so it must name no secret).
func (s *Service) Fail(ctx context.Context, c *Claim, reason string) error {
	return s.finish(ctx, c, func(r *store.Record) {
		r.Status = store.StatusDenied
		r.Reason = reason
	})
}

func (s *Service) finish(ctx context.Context, c *Claim, set func(*store.Record)) error {
	// c.Record is what the claim wrote: unless the record changed since
	// (the person pressed Allow again), the result goes over it without a
	// read (store.UpdateKnown).
	_, err := store.UpdateKnown(ctx, s.c.Store, c.Record, func(r *store.Record) error {
		if r.Status != store.StatusAuthorizing || r.StateHash != "" || r.CodeVerifier != c.sealed {
			if err := awaiting(r); err != nil {
				return err
			}
			return ErrStateMismatch
		}
		set(r)
		r.CodeVerifier = ""
		return nil
	})
	return mapLookupErr(err)
}

// Ping reports whether the store is reachable.
func (s *Service) Ping(ctx context.Context) error { return s.c.Store.Ping(ctx) }
