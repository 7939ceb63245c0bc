// Package httpapitest holds what tests and benchmarks of the HTTP API
// share across packages. Nothing in the server imports it.
package httpapitest

import (
	"bytes"
	"net/http"
)

// NopWriter is an http.ResponseWriter that keeps the headers and status of
// an answer, and its body only when Body is set — so a benchmark driving the
// router in process sees the router's own allocations, not a recorder's.
type NopWriter struct {
	H      http.Header
	Status int
	Body   *bytes.Buffer
}

// NewNopWriter is a NopWriter that keeps the body when keepBody is set.
func NewNopWriter(keepBody bool) *NopWriter {
	w := &NopWriter{H: http.Header{}}
	if keepBody {
		w.Body = &bytes.Buffer{}
	}
	return w
}

func (w *NopWriter) Header() http.Header  { return w.H }
func (w *NopWriter) WriteHeader(code int) { w.Status = code }

// Write keeps p when Body is set; a Write before WriteHeader means 200,
// as net/http has it.
func (w *NopWriter) Write(p []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	if w.Body != nil {
		return w.Body.Write(p)
	}
	return len(p), nil
}
