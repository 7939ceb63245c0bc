package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// With one P the writers waiting to run must still share a commit. Before
// the committer yielded, the write that woke it ran next, the committer
// found no other write waiting (the others had not run yet), and a
// commit held one write: 64 devices creating flows on a one-CPU process
// were committed one at a time and the last waited seconds (bench part 1d).
// Counted, not timed: writes per commit.
func TestGroupCommitGathersWithOneP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), nil)
	// No fdatasync: a commit then never blocks long enough in a system
	// call for the runtime to hand the P to another thread — the case the
	// benchmark fell into, whatever this machine's disk is like.
	s.db.NoSync = true
	ctx := context.Background()
	const writers, each = 32, 20
	before := s.CommitStats()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				r := &store.Record{ID: fmt.Sprintf("dev-%d-%d", w, i), UserCodeHash: fmt.Sprintf("usr-%d-%d", w, i),
					Status: store.StatusPending, ExpiresAt: time.Now().Add(time.Hour)}
				if err := s.Create(ctx, r); err != nil {
					t.Errorf("Create %s: %v", r.ID, err)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	after := s.CommitStats()
	commits, writes := after.Commits-before.Commits, after.Writes-before.Writes
	if writes != writers*each {
		t.Fatalf("%d writes committed, want %d", writes, writers*each)
	}
	// Every writer is ready whenever the committer is: a group holds most
	// of them. One at a time gives about 1.
	if per := float64(writes) / float64(commits); per < writers/4 {
		t.Errorf("%d writes in %d commits (%.1f per commit) with one P and %d writers; want at least %d per commit", writes, commits, per, writers, writers/4)
	}
}

// CommitStats times every group commit and TakeLongestCommit reports the
// longest since the last call, then starts over.
func TestCommitStatsTimes(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), nil)
	ctx := context.Background()
	s.TakeLongestCommit()
	for i := range 3 {
		r := &store.Record{ID: fmt.Sprintf("dev-%d", i), UserCodeHash: fmt.Sprintf("usr-%d", i), Status: store.StatusPending, ExpiresAt: time.Now().Add(time.Hour)}
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	cs := s.CommitStats()
	if cs.Commits != 3 || cs.Writes != 3 {
		t.Fatalf("commits %d, writes %d; want 3 and 3", cs.Commits, cs.Writes)
	}
	if cs.Held <= 0 || cs.Write <= 0 || cs.Write > cs.Held || cs.Spill > cs.Held {
		t.Errorf("held %s, spill %s, write %s: want write and spill within held", cs.Held, cs.Spill, cs.Write)
	}
	l := s.TakeLongestCommit()
	if l.Writes != 1 || l.Pages <= 0 || l.Held <= 0 || l.Write > l.Held || l.Work > l.Held {
		t.Errorf("longest commit %+v: want one write, its pages and its times", l)
	}
	if again := s.TakeLongestCommit(); again != (CommitTiming{}) {
		t.Errorf("after a take, longest %+v; want none", again)
	}
}
