package oauth

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
)

func TestWithDescriptionCopies(t *testing.T) {
	d := ErrInvalidGrant.WithDescription("unknown device_code")
	if ErrInvalidGrant.Description != "" {
		t.Fatal("WithDescription changed the sentinel")
	}
	if !errors.Is(d, ErrInvalidGrant) || errors.Is(d, ErrInvalidClient) {
		t.Error("errors.Is does not match on the code")
	}
	if !errors.Is(fmt.Errorf("wrapped: %w", d), ErrInvalidGrant) {
		t.Error("a wrapped error does not match")
	}
	if d.Error() != "invalid_grant: unknown device_code" || ErrSlowDown.Error() != "slow_down" {
		t.Errorf("Error() = %q", d.Error())
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		err    Error
		status int
		body   string
	}{
		{ErrInvalidClient.WithDescription("unknown client"), 401, `{"error":"invalid_client","error_description":"unknown client"}` + "\n"},
		{ErrAuthorizationPending, 400, `{"error":"authorization_pending"}` + "\n"},
		{Error{Code: "x"}, 400, `{"error":"x"}` + "\n"},
		{ErrTemporarilyUnavailable, 503, `{"error":"temporarily_unavailable"}` + "\n"},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		WriteError(rec, tc.err)
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Errorf("%v: %d %s", tc.err, rec.Code, rec.Body)
		}
		h := rec.Header()
		if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" {
			t.Errorf("%v: headers %v", tc.err, h)
		}
	}
}

func TestWriteJSONUnencodable(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, 200, map[string]any{"f": func() {}})
	if rec.Code != 500 || rec.Body.String() != `{"error":"server_error"}`+"\n" {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}
