package serve

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// slogLine is what slog writes for the access line: the Record that
// Logger.LogAttrs(ctx, LevelInfo, "request", …) builds, at time t, through
// slog's own handler with the options Logger uses.
func slogLine(t *testing.T, json bool, level slog.Level, at time.Time, method, path string, status int, d time.Duration) string {
	t.Helper()
	var buf bytes.Buffer
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(&buf, opts)
	if json {
		h = slog.NewJSONHandler(&buf, opts)
	}
	if !h.Enabled(context.Background(), slog.LevelInfo) {
		return ""
	}
	r := slog.NewRecord(at, slog.LevelInfo, "request", 0)
	r.AddAttrs(slog.String("method", method), slog.String("path", path), slog.Int("status", status), slog.Duration("duration", d))
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// handLine is what lineHandler.LogRequest writes, and whether it wrote.
func handLine(json bool, level slog.Level, at time.Time, method, path string, status int, d time.Duration) (string, bool) {
	var buf bytes.Buffer
	ok := newLineHandler(&buf, json, level).LogRequest(context.Background(), at, method, path, status, d)
	return buf.String(), ok
}

// TestLogRequestIsSlog: the hand-written access line is slog's, byte for
// byte, in text and JSON, for times in several zones (whole and odd
// offsets, milliseconds and nanoseconds with and without trailing zeros,
// a monotonic reading), statuses and durations of every shape; and inputs
// it cannot be sure of are left to slog, having written nothing.
func TestLogRequestIsSlog(t *testing.T) {
	base := time.Date(2026, 12, 3, 22, 10, 42, 123456789, time.UTC)
	times := []time.Time{
		base,
		time.Now(), // with a monotonic reading
		base.Truncate(time.Second),
		base.Truncate(time.Millisecond),
		base.Truncate(time.Millisecond).Add(time.Microsecond),
		time.Date(2026, 1, 1, 0, 0, 0, 999_999_999, time.FixedZone("CET", 3600)),
		time.Date(1999, 12, 31, 23, 59, 59, 500_000_000, time.FixedZone("", -(9*3600+30*60))),
		time.Date(2030, 6, 15, 12, 0, 0, 1, time.FixedZone("odd", 5*3600+45*60+17)),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		base.In(time.Local),
	}
	durations := []time.Duration{0, 1, 999, time.Microsecond, 1234567, 15 * time.Second, 90 * time.Minute, -5 * time.Microsecond, 1<<63 - 1}
	plain := []struct{ method, path string }{
		{"POST", "/api/token"},
		{"GET", "/"},
		{"DELETE", "/api/device/x-y_z.~1"},
		{"get", "/API/Token/ABC123"},
	}
	for _, json := range []bool{false, true} {
		for _, at := range times {
			for _, d := range durations {
				for _, in := range plain {
					for _, status := range []int{200, 400, 429, 0, -1, 1000000} {
						want := slogLine(t, json, slog.LevelInfo, at, in.method, in.path, status, d)
						got, ok := handLine(json, slog.LevelInfo, at, in.method, in.path, status, d)
						if !ok || got != want {
							t.Fatalf("json=%v %v %q %q %d %v:\n got %q (written: %v)\nwant %q", json, at, in.method, in.path, status, d, got, ok, want)
						}
					}
				}
			}
		}
	}

	// Left to slog: anything slog might quote or escape, and years JSON
	// cannot hold.
	declined := []struct {
		at           time.Time
		method, path string
	}{
		{base, "POST", ""},
		{base, "", "/api/token"},
		{base, "POST", "/api/to ken"},
		{base, "POST", "/api/token?user_code=x"},
		{base, "POST", `/api/"token"`},
		{base, "POST", `/api/\token`},
		{base, "POST", "/api/token=1"},
		{base, "POST", "/api/tök"},
		{base, "POST", "/api/token\n"},
		{base, "PO<ST", "/"},
		{base, "POST", "/a&b"},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "POST", "/api/token"},
		{time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), "POST", "/api/token"},
	}
	for _, json := range []bool{false, true} {
		for _, in := range declined {
			if got, ok := handLine(json, slog.LevelInfo, in.at, in.method, in.path, 400, time.Millisecond); ok || got != "" {
				t.Errorf("json=%v %v %q %q: written by hand (%v, %q); want it left to slog", json, in.at, in.method, in.path, ok, got)
			}
		}
	}

	// Above Info nothing is written, by hand or by slog, and the line
	// counts as logged.
	if got, ok := handLine(false, slog.LevelWarn, base, "POST", "/api/to ken", 400, 0); !ok || got != "" {
		t.Errorf("level warn: %v %q; want nothing written, and done", ok, got)
	}
}

