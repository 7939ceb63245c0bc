package serve

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRunShutsDownGracefully: when the context ends (as on SIGTERM), a
// request in flight still gets its answer, and Run returns cleanly.
func TestRunShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The request stays in flight until the test has seen the shutdown
	// begin: events ordered by channels, not by a sleep.
	started, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background())
	// The log is read only once Run has returned: its lines are written
	// by Run itself, before (the server logs nothing here).
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, ln, slow, slog.New(slog.NewTextHandler(&logs, nil)), func() {})
	}()
	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
	// Shutdown has begun once the listener is closed: new connections are
	// refused while the request is still in flight. The budget only guards
	// against hanging.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("the listener still accepts a minute after the context ended")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a request was in flight", err)
	default:
	}
	close(release)
	if body := <-got; body != "finished" {
		t.Errorf("in-flight request got %q", body)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Error("shutdown not logged")
	}
}

// TestLoggerSplitsByLevel: routine records go to info, warnings and errors
// to errs, with attributes and groups carried to both.
func TestLoggerSplitsByLevel(t *testing.T) {
	var info, errs bytes.Buffer
	l := Logger("info", "json", &info, &errs).With("instance", "a").WithGroup("g")
	l.Debug("hidden")
	l.Info("routine", "k", 1)
	l.Warn("odd")
	l.Error("broken")
	if got := info.String(); !strings.Contains(got, `"msg":"routine","instance":"a","g":{"k":1}`) || strings.Contains(got, "odd") || strings.Contains(got, "hidden") {
		t.Errorf("info got %q", got)
	}
	if got := errs.String(); !strings.Contains(got, `"msg":"odd"`) || !strings.Contains(got, `"msg":"broken"`) || strings.Contains(got, "routine") {
		t.Errorf("errs got %q", got)
	}
}

// TestLoggerOneWriter: with one writer for both, every level reaches it,
// in text unless json is asked for, at the configured level.
func TestLoggerOneWriter(t *testing.T) {
	var w bytes.Buffer
	l := Logger("warn", "text", &w, &w)
	l.Info("routine")
	l.Warn("odd")
	if got := w.String(); strings.Contains(got, "routine") || !strings.Contains(got, `level=WARN msg=odd`) {
		t.Errorf("got %q", got)
	}
}
