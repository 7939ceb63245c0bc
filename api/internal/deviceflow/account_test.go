package deviceflow_test

import (
	"bytes"
	"testing"

	"github.com/devicegate/devicegate/api/internal/deviceflow"
)

// TestAccountDuringKeyRotation: a device bound under the old key is
// listed during the overlap (the session carries the account's hash under
// every key); once the old key is removed it no longer is (documented:
// it keeps working, and is listed again once signed in anew).
func TestAccountDuringKeyRotation(t *testing.T) {
	f := newFixture(t) // key 7
	if err := f.svc.BindRefresh(ctx, "rt-1", "tv", "acme", []string{"streaming"}, "alice"); err != nil {
		t.Fatal(err)
	}
	oldHasher, _ := deviceflow.NewHasher(bytes.Repeat([]byte{7}, 32))
	newHasher, _ := deviceflow.NewHasher(bytes.Repeat([]byte{9}, 32))
	cfg := f.cfg
	cfg.Hasher, cfg.Previous = newHasher, []*deviceflow.Hasher{oldHasher}
	list := func(svc *deviceflow.Service, account string) int {
		t.Helper()
		cookie, err := svc.NewAccountSession("acme", account)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := svc.CheckAccountSession(cookie)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := svc.AccountDevices(ctx, sess)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}
	overlap, _ := deviceflow.New(cfg)
	if n := list(overlap, "alice"); n != 1 {
		t.Fatalf("during the overlap alice sees %d devices, want 1", n)
	}
	cfg.Previous = nil
	after, _ := deviceflow.New(cfg)
	if n := list(after, "alice"); n != 0 {
		t.Errorf("after the old key is gone alice sees %d devices; the documented limit is 0", n)
	}
	if n := list(after, "bob"); n != 0 {
		t.Errorf("bob sees %d devices", n)
	}
	// Another provider's account with the same identifier is another
	// account.
	cookie, _ := after.NewAccountSession("other", "alice")
	sess, _ := after.CheckAccountSession(cookie)
	if ds, _ := after.AccountDevices(ctx, sess); len(ds) != 0 {
		t.Error("the same identifier at another provider sees alice's device")
	}
}