// FuzzLogRequest: whatever LogRequest writes is slog's line byte for byte;
// when it declines, it has written nothing; and a plain method and path at
// a year RFC 3339 can hold are never declined.
func FuzzLogRequest(f *testing.F) {
	f.Add(false, "POST", "/api/token", 400, int64(1796335842), int64(123456789), 3600, int64(1234567))
	f.Add(true, "GET", "/api/verify", 200, int64(0), int64(0), 0, int64(0))
	f.Add(true, "POST", "/api/tök en", 429, int64(-62135596800), int64(999999999), -34200, int64(-1))
	f.Add(false, "X", "/\x00", 0, int64(253402300799), int64(1), 20700, int64(1<<62))
	f.Fuzz(func(t *testing.T, json bool, method, path string, status int, sec, nsec int64, offset int, d int64) {
		offset %= 24 * 3600
		at := time.Unix(sec, nsec).In(time.FixedZone("Z", offset))
		got, ok := handLine(json, slog.LevelInfo, at, method, path, status, time.Duration(d))
		if !ok {
			if got != "" {
				t.Fatalf("declined but wrote %q", got)
			}
			if y := at.Year(); y >= 0 && y <= 9999 && plainLogString(method) && plainLogString(path) {
				t.Fatalf("declined a plain line: %q %q at %v", method, path, at)
			}
			return
		}
		if want := slogLine(t, json, slog.LevelInfo, at, method, path, status, time.Duration(d)); got != want {
			t.Fatalf("\n got %q\nwant %q", got, want)
		}
	})
}

// TestLoggerWritesAccessLineByHand: the Logger main.go builds (two
// writers, so split by level; one writer; text and JSON) has LogRequest,
// writes the line to the info writer only, and a Logger derived with
// attributes or a group leaves the line to slog (its lines differ).
func TestLoggerWritesAccessLineByHand(t *testing.T) {
	type requestLogger interface {
		LogRequest(ctx context.Context, t time.Time, method, path string, status int, d time.Duration) bool
	}
	at := time.Date(2026, 12, 3, 22, 10, 42, 5_000_000, time.UTC)
	for _, format := range []string{"text", "json"} {
		var info, errs bytes.Buffer
		l := Logger("info", format, &info, &errs)
		rl, ok := l.Handler().(requestLogger)
		if !ok {
			t.Fatalf("%s: the split Logger's handler has no LogRequest", format)
		}
		if !rl.LogRequest(context.Background(), at, "POST", "/api/token", 400, time.Millisecond) {
			t.Fatalf("%s: a plain line was declined", format)
		}
		if want := slogLine(t, format == "json", slog.LevelInfo, at, "POST", "/api/token", 400, time.Millisecond); info.String() != want || errs.Len() != 0 {
			t.Errorf("%s: info %q, errs %q; want info %q", format, info.String(), errs.String(), want)
		}
		for name, derived := range map[string]*slog.Logger{"attributes": l.With("k", "v"), "a group": l.WithGroup("g")} {
			info.Reset()
			if rl, ok := derived.Handler().(requestLogger); ok && (rl.LogRequest(context.Background(), at, "POST", "/api/token", 400, 0) || info.Len() != 0) {
				t.Errorf("%s: a Logger with %s still writes the line by hand: %q", format, name, info.String())
			}
		}

		var one bytes.Buffer
		l = Logger("warn", format, &one, &one)
		rl, ok = l.Handler().(requestLogger)
		if !ok {
			t.Fatalf("%s: the one-writer Logger's handler has no LogRequest", format)
		}
		if !rl.LogRequest(context.Background(), at, "POST", "/api/token", 400, 0) || one.Len() != 0 {
			t.Errorf("%s: at level warn the access line was written: %q", format, one.String())
		}
		// slog's own records and hand-written lines share the writer.
		l = Logger("info", format, &one, &one)
		l.Info("before")
		l.Handler().(requestLogger).LogRequest(context.Background(), at, "GET", "/", 200, 0)
		l.Info("after")
		if lines := strings.Split(strings.TrimSuffix(one.String(), "\n"), "\n"); len(lines) != 3 || !strings.Contains(lines[1], "request") {
			t.Errorf("%s: got %q", format, one.String())
		}
	}
}
