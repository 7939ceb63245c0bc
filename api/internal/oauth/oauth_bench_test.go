package oauth_test

import (
	"net/http"
	"testing"

	"github.com/devicegate/devicegate/api/internal/oauth"
)

// discardWriter keeps only the headers, so the benchmark sees WriteError's
// own cost rather than a recorder's.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkWriteError writes the answer of a pending poll, the most
// frequent answer devicegate gives.
func BenchmarkWriteError(b *testing.B) {
	e := oauth.ErrAuthorizationPending.WithDescription("the user has not finished yet")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		oauth.WriteError(w, e)
	}
}
