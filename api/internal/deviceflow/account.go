package deviceflow

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// Labels of the person's own device list (/devices). Each its own, so no
// value of one can stand for another: an account hash is no session MAC,
// a session is no form token, a form token is no PKCE verifier.
const (
	kindAccount        = "account"
	kindAccountSession = "account-session"
	kindAccountCSRF    = "account-csrf"
	kindAccountPKCE    = "account-pkce"
)

// AccountSessionLifetime is how long a sign-in at /devices lasts: long
// enough to look and disconnect, short enough that a browser left open
// does not keep the list.
const AccountSessionLifetime = 10 * time.Minute

// accountHash is the keyed hash bindings keep of the person's account:
// the provider's identifier scoped to the provider (its Identity), so the
// same identifier at two providers names two accounts. "" stays "".
func (s *Service) accountHash(upstream, account string) string {
	if account == "" {
		return ""
	}
	return s.c.Hasher.Hash(kindAccount, accountInput(upstream, account))
}

func accountInput(upstream, account string) string { return upstream + "\x00" + account }

// ErrNoSession: the /devices session cookie is missing, forged, from
// another key no longer in use, or expired.
var ErrNoSession = errors.New("deviceflow: no valid device-list session")

// NewAccountSession returns the value of the /devices session cookie for
// the person whose account at upstream the provider named account. It
// holds the account's hash under every key in use (so bindings recorded
// before a key rotation are still found), its expiry and a fresh nonce,
// MACed under the current key: a browser can neither make one nor change
// the account in one, and each sign-in gets a new one.
func (s *Service) NewAccountSession(upstream, account string) (string, error) {
	if account == "" {
		return "", errors.New("deviceflow: no account to sign in")
	}
	nonce := make([]byte, 16)
	if _, err := io.ReadFull(s.c.Rand, nonce); err != nil {
		return "", fmt.Errorf("deviceflow: reading randomness: %w", err)
	}
	hashes := make([]string, 0, len(s.hashers()))
	for _, h := range s.hashers() {
		hashes = append(hashes, h.Hash(kindAccount, accountInput(upstream, account)))
	}
	payload := strings.Join(hashes, ",") + "." + strconv.FormatInt(s.c.Now().Add(AccountSessionLifetime).Unix(), 10) +
		"." + base64.RawURLEncoding.EncodeToString(nonce)
	return payload + "." + s.c.Hasher.Hash(kindAccountSession, payload), nil
}

// AccountSession is a checked /devices session.
type AccountSession struct {
	accounts []string
	cookie   string
	Expires  time.Time
}

