package oauth

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// WriteError appends its JSON by hand rather than through encoding/json;
// these tests hold it to exactly what the generic WriteJSON writes —
// status, every header, every byte of the body — so the two cannot drift.

// writeErrorCases are the answers the poll path sends most (the
// descriptions deviceflow and httpapi use), every sentinel, and strings
// that exercise each escaping rule of encoding/json.
func writeErrorCases() []Error {
	cases := []Error{
		ErrAuthorizationPending.WithDescription("the user has not finished yet"),
		ErrSlowDown.WithDescription("polling too fast; wait 10 seconds between polls"),
		{Code: "slow_down", Status: http.StatusTooManyRequests, Description: "too many polls of unknown device codes from this address; retry after 60 seconds"},
		ErrInvalidGrant.WithDescription("unknown or already used device_code"),
		ErrExpiredToken.WithDescription("the device_code has expired; start again"),
		ErrInvalidRequest.WithDescription(`parameter "a\"b" is given more than once`),
		{Code: "x"},
		{Code: "html <b>&</b>", Description: "<script>alert('x')</script> & more"},
		{Code: "ctl", Description: "tab\there\nnewline\rcr\bbs\fff\x00nul\x1fus\x7fdel"},
		{Code: "quote", Description: `back\slash "quoted" /slash`},
		{Code: "utf8", Description: "Grüße — 日本語 😀 \u2028 line \u2029 para"},
		{Code: "bad", Description: "invalid \xff\xfe utf-8 \xc3 cut \xed\xa0\x80 surrogate"},
	}
	for _, e := range []Error{ErrInvalidRequest, ErrInvalidClient, ErrInvalidGrant, ErrUnauthorizedClient,
		ErrUnsupportedGrantType, ErrInvalidScope, ErrAuthorizationPending, ErrSlowDown, ErrAccessDenied,
		ErrExpiredToken, ErrServerError, ErrTemporarilyUnavailable} {
		cases = append(cases, e, e.WithDescription("described"))
	}
	return cases
}

func TestWriteErrorIsWriteJSON(t *testing.T) {
	for _, e := range writeErrorCases() {
		assertSameAnswer(t, e)
	}
}

func assertSameAnswer(t *testing.T, e Error) {
	t.Helper()
	got := httptest.NewRecorder()
	got.Header().Set("X-Before", "kept")
	WriteError(got, e)
	want := httptest.NewRecorder()
	want.Header().Set("X-Before", "kept")
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	WriteJSON(want, status, body{Error: e.Code, Description: e.Description})
	if got.Code != want.Code || got.Body.String() != want.Body.String() {
		t.Errorf("%#v:\nWriteError %d %q\nWriteJSON  %d %q", e, got.Code, got.Body, want.Code, want.Body)
	}
	gh, wh := got.Result().Header, want.Result().Header
	if !slices.Equal(slices.Sorted(maps.Keys(gh)), slices.Sorted(maps.Keys(wh))) {
		t.Errorf("%#v: headers %v, want %v", e, gh, wh)
	}
	for k := range wh {
		if !slices.Equal(gh[k], wh[k]) {
			t.Errorf("%#v: header %s = %q, want %q", e, k, gh[k], wh[k])
		}
	}
	if wh.Get("Cache-Control") != "no-store" {
		t.Errorf("generic answer has Cache-Control %q", wh.Get("Cache-Control"))
	}
}

// FuzzWriteError compares WriteError with WriteJSON for any code and
// description, and appendJSONString with json.Marshal for any string.
func FuzzWriteError(f *testing.F) {
	for _, e := range writeErrorCases() {
		f.Add(e.Code, e.Description)
	}
	f.Add("", "")
	f.Add(strings.Repeat("\u2028<", 40), "\x80\xbf\xf4\x90\x80\x80")
	f.Fuzz(func(t *testing.T, code, desc string) {
		for _, s := range []string{code, desc} {
			want, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendJSONString(nil, s); string(got) != string(want) {
				t.Fatalf("appendJSONString(%q) = %s, json.Marshal: %s", s, got, want)
			}
		}
		assertSameAnswer(t, Error{Code: code, Description: desc, Status: http.StatusBadRequest})
		// authorization_pending's body is kept: written twice, from the
		// encoder and then from the cache, both times WriteJSON's bytes,
		// whatever the status.
		for range 2 {
			assertSameAnswer(t, Error{Code: pendingCode, Description: desc, Status: http.StatusBadRequest})
		}
		assertSameAnswer(t, Error{Code: pendingCode, Description: code, Status: http.StatusTooManyRequests})
	})
}

// TestPendingBodyKept: the pending answer's body is encoded once and then
// reused, but only for exactly that description: others (and other codes
// with that description) are encoded afresh, every answer being
// WriteJSON's, also while many goroutines write different ones at once.
func TestPendingBodyKept(t *testing.T) {
	pending := ErrAuthorizationPending.WithDescription("the user has not finished yet")
	assertSameAnswer(t, pending)
	if c := pendingBody.Load(); c == nil || c.desc != pending.Description {
		t.Fatalf("the pending body was not kept: %+v", c)
	}
	kept := pendingBody.Load()
	assertSameAnswer(t, pending)
	if pendingBody.Load() != kept {
		t.Error("the kept pending body was encoded again")
	}
	for _, e := range []Error{
		ErrAuthorizationPending,
		ErrAuthorizationPending.WithDescription("the user has not finished yet."),
		ErrAuthorizationPending.WithDescription("the user has not finished ye"),
		ErrAuthorizationPending.WithDescription("<the user> & \"friends\"\u2028"),
		ErrSlowDown.WithDescription("the user has not finished yet"),
		{Code: pendingCode, Description: "the user has not finished yet", Status: http.StatusServiceUnavailable},
		pending,
	} {
		assertSameAnswer(t, e)
	}
	if c := pendingBody.Load(); c == nil || c.desc != pending.Description {
		t.Errorf("after the slow_down answer the kept body is %+v", c)
	}

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := ErrAuthorizationPending.WithDescription("pending " + strconv.Itoa(g%3))
			want := `{"error":"authorization_pending","error_description":"pending ` + strconv.Itoa(g%3) + `"}` + "\n"
			for range 200 {
				rec := httptest.NewRecorder()
				WriteError(rec, e)
				if rec.Body.String() != want || rec.Code != http.StatusBadRequest {
					t.Errorf("got %d %q, want %q", rec.Code, rec.Body, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
