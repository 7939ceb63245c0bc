package deviceflow_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/seal"
	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/memory"
)

// Microbenchmarks of the core; `go run ./bench` runs them with -benchmem
// and copies the results into docs/BENCHMARKS.md.

func BenchmarkNewUserCode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := deviceflow.NewUserCode(rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewDeviceCode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := deviceflow.NewDeviceCode(rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalizeUserCode(b *testing.B) {
	for _, in := range []string{"BCDFGHJK", "bcdf-ghjk", " bcdf ghjk "} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := deviceflow.NormalizeUserCode(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecide is the poll decision for a pending record polled on time.
func BenchmarkDecide(b *testing.B) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &store.Record{Status: store.StatusPending, CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute), Interval: 5, LastPoll: t0.Add(time.Minute)}
	now := r.LastPoll.Add(5 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		if deviceflow.Decide(r, now) != deviceflow.OutcomePending {
			b.Fatal("not pending")
		}
	}
}

func BenchmarkHasherHash(b *testing.B) {
	h, err := deviceflow.NewHasher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatal(err)
	}
	dc, _ := deviceflow.NewDeviceCode(rand.Reader)
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Hash("device", dc)
	}
}

// BenchmarkServicePoll is the poll path below HTTP: hash the device code,
// Update the record in the memory store, decide, build the oauth.Error.
// The interval is 1 s, so every poll is on time and answered pending.
func BenchmarkServicePoll(b *testing.B) {
	st := memory.New(time.Now)
	h, err := deviceflow.NewHasher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatal(err)
	}
	sl, err := seal.New(rand.Reader, bytes.Repeat([]byte{8}, 32))
	if err != nil {
		b.Fatal(err)
	}
	// The clock moves one interval per poll, as a well-behaved device polls
	// (back-to-back polls would be answered slow_down); a ten-year lifetime
	// outlasts any number of iterations.
	now := time.Now()
	svc, err := deviceflow.New(deviceflow.Config{
		Store: st, Hasher: h, Sealer: sl, Now: func() time.Time { return now }, Rand: rand.Reader,
		Lifetime: 10 * 365 * 24 * time.Hour, Interval: time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	bctx := context.Background()
	a, err := svc.Authorize(bctx, "tv", []string{"streaming"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		_, out, _ := svc.Poll(bctx, "tv", a.DeviceCode)
		if out != deviceflow.OutcomePending {
			b.Fatalf("outcome %v", out)
		}
	}
}