// CheckAccountSession checks a session cookie's MAC (current key only: a
// session outliving a rotation just signs in again) and expiry.
func (s *Service) CheckAccountSession(cookie string) (*AccountSession, error) {
	if len(cookie) > 2048 {
		return nil, ErrNoSession
	}
	i := strings.LastIndexByte(cookie, '.')
	if i < 0 {
		return nil, ErrNoSession
	}
	payload, mac := cookie[:i], cookie[i+1:]
	if subtle.ConstantTimeCompare([]byte(mac), []byte(s.c.Hasher.Hash(kindAccountSession, payload))) != 1 {
		return nil, ErrNoSession
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 {
		return nil, ErrNoSession
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !s.c.Now().Before(time.Unix(exp, 0)) {
		return nil, ErrNoSession
	}
	accounts := strings.Split(parts[0], ",")
	if slices.Contains(accounts, "") {
		return nil, ErrNoSession
	}
	return &AccountSession{accounts: accounts, cookie: cookie, Expires: time.Unix(exp, 0)}, nil
}

// FormToken is the token /devices forms carry for this session: derived
// from the session cookie, which another site can neither read nor set.
func (s *Service) FormToken(a *AccountSession) string {
	return s.c.Hasher.Hash(kindAccountCSRF, a.cookie)
}

// CheckFormToken reports whether presented is a's FormToken.
func (s *Service) CheckFormToken(a *AccountSession, presented string) bool {
	return subtle.ConstantTimeCompare([]byte(presented), []byte(s.FormToken(a))) == 1
}

// AccountVerifier is the PKCE verifier (RFC 7636 §4.1: 64 characters of
// the unreserved set) of the /devices sign-in whose state is state:
// derived, so the browser's login cookie needs to hold the state alone.
func (s *Service) AccountVerifier(state string) string {
	return s.c.Hasher.Hash(kindAccountPKCE, state)
}

// owns reports whether binding b belongs to the session's account.
func (a *AccountSession) owns(b *store.Binding) bool {
	return b.Account != "" && slices.Contains(a.accounts, b.Account)
}

// AccountDevices lists the live bindings of a's account, oldest sign-in
// first. It reads every binding (EachBinding, a cross-partition query on
// Cosmos DB) and keeps the account's: a cost proportional to the
// deployment's devices, paid once per page view by a signed-in person —
// fine for the small deployments devicegate is for; a larger one would
// key bindings by account as well (see SECURITY.md).
func (s *Service) AccountDevices(ctx context.Context, a *AccountSession) ([]Device, error) {
	// Bindings keep the account's hash under the key current when they
	// were made, and the session carries its hash under every key in use,
	// so a rotation's overlap loses none. Once a previous key is removed,
	// devices signed in under it are no longer listed (they still work)
	// until they sign in again: rewriting their hash here would race a
	// concurrent disconnect or rotation (bindings have no compare-and-swap)
	// and could bring a removed binding back.
	var out []Device
	err := s.c.Store.EachBinding(ctx, func(b *store.Binding) error {
		if a.owns(b) {
			out = append(out, s.device(b))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deviceflow: listing bindings: %w", err)
	}
	slices.SortFunc(out, func(x, y Device) int {
		if c := x.SignedIn.Compare(y.SignedIn); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// AccountDevice returns the live binding of a's account whose device id
// is id; ErrNoSuchDevice when there is none — in particular when id names
// another account's device, which is told apart from no device at all.
func (s *Service) AccountDevice(ctx context.Context, a *AccountSession, id string) (*Device, error) {
	b, err := s.accountBinding(ctx, a, id)
	if err != nil {
		return nil, err
	}
	d := s.device(b)
	return &d, nil
}

// DisconnectAccountDevice removes the binding of a's account whose device
// id is id, like the operator's Disconnect, and returns it. Another
// account's device is ErrNoSuchDevice and left alone.
func (s *Service) DisconnectAccountDevice(ctx context.Context, a *AccountSession, id string) (*Device, error) {
	b, err := s.accountBinding(ctx, a, id)
	if err != nil {
		return nil, err
	}
	if err := s.c.Store.DeleteBinding(ctx, b.ID); err != nil {
		return nil, fmt.Errorf("deviceflow: removing the binding: %w", err)
	}
	d := s.device(b)
	return &d, nil
}

func (s *Service) accountBinding(ctx context.Context, a *AccountSession, id string) (*store.Binding, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) != deviceIDLen {
		return nil, ErrNoSuchDevice
	}
	var found []*store.Binding
	err := s.c.Store.EachBinding(ctx, func(b *store.Binding) error {
		if a.owns(b) && s.deviceID(b.ID) == id {
			found = append(found, b)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deviceflow: listing bindings: %w", err)
	}
	if len(found) != 1 {
		// None, or (vanishingly unlikely) two of this account's
		// devices sharing an id: disconnect neither.
		return nil, ErrNoSuchDevice
	}
	return found[0], nil
}

// device is the listing of binding b.
func (s *Service) device(b *store.Binding) Device {
	return Device{ID: s.deviceID(b.ID), ClientID: b.ClientID, Upstream: b.Upstream, Scopes: slices.Clone(b.Scopes),
		SignedIn: b.CreatedAt, Refreshed: b.RefreshedAt, ExpiresAt: b.ExpiresAt}
}
