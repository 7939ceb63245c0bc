package bolt

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
)

// A count does not wait for a commit of its own: with bbolt's writer lock
// held (as by a long commit), Incr and IncrMember still answer, with the right count;
// the count reaches the file with the next commit.
func TestIncrWaitsForNoCommit(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), nil)
	ctx := context.Background()
	if n, _, err := s.Incr(ctx, "k", time.Hour); err != nil || n != 1 {
		t.Fatalf("first Incr = %d, %v", n, err)
	}
	held, err := s.db.Begin(true) // the writer lock, as a commit in progress holds it
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan [2]int, 1)
	go func() {
		n, _, err := s.Incr(ctx, "k", time.Hour)
		if err != nil {
			t.Error(err)
		}
		m, _, err := s.IncrMember(ctx, "g", "a", time.Hour)
		if err != nil {
			t.Error(err)
		}
		done <- [2]int{n, m["a"]}
	}()
	select {
	case n := <-done:
		if n != [2]int{2, 1} {
			t.Errorf("Incr, IncrMember = %v, want 2 and 1", n)
		}
	case <-time.After(time.Minute):
		t.Fatal("Incr or IncrMember waited for the writer lock: a count waits for a commit of its own")
	}
	if err := held.Rollback(); err != nil {
		t.Fatal(err)
	}
	// A Create commits; the count is in the file with it.
	if err := s.Create(ctx, &store.Record{ID: "d", UserCodeHash: "u", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n := fileCount(t, s, "1h0m0s|k"); n != 2 {
		t.Errorf("count in the file after the next commit = %d, want 2", n)
	}
	var g counterValue
	_ = s.db.View(func(tx *bbolt.Tx) error {
		return json.Unmarshal(tx.Bucket(countersBucket).Get([]byte("1h0m0s|g|g")), &g)
	})
	if g.M["a"] != 1 {
		t.Errorf("group in the file after the next commit = %v, want a: 1", g.M)
	}
	if n, _, _ := s.Incr(ctx, "k", time.Hour); n != 3 {
		t.Errorf("third Incr = %d, want 3", n)
	}
}

// Counts made before Close are in the file after it, and none is taken
// after. (Close's own final write of pending counts covers an Incr racing
// it; that race is not reproduced here.)
func TestCountsSurviveClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devicegate.db")
	s, err := Open(path, Options{SweepEvery: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := s.Incr(context.Background(), "k", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Incr(context.Background(), "k", time.Hour); err == nil {
		t.Error("Incr after Close succeeded")
	}
	s = open(t, path, nil)
	if n := fileCount(t, s, "1h0m0s|k"); n != 3 {
		t.Errorf("count after Close and reopen = %d, want 3", n)
	}
}

func fileCount(t *testing.T, s *Store, key string) int {
	t.Helper()
	var c counterValue
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(countersBucket).Get([]byte(key)); v != nil {
			return json.Unmarshal(v, &c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.N
}
