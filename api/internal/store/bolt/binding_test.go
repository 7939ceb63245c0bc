package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

// The sweep removes expired bindings across several of its bounded
// batches, keeps live ones, and removes an undecodable one.
func TestSweepDropsExpiredBindings(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock()
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), c.Now)
	const n = 2*bindingSweepBatch + 7 // three batches
	for i := range n {
		life := time.Hour
		if i%3 == 0 {
			life = 48 * time.Hour
		}
		if err := s.PutBinding(ctx, &store.Binding{ID: fmt.Sprintf("rt-%05d", i), ClientID: "tv", ExpiresAt: c.Now().Add(life)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bindingsBucket).Put([]byte("rt-damaged"), []byte("{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Hour)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	left := 0
	if err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bindingsBucket).ForEach(func(k, _ []byte) error {
			left++
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if want := (n + 2) / 3; left != want {
		t.Errorf("%d bindings left after the sweep, want the %d live ones", left, want)
	}
	if _, err := s.GetBinding(ctx, "rt-00000"); err != nil {
		t.Errorf("a live binding was swept: %v", err)
	}
}
