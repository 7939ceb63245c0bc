// Package front is the load balancer in front of several devicegate
// instances in the scale-out test: every request goes to the next instance
// in turn (round robin), so consecutive requests of one flow — the
// device's, the browser's, the provider's redirect back — land on
// different processes, as they may when Azure Functions scales out.
//
// It forwards the way the fronts devicegate is deployed behind do, as far
// as devicegate can tell: the Host header, cookies and redirects pass
// unchanged (a redirect goes back to the browser, it is not followed), and
// the address the request came from is appended to X-Forwarded-For as
// "ip:port", which is the form Azure Static Web Apps writes (SECURITY.md).
// Whatever X-Forwarded-For the client sent stays to the left of that entry,
// so instances configured with DEVICEGATE_TRUSTED_PROXY=true and one hop
// read the entry this front wrote and never one the client chose.
package front

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
)

// Front is a running round-robin reverse proxy.
type Front struct {
	// URL is the front's address, the instances' public URL.
	URL string

	backends []*url.URL
	srv      *http.Server
	proxy    *httputil.ReverseProxy

	mu    sync.Mutex
	next  int
	hits  []int
	trail []Hop
}

// Hop is one forwarded request: its method and path (never the query,
// which can hold a code) and the instance it went to.
type Hop struct {
	Method, Path string
	Instance     int
}

// Start listens on a free loopback port and forwards to backends (base
// URLs such as http://127.0.0.1:8081) in turn.
func Start(backends ...string) (*Front, error) {
	f := &Front{hits: make([]int, len(backends))}
	for _, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			return nil, err
		}
		f.backends = append(f.backends, u)
	}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(f.backends[backendOf(r.In)])
			r.Out.Host = r.In.Host
			// Rewrite drops the inbound X-Forwarded-For; a front that
			// appends keeps what the client sent and adds its own entry.
			xff := r.In.Header.Values("X-Forwarded-For")
			r.Out.Header.Del("X-Forwarded-For")
			for _, v := range xff {
				r.Out.Header.Add("X-Forwarded-For", v)
			}
			r.Out.Header.Add("X-Forwarded-For", r.In.RemoteAddr)
		},
		// Answers pass unchanged: no redirect is followed, no cookie
		// rewritten (httputil.ReverseProxy never does either).
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.URL = "http://" + ln.Addr().String()
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve)}
	go f.srv.Serve(ln)
	return f, nil
}

type backendKey struct{}

// serve picks the next instance and forwards to it.
func (f *Front) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	i := f.next
	f.next = (f.next + 1) % len(f.backends)
	f.hits[i]++
	f.trail = append(f.trail, Hop{r.Method, r.URL.Path, i})
	f.mu.Unlock()
	f.proxy.ServeHTTP(w, r.WithContext(withBackend(r, i)))
}

// Hits returns how many requests each instance was sent, in the order the
// backends were given.
func (f *Front) Hits() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.hits...)
}

// Trail returns every request forwarded so far, in order.
func (f *Front) Trail() []Hop {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Hop(nil), f.trail...)
}

// Close stops the front.
func (f *Front) Close() error { return f.srv.Close() }

// withBackend carries the chosen instance to Rewrite in the request's
// context.
func withBackend(r *http.Request, i int) context.Context {
	return context.WithValue(r.Context(), backendKey{}, i)
}

func backendOf(r *http.Request) int { return r.Context().Value(backendKey{}).(int) }
