package serve

import (
	"context"
	"log/slog"
	"time"
)

// levelSplit sends records below Warn to one handler and the rest to
// another. Under the Azure Functions host the handler's stderr is logged as
// errors whatever it says (azure-functions-host
// HttpWorkerDescription.UseStdErrorStreamForErrorsOnly) and stdout as
// information, so routine lines go to stdout and only warnings and errors to
// stderr: Application Insights then counts real errors, and a start-up
// failure stands out.
type levelSplit struct {
	low, high slog.Handler
}

func (s levelSplit) Enabled(ctx context.Context, l slog.Level) bool {
	if l < slog.LevelWarn {
		return s.low.Enabled(ctx, l)
	}
	return s.high.Enabled(ctx, l)
}

func (s levelSplit) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return s.low.Handle(ctx, r)
	}
	return s.high.Handle(ctx, r)
}

func (s levelSplit) WithAttrs(as []slog.Attr) slog.Handler {
	return levelSplit{s.low.WithAttrs(as), s.high.WithAttrs(as)}
}

func (s levelSplit) WithGroup(name string) slog.Handler {
	return levelSplit{s.low.WithGroup(name), s.high.WithGroup(name)}
}

// LogRequest is the low handler's (an access line is at Info, below Warn),
// when it has one; see lineHandler.LogRequest.
func (s levelSplit) LogRequest(ctx context.Context, t time.Time, method, path string, status int, d time.Duration) bool {
	l, ok := s.low.(*lineHandler)
	return ok && l.LogRequest(ctx, t, method, path, status, d)
}
