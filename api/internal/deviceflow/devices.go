package deviceflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// kindDeviceID derives the operator's short id of a binding from its key.
// A separate label, so the id is no key, no token hash and nothing a
// request could present: knowing it lets one disconnect the device through
// the operator's command, never refresh or look it up over HTTP.
const kindDeviceID = "device-id"

// deviceIDLen is the length of a device id in hex digits (48 bits): short
// enough to type, and a collision among one deployment's devices is
// vanishingly unlikely (and would make disconnect refuse, not guess).
const deviceIDLen = 12

// Device is one live refresh-token binding as the operator sees it. It
// holds nothing that refreshes or identifies a token.
type Device struct {
	// ID is a short opaque id, stable while the binding keeps its key
	// (a provider that rotates refresh tokens gives a new id per rotation).
	ID       string
	ClientID string
	Upstream string
	Scopes   []string
	// SignedIn and Refreshed are zero when unknown: bindings made before
	// devicegate recorded them, or (Refreshed) never refreshed, or not yet
	// recorded (a refresh is recorded up to RefreshedGranularity late).
	SignedIn, Refreshed time.Time
	ExpiresAt           time.Time
}

// ErrNoSuchDevice: no live binding has the id given.
var ErrNoSuchDevice = errors.New("deviceflow: no device with that id")

// deviceID is the operator's id of the binding with key bindingID.
func (s *Service) deviceID(bindingID string) string {
	return s.c.Hasher.Hash(kindDeviceID, bindingID)[:deviceIDLen]
}

// Devices lists every live binding, oldest sign-in first (unknown first).
func (s *Service) Devices(ctx context.Context) ([]Device, error) {
	var out []Device
	err := s.c.Store.EachBinding(ctx, func(b *store.Binding) error {
		out = append(out, Device{
			ID: s.deviceID(b.ID), ClientID: b.ClientID, Upstream: b.Upstream, Scopes: slices.Clone(b.Scopes),
			SignedIn: b.CreatedAt, Refreshed: b.RefreshedAt, ExpiresAt: b.ExpiresAt,
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deviceflow: listing bindings: %w", err)
	}
	slices.SortFunc(out, func(a, b Device) int {
		if c := a.SignedIn.Compare(b.SignedIn); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Disconnect removes the binding whose device id is id, so the device's
// next refresh is invalid_grant and it must sign in again. It returns the
// device removed. The token stays valid at the provider: devicegate holds
// no copy of it to revoke there (only its keyed hash).
func (s *Service) Disconnect(ctx context.Context, id string) (*Device, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) != deviceIDLen {
		return nil, ErrNoSuchDevice
	}
	var found []*store.Binding
	err := s.c.Store.EachBinding(ctx, func(b *store.Binding) error {
		if s.deviceID(b.ID) == id {
			found = append(found, b)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deviceflow: listing bindings: %w", err)
	}
	switch len(found) {
	case 0:
		return nil, ErrNoSuchDevice
	case 1:
	default:
		return nil, errors.New("deviceflow: two devices share that id; disconnect neither")
	}
	b := found[0]
	if err := s.c.Store.DeleteBinding(ctx, b.ID); err != nil {
		return nil, fmt.Errorf("deviceflow: removing the binding: %w", err)
	}
	return &Device{ID: id, ClientID: b.ClientID, Upstream: b.Upstream, Scopes: slices.Clone(b.Scopes),
		SignedIn: b.CreatedAt, Refreshed: b.RefreshedAt, ExpiresAt: b.ExpiresAt}, nil
}

// Revoke ends refreshToken through devicegate (RFC 7009) when it is bound
// to clientID at upstream: the binding is deleted, so the next refresh is
// invalid_grant without reaching the provider. It reports whether it
// deleted one; a token unknown, lapsed or bound to another client or
// provider is left alone and reported false, nil, so the endpoint answers
// alike (RFC 7009 §2.2) and a prober learns nothing. The caller must have
// applied its rate limits: the token is a secret and this reads the store.
func (s *Service) Revoke(ctx context.Context, refreshToken, clientID, upstream string) (bool, error) {
	g, err := s.CheckRefresh(ctx, refreshToken, clientID, upstream)
	switch {
	case errors.Is(err, ErrRefreshUnbound), errors.Is(err, ErrRefreshWrongClient):
		return false, nil
	case err != nil:
		return false, err
	}
	if err := s.Unbind(ctx, g); err != nil {
		return false, fmt.Errorf("deviceflow: removing the refresh binding: %w", err)
	}
	return true, nil
}
