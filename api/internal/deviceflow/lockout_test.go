package deviceflow_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/oauth"
)

// TestLockout: failed confirmation attempts against a code lock it at the
// limit; the person sees it locked, the device gets access_denied saying
// why, and codes that are not live are not counted.
func TestLockout(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "tv", nil)
	other, _ := f.svc.Authorize(ctx, "tv", nil)

	for i := 1; i < deviceflow.DefaultMaxFailures; i++ {
		locked, err := f.fail(a.UserCode)
		if err != nil || locked {
			t.Fatalf("failure %d: locked %v, %v", i, locked, err)
		}
	}
	// Below the limit the person can still go on.
	b, err := f.begin(a.UserCode)
	if err != nil {
		t.Fatalf("below the limit: %v", err)
	}
	// The callback side counts too, and the last failure locks.
	locked, err := f.svc.RecordCallbackFailure(ctx, b.RecordID)
	if err != nil || !locked {
		t.Fatalf("the %dth failure did not lock: %v", deviceflow.DefaultMaxFailures, err)
	}
	if _, err := f.svc.Lookup(ctx, a.UserCode); !errors.Is(err, deviceflow.ErrCodeLocked) {
		t.Errorf("lookup of a locked code: %v", err)
	}
	// The authorization begun before the lock cannot finish.
	if _, err := f.svc.ClaimCallback(ctx, b.RecordID, b.State); !errors.Is(err, deviceflow.ErrCodeLocked) {
		t.Errorf("callback after the lock: %v", err)
	}
	if _, err := f.fail(a.UserCode); !errors.Is(err, deviceflow.ErrCodeLocked) {
		t.Errorf("failure on a locked code: %v", err)
	}
	_, _, err = f.svc.Poll(ctx, "tv", a.DeviceCode)
	if !errors.Is(err, oauth.ErrAccessDenied) || !strings.Contains(err.Error(), "locked after 5 failed confirmation attempts") {
		t.Errorf("device: %v", err)
	}

	// Other codes are untouched; unknown and malformed codes are not counted.
	if _, err := f.svc.Lookup(ctx, other.UserCode); err != nil {
		t.Errorf("another code: %v", err)
	}
	if _, err := f.fail("BBBB-BBBB"); !errors.Is(err, deviceflow.ErrUnknownCode) {
		t.Errorf("unknown code: %v", err)
	}
	if _, err := f.fail("nope"); !errors.Is(err, deviceflow.ErrInvalidUserCode) {
		t.Errorf("malformed code: %v", err)
	}
}
