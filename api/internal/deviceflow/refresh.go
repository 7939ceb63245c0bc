package deviceflow

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// DefaultRefreshLifetime is how long a refresh-token binding lives without
// a refresh when Config.RefreshLifetime is zero. Each refresh renews it, so
// a device that refreshes at least this often never has to sign in again;
// one that was unplugged longer must.
const DefaultRefreshLifetime = 90 * 24 * time.Hour

// RefreshedGranularity is how stale a binding's RefreshedAt may grow
// before a refresh writes it: a refresh that would not otherwise write
// the binding records itself only when the last record is this old.
const RefreshedGranularity = 24 * time.Hour

// Errors of the refresh binding (RFC 9700 §4.14: a refresh token is bound
// to the client it was issued to). The token endpoint answers each with
// invalid_grant and never contacts the provider.
var (
	// ErrRefreshUnbound: devicegate holds no binding for the refresh token.
	// Either it was never issued through devicegate, or before bindings
	// existed, or its binding lapsed: the device must sign in again.
	ErrRefreshUnbound = errors.New("deviceflow: refresh token not issued through devicegate")
	// ErrRefreshWrongClient: the token was issued to another client or for
	// another provider.
	ErrRefreshWrongClient = errors.New("deviceflow: refresh token issued to another client")
)

// RefreshGrant is a refresh token found bound to the requesting client.
type RefreshGrant struct {
	binding *store.Binding
	// current is the token's binding ID under the current key; it differs
	// from binding.ID when the binding was found under a previous key.
	current string
	// Scopes are the scopes the token was granted with.
	Scopes []string
}

// BindRefresh records that refreshToken was issued to clientID at the
// provider named upstream with scopes, so that only that client can
// refresh it. It is called before the tokens reach the device.
func (s *Service) BindRefresh(ctx context.Context, refreshToken, clientID, upstream string, scopes []string) error {
	if refreshToken == "" {
		return nil
	}
	err := s.c.Store.PutBinding(ctx, &store.Binding{
		ID: s.c.Hasher.Hash(kindRefresh, refreshToken), ClientID: clientID, Upstream: upstream,
		Scopes: slices.Clone(scopes), ExpiresAt: s.c.Now().Add(s.c.RefreshLifetime), CreatedAt: s.c.Now(),
	})
	if err != nil {
		return fmt.Errorf("deviceflow: binding the refresh token: %w", err)
	}
	return nil
}

// CheckRefresh finds the binding of refreshToken and checks it belongs to
// clientID at upstream. The caller must have applied its rate limits
// first: the token is a secret and this reads the store.
func (s *Service) CheckRefresh(ctx context.Context, refreshToken, clientID, upstream string) (*RefreshGrant, error) {
	var (
		b   *store.Binding
		err error
	)
	for _, h := range s.hashers() {
		b, err = s.c.Store.GetBinding(ctx, h.Hash(kindRefresh, refreshToken))
		if !errors.Is(err, store.ErrNotFound) {
			break
		}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrRefreshUnbound
	case err != nil:
		return nil, fmt.Errorf("deviceflow: reading the refresh binding: %w", err)
	}
	// Both compared in constant time: neither is secret, but there is no
	// reason to tell a prober which one differs.
	same := subtle.ConstantTimeCompare([]byte(b.ClientID), []byte(clientID)) &
		subtle.ConstantTimeCompare([]byte(b.Upstream), []byte(upstream))
	if same != 1 {
		return nil, ErrRefreshWrongClient
	}
	return &RefreshGrant{binding: b, current: s.c.Hasher.Hash(kindRefresh, refreshToken), Scopes: slices.Clone(b.Scopes)}, nil
}

// Refreshed records a successful refresh of g. When the provider rotated
// the refresh token (newToken non-empty and different), the binding moves
// to the new token and the old one stops working through devicegate. When
// it did not but the binding was found under a previous key, the binding
// moves to the same token's ID under the current key, so that removing the
// previous key later signs nobody out who refreshed meanwhile. Otherwise
// the binding stays, renewed once half its life is gone or its
// RefreshedAt is a day old (so a device refreshing hourly costs at most one
// write a day, and the operator's list is a day late at worst).
func (s *Service) Refreshed(ctx context.Context, g *RefreshGrant, newToken string, scopes []string) error {
	now := s.c.Now()
	next := g.binding.Clone()
	next.Scopes = slices.Clone(scopes)
	next.ExpiresAt = now.Add(s.c.RefreshLifetime)
	next.RefreshedAt = now
	target := g.current
	if newToken != "" {
		target = s.c.Hasher.Hash(kindRefresh, newToken)
	}
	var err error
	switch {
	case target != g.binding.ID:
		next.ID = target
		err = s.c.Store.MoveBinding(ctx, g.binding.ID, next)
	case g.binding.ExpiresAt.Sub(now) < s.c.RefreshLifetime/2 || !slices.Equal(scopes, g.binding.Scopes) ||
		now.Sub(lastUse(g.binding)) >= RefreshedGranularity:
		err = s.c.Store.PutBinding(ctx, next)
	}
	if err != nil {
		return fmt.Errorf("deviceflow: moving the refresh binding: %w", err)
	}
	return nil
}

// lastUse is when b was last recorded in use: its last recorded refresh,
// else its sign-in; zero for a binding older than both fields, which the
// next refresh therefore writes (filling RefreshedAt in: the migration).
func lastUse(b *store.Binding) time.Time {
	if !b.RefreshedAt.IsZero() {
		return b.RefreshedAt
	}
	return b.CreatedAt
}

// Unbind forgets g, for a refresh token the provider declared dead.
func (s *Service) Unbind(ctx context.Context, g *RefreshGrant) error {
	return s.c.Store.DeleteBinding(ctx, g.binding.ID)
}

// DecisionToken is the form token a confirmation page for record recordID
// carries, derived from the browser's cookie token. A token copied from
// the page of one code is worthless for any other code, and without the
// browser's cookie it is worthless altogether.
func (s *Service) DecisionToken(browserToken, recordID string) string {
	return s.c.Hasher.Hash(kindDecision, decisionInput(browserToken, recordID))
}

// decisionInput is what a decision token is the HMAC of.
func decisionInput(browserToken, recordID string) string { return browserToken + "." + recordID }

// CheckDecisionToken reports whether presented is the DecisionToken of
// browserToken and recordID, under the current key or a previous one.
func (s *Service) CheckDecisionToken(browserToken, recordID, presented string) bool {
	ok := 0
	for _, h := range s.hashers() {
		ok |= subtle.ConstantTimeCompare([]byte(presented), []byte(h.Hash(kindDecision, decisionInput(browserToken, recordID))))
	}
	return ok == 1
}
