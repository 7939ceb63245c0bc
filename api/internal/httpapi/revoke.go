package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/devicegate/devicegate/api/internal/oauth"
	"github.com/devicegate/devicegate/api/internal/upstream"
)

// revoke is the token revocation endpoint (RFC 7009 §2) for refresh tokens
// devicegate handed out.
//
// The client authenticates exactly as at the token endpoint (§2.1), then
// the same rate limits as a refresh apply, in the same buckets: a
// revocation reads the store with a token guess just as a refresh does, so
// it must not add to a prober's budget. A token bound to this client and
// provider loses its binding — its next refresh is invalid_grant without a
// provider call — and, when the provider has a revocation endpoint, is
// revoked there too with devicegate's credentials (best effort, logged
// without the token). Any other token, unknown or another client's, is
// left alone and answered 200 like a revoked one (§2.2), so a prober
// learns nothing about it.
//
// Access tokens are unsupported_token_type (§2.2.1) when hinted as such:
// devicegate never sees an access token again after handing it over and
// keeps no record of one, so it can neither check that it belongs to the
// client nor revoke it; they are short-lived, and revoking the refresh
// token ends the grant through devicegate. An access token sent without a
// hint is, to devicegate, an unknown token: 200, nothing done.
func (s *server) revoke(w http.ResponseWriter, r *http.Request) error {
	form, err := parseForm(w, r)
	if err != nil {
		return err
	}
	c, cred, err := s.authenticateClient(r, form)
	if err != nil {
		return s.withChallenge(w, err)
	}
	if c.Passthrough() {
		// As at the token endpoint: the provider's secret, which the
		// provider's revocation endpoint checks.
		if err := cred.requireUpstreamSecret(); err != nil {
			return s.withChallenge(w, err)
		}
	}
	tok := form.Get("token")
	if tok == "" {
		return invalidRequest("token is required")
	}
	switch form.Get("token_type_hint") {
	case "", "refresh_token":
	case "access_token":
		return oauth.Error{Code: "unsupported_token_type", Status: http.StatusBadRequest,
			Description: "devicegate revokes refresh tokens only; access tokens lapse on their own — revoke the refresh token"}
	default:
		// §2.1: an unknown hint is ignored; the token is looked up as a
		// refresh token, the only kind devicegate knows.
	}
	if ok, retry := s.allow(r, "refresh", s.RateRefresh); !ok {
		return s.tooManyRefreshes(w, retry, "this address")
	}
	if ok, retry := s.Limiter.Allow(r.Context(), "refresh-client", s.RateRefreshClient, c.ID); !ok {
		return s.tooManyRefreshes(w, retry, "this client")
	}
	up, err := s.upstreamFor(c.ID)
	if err != nil {
		return err
	}
	if len(tok) > 4096 {
		// No refresh token devicegate bound is this long (refresh refuses
		// it too): nothing to revoke.
		oauth.WriteJSON(w, http.StatusOK, struct{}{})
		return nil
	}
	ctx := context.WithoutCancel(r.Context())
	if c.Passthrough() && up.CanRevoke() {
		// Only for a token bound to this client: the provider checks the
		// secret the device presented, and a refusal keeps the binding.
		if _, err := s.Service.CheckRefresh(ctx, tok, c.ID, up.Identity()); err == nil {
			if err := up.RevokeWithSecret(ctx, cred.upstreamSecret, tok); err != nil {
				var xe *upstream.ExchangeError
				if errors.As(err, &xe) && xe.ClientRejected() {
					// Counted like a wrong secret of devicegate's own, as at
					// the token endpoint: no unlimited oracle for it here.
					if err := s.clientAuthFailed(ctx, s.clientIP(r), c); err != nil {
						return s.withChallenge(w, err)
					}
					return s.withChallenge(w, invalidClient(cred.basic, up.DisplayName()+" refused the client credentials the device presented; nothing was revoked"))
				}
				s.Logger.WarnContext(ctx, "revocation at the provider failed (passthrough); the token is revoked through devicegate only", "client_id", c.ID, "err", err)
			}
		}
	}
	revoked, err := s.Service.Revoke(ctx, tok, c.ID, up.Identity())
	if err != nil {
		return err
	}
	if revoked {
		s.Logger.InfoContext(ctx, "refresh token revoked", "client_id", c.ID)
		if !c.Passthrough() && up.CanRevoke() {
			if err := up.Revoke(ctx, tok); err != nil {
				s.Logger.WarnContext(ctx, "revocation at the provider failed; the token is revoked through devicegate only", "client_id", c.ID, "err", err)
			}
		}
	}
	oauth.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}
