// Package serve runs devicegate's HTTP server: the logger it writes to
// (routine lines and problems apart, as the Functions host reads them), the
// server's limits against slow clients, and a graceful stop. It knows no
// route; the handler comes from httpapi.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Logger logs at level (debug, info, warn or error; info when unreadable)
// in format (json, else text), writing records below Warn to info and the
// others to errs (see levelSplit). Its handler also writes the access log's
// line by hand (LogRequest, see lineHandler).
func Logger(level, format string, info, errs io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	handler := func(w io.Writer) *lineHandler { return newLineHandler(w, format == "json", l) }
	if info == errs {
		return slog.New(handler(errs))
	}
	return slog.New(levelSplit{low: handler(info), high: handler(errs)})
}

// Listen listens on addr (TCP); an address in use is explained with how
// to choose another.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listening on %s: the address is already in use (another devicegate?); choose another with -addr 127.0.0.1:8081 or DEVICEGATE_ADDR", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return ln, nil
}

// LoopbackURL is how this process reaches itself on the listener with
// address a: the demo provider's token endpoint is called server to
// server, which must not depend on the public URL (behind Static Web Apps
// that URL serves only /api).
func LoopbackURL(a net.Addr) string {
	port := "80"
	if ta, ok := a.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
	}
	return "http://127.0.0.1:" + port
}

// NewServer is the HTTP server Run runs: its timeouts keep slow clients
// from holding connections (a header must arrive within 5 s, a whole
// request within 15 s), and headers are capped at 32 KiB.
func NewServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      40 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Run serves h on ln until ctx ends or SIGINT/SIGTERM arrives, then lets
// requests in flight finish; ready runs once the server accepts. The
// timeouts keep slow clients from holding connections: Azure cuts requests
// at 45 s anyway.
func Run(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger, ready func()) error {
	srv := NewServer(h, logger)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ready()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down; letting requests in flight finish")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
