package serve

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Every request writes one access-log line (httpapi's logRequests), and on
// the poll path slog's Logger.LogAttrs is among the largest costs: it takes
// the caller's PC (runtime.Callers, even without AddSource), builds a
// Record, resolves each attribute, checks each string for quoting and
// formats through a pooled handler state. lineHandler is the handler Logger
// returns: slog's own TextHandler or JSONHandler, plus LogRequest, which
// writes that one line by hand — the very bytes slog would write — when
// that is plain to see (TestLogRequestIsSlog and FuzzLogRequest compare the
// two), and otherwise declines so the caller logs through slog.

// lineHandler is slog's handler h (text or JSON, options opts) with the
// access line written by hand. Both write through w, one Write per line,
// so lines written either way never interleave.
type lineHandler struct {
	slog.Handler
	w     *lockedWriter
	json  bool
	level slog.Leveler
}

// newLineHandler is slog's text or JSON handler on w with level as its
// only option (the options Logger sets; LogRequest relies on it: no
// ReplaceAttr, no AddSource).
func newLineHandler(w io.Writer, json bool, level slog.Leveler) *lineHandler {
	lw := &lockedWriter{w: w}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if json {
		h = slog.NewJSONHandler(lw, opts)
	} else {
		h = slog.NewTextHandler(lw, opts)
	}
	return &lineHandler{Handler: h, w: lw, json: json, level: level}
}

// WithAttrs and WithGroup return slog's handler as is: attributes or a
// group change the line, so the hand-written one no longer applies (the
// returned handler has no LogRequest).
func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.Handler.WithAttrs(as) }
func (h *lineHandler) WithGroup(name string) slog.Handler    { return h.Handler.WithGroup(name) }

// LogRequest writes the record Logger.LogAttrs(ctx, slog.LevelInfo,
// "request", method, path, status, duration) would write at time t, as
// slog.String, slog.String, slog.Int and slog.Duration attributes. It
// reports false, having written nothing, when it cannot be sure of
// writing slog's bytes: a method or path with a character slog might quote
// or escape (or empty), or a year outside 0–9999. A level above Info
// writes nothing, as slog does.
func (h *lineHandler) LogRequest(ctx context.Context, t time.Time, method, path string, status int, d time.Duration) bool {
	if !h.Handler.Enabled(ctx, slog.LevelInfo) {
		return true
	}
	if y := t.Year(); y < 0 || y > 9999 || !plainLogString(method) || !plainLogString(path) {
		return false
	}
	bp := lineBufs.Get().(*[]byte)
	b := (*bp)[:0]
	t = t.Round(0) // as slog: no monotonic reading
	if h.json {
		b = append(b, `{"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"INFO","msg":"request","method":"`...)
		b = append(b, method...)
		b = append(b, `","path":"`...)
		b = append(b, path...)
		b = append(b, `","status":`...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, int64(d), 10)
		b = append(b, "}\n"...)
	} else {
		b = append(b, "time="...)
		b = appendMillis(b, t)
		b = append(b, " level=INFO msg=request method="...)
		b = append(b, method...)
		b = append(b, " path="...)
		b = append(b, path...)
		b = append(b, " status="...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, " duration="...)
		b = append(b, d.String()...)
		b = append(b, '\n')
	}
	_, _ = h.w.Write(b) // slog's Logger drops a handler's error too
	if cap(b) <= 4<<10 {
		*bp = b
		lineBufs.Put(bp)
	}
	return true
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// appendMillis appends t as slog's TextHandler writes a record's time:
// RFC 3339 with exactly three digits of milliseconds, truncated. The
// RFC3339Nano layout is the formatter's fast path; it trims trailing
// zeros, so a tenth of a millisecond is added to the truncated time and
// the fourth digit dropped.
func appendMillis(b []byte, t time.Time) []byte {
	const digits = len("2006-01-02T15:04:05.000")
	n := len(b)
	b = t.Truncate(time.Millisecond).Add(100*time.Microsecond).AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+digits], b[n+digits+1:]...)
}

// plainLogString reports whether s is written by slog's text and JSON
// handlers as it is: not empty, and only letters, digits and "/-._~"
// (neither quoted in text nor escaped in JSON). Methods and the paths
// devices use are; anything else takes slog's own path.
func plainLogString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !plainLogByte[s[i]] {
			return false
		}
	}
	return true
}

var plainLogByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "/-._~" {
		t[c] = true
	}
	return t
}()

// lockedWriter serializes Writes: slog's handler and LogRequest share it.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
