package bolt

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
)

// crashChildEnv makes this test binary the child of TestCreateSurvivesCrash.
const crashChildEnv = "DEVICEGATE_BOLT_CRASH_CHILD"

// Group commit must not weaken "answered means stored": every Create that
// returned before the process was killed (SIGKILL, no Close, no deferred
// code) is in the file when it is opened again — and so is every rate-limit
// count made before it, as /api/authorize counts before it creates: counts
// wait in memory for the next commit (counters.go), and that commit is
// the Create's at the latest.
func TestCreateSurvivesCrash(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "devicegate.db")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCreateSurvivesCrash$", "-test.count", "1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	// Kill it while Creates are in flight, after enough answers that
	// several group commits have happened.
	const answers = 3000
	var ids []string
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(ids) < answers {
		ids = append(ids, sc.Text())
	}
	if len(ids) < answers {
		t.Fatalf("the child answered only %d Creates", len(ids))
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true

	// The lines still in the pipe were answered too.
	for sc.Scan() {
		ids = append(ids, sc.Text())
	}
	s := open(t, path, nil)
	// The child counts under crash-G before each Create of dev-G-I: G's
	// count holds at least one more than the highest I answered.
	answered := map[string]int{}
	for _, id := range ids {
		var g, i int
		if _, err := fmt.Sscanf(id, "dev-%d-%d", &g, &i); err != nil {
			t.Fatalf("child printed %q", id)
		}
		key := fmt.Sprintf("1h0m0s|crash-%d", g)
		answered[key] = max(answered[key], i+1)
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		var group counterValue
		gv := tx.Bucket(countersBucket).Get([]byte("1h0m0s|g|crash"))
		if gv == nil || json.Unmarshal(gv, &group) != nil {
			t.Errorf("group count after the crash: %s", gv)
		}
		for key, n := range answered {
			var c counterValue
			if v := tx.Bucket(countersBucket).Get([]byte(key)); v == nil || json.Unmarshal(v, &c) != nil || c.N < n {
				t.Errorf("count %s after the crash: %s, want n ≥ %d (answered Creates that counted first)", key, v, n)
			}
			member := strings.TrimPrefix(key, "1h0m0s|crash-")
			if group.M[member] < n {
				t.Errorf("group member %s after the crash: %d, want ≥ %d", member, group.M[member], n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, id := range ids {
		if _, err := s.Get(context.Background(), id); err != nil {
			missing++
			if missing <= 3 {
				t.Errorf("answered Create %s lost in the crash: %v", id, err)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d answered Creates lost", missing, len(ids))
	}
	t.Logf("%d answered Creates all present after SIGKILL and reopen", len(ids))
}

// crashChild creates records from 32 goroutines, printing each ID once its
// Create has returned, until it is killed (or five minutes have passed: a
// guard against an orphan, far longer than a loaded machine needs for the
// parent's 3000 answers).
func crashChild(path string) {
	// A fixed clock for the counts, so no window ends while it runs.
	clock := func() time.Time { return time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC) }
	s, err := Open(path, Options{Now: clock, SweepEvery: -1, Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	deadline := time.Now().Add(5 * time.Minute)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				r := &store.Record{
					ID: fmt.Sprintf("dev-%d-%d", g, i), UserCodeHash: fmt.Sprintf("usr-%d-%d", g, i),
					ClientID: "tv", Status: store.StatusPending,
					CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Interval: 5,
				}
				// Counted first, as /api/authorize does (an address's
				// networks in one group, ratelimit.AllowAddr), and once
				// more with Incr.
				if _, _, err := s.IncrMember(context.Background(), "crash", fmt.Sprint(g), time.Hour); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				if _, _, err := s.Incr(context.Background(), fmt.Sprintf("crash-%d", g), time.Hour); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				if err := s.Create(context.Background(), r); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				// An unbuffered write: once it returns the parent can read it.
				fmt.Fprintln(os.Stdout, r.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

// Creates racing for the same keys inside one group: exactly one wins each
// key, the others get ErrConflict, and the winners' group-mates are stored.
func TestGroupedCreateConflicts(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), nil)
	ctx := context.Background()
	const racers = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins = map[string]int{}
	)
	for g := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				// Every racer tries the same 20 IDs, and one of its own.
				for _, r := range []*store.Record{
					{ID: fmt.Sprintf("dev-%d", i), UserCodeHash: fmt.Sprintf("usr-%d", i), Status: store.StatusPending, ExpiresAt: time.Now().Add(time.Hour)},
					{ID: fmt.Sprintf("own-%d-%d", g, i), UserCodeHash: fmt.Sprintf("own-usr-%d-%d", g, i), Status: store.StatusPending, ExpiresAt: time.Now().Add(time.Hour)},
				} {
					err := s.Create(ctx, r)
					switch {
					case err == nil:
						mu.Lock()
						wins[r.ID]++
						mu.Unlock()
					case !errors.Is(err, store.ErrConflict):
						t.Errorf("Create %s: %v", r.ID, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	for i := range 20 {
		if n := wins[fmt.Sprintf("dev-%d", i)]; n != 1 {
			t.Errorf("dev-%d created %d times", i, n)
		}
	}
	for g := range racers {
		for i := range 20 {
			id := fmt.Sprintf("own-%d-%d", g, i)
			if wins[id] != 1 {
				t.Errorf("%s: created %d times", id, wins[id])
			}
			if _, err := s.Get(ctx, id); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}
	}
}

func TestWriteAfterClose(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := &store.Record{ID: "d", UserCodeHash: "u", ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.Create(context.Background(), r); !errors.Is(err, ErrClosed) {
		t.Errorf("Create after Close: %v, want ErrClosed", err)
	}
}
