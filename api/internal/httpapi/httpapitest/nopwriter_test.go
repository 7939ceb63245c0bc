package httpapitest

import (
	"net/http"
	"testing"
)

func TestNopWriter(t *testing.T) {
	tests := []struct {
		name       string
		keepBody   bool
		header     int // 0: no WriteHeader call
		wantStatus int
	}{
		{"body kept, explicit status", true, http.StatusBadRequest, http.StatusBadRequest},
		{"body kept, implicit 200", true, 0, http.StatusOK},
		{"body dropped", false, http.StatusFound, http.StatusFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewNopWriter(tt.keepBody)
			w.Header().Set("Cache-Control", "no-store")
			if tt.header != 0 {
				w.WriteHeader(tt.header)
			}
			n, err := w.Write([]byte("abc"))
			if n != 3 || err != nil {
				t.Fatalf("Write = %d, %v; want 3, nil", n, err)
			}
			if w.Status != tt.wantStatus {
				t.Errorf("Status = %d, want %d", w.Status, tt.wantStatus)
			}
			if got := w.H.Get("Cache-Control"); got != "no-store" {
				t.Errorf("header kept: %q", got)
			}
			if tt.keepBody && w.Body.String() != "abc" {
				t.Errorf("Body = %q, want abc", w.Body.String())
			}
			if !tt.keepBody && w.Body != nil {
				t.Error("a body was kept when not asked for")
			}
		})
	}
}
