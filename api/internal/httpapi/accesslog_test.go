package httpapi_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestAccessLogLine: every request logs one line with its method, path (no
// query), status and duration, whether serve's logger writes it by hand (a
// plain path) or leaves it to slog (a path slog quotes); serve's
// TestLogRequestIsSlog pins the two to the same bytes.
func TestAccessLogLine(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	h.logs.Reset()
	if res := h.poll("tv", g.DeviceCode); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("poll: %d", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/api/no%20such?user_code=x", nil)
	if res := h.do(req, h.browser); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d", res.StatusCode)
	}
	var lines []string
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, "msg=request ") {
			lines = append(lines, l)
		}
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\S* level=INFO msg=request method=POST path=/api/token status=400 duration=[0-9.]+[µnm]?s$`),
		regexp.MustCompile(`^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\S* level=INFO msg=request method=GET path="/api/no such" status=404 duration=[0-9.]+[µnm]?s$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("access lines %q; want %d", lines, len(want))
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %q does not match %s", lines[i], re)
		}
	}
}
