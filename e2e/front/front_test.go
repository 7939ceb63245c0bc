package front

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestRoundRobinAndForwarding: requests go to the instances in turn; the
// client's X-Forwarded-For stays and the front appends the address the
// request came from as ip:port; Host, Set-Cookie and redirects pass as
// they are.
func TestRoundRobinAndForwarding(t *testing.T) {
	type seen struct {
		name, host string
		xff        []string
	}
	got := make(chan seen, 10)
	var backends []string
	for _, name := range []string{"a", "b", "c"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- seen{name, r.Host, r.Header.Values("X-Forwarded-For")}
			http.SetCookie(w, &http.Cookie{Name: "c", Value: name})
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}))
		defer srv.Close()
		backends = append(backends, srv.URL)
	}
	f, err := Start(backends...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var order []string
	for i := range 4 {
		req, _ := http.NewRequest(http.MethodGet, f.URL+"/x", nil)
		if i == 1 {
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		s := <-got
		order = append(order, s.name)
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/elsewhere" || !strings.HasPrefix(res.Header.Get("Set-Cookie"), "c="+s.name) {
			t.Errorf("answer %d: %d, Location %q, Set-Cookie %q", i, res.StatusCode, res.Header.Get("Location"), res.Header.Get("Set-Cookie"))
		}
		if s.host != strings.TrimPrefix(f.URL, "http://") {
			t.Errorf("Host %q reached the instance, want the front's", s.host)
		}
		last := s.xff[len(s.xff)-1]
		if !strings.HasPrefix(last, "127.0.0.1:") {
			t.Errorf("X-Forwarded-For %q: the front's entry is not the client's ip:port", s.xff)
		}
		if i == 1 && (len(s.xff) != 2 || s.xff[0] != "203.0.113.7") {
			t.Errorf("X-Forwarded-For %q: the client's own entry was not kept to the left", s.xff)
		}
	}
	if want := []string{"a", "b", "c", "a"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if h := f.Hits(); !slices.Equal(h, []int{2, 1, 1}) {
		t.Errorf("hits %v", h)
	}
}
