package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// hostVersion is what the stand-in sends where the host sends its own
// version (ScriptHost.Version): the release whose source the rules were
// read from.
const hostVersion = "4.1037.0"

// invocation is what the host adds to each request it passes on: its
// version and the invocation's id.
type invocation struct {
	id      string
	version string
}

func newInvocation() invocation {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return invocation{id: fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), version: hostVersion}
}

// host answers requests as the Functions host does in one mode.
type host struct {
	mode   string
	routes []route
	target *atomic.Pointer[url.URL]
	client *http.Client
}

func newHost(mode string, routes []route, target *atomic.Pointer[url.URL]) *host {
	return &host{mode: mode, routes: routes, target: target, client: workerClient()}
}

// workerClient is the host's HTTP client to the worker, in both modes:
//   - no redirect is followed: DefaultHttpWorkerService.CreateHttpClient sets
//     AllowAutoRedirect = !EnableForwardingHttpRequest (since 4.10.3), and
//     DefaultHttpProxyService's SocketsHttpHandler has AllowAutoRedirect =
//     false; the worker's 3xx and Location reach the client;
//   - no cookie container: UseCookies = false in both (since 4.19), so
//     Set-Cookie passes as a header and the Cookie header as sent;
//   - no automatic decompression and no Accept-Encoding of its own
//     (HttpClientHandler and SocketsHttpHandler default to
//     DecompressionMethods.None), which Go's transport would otherwise add.
func workerClient() *http.Client {
	return &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second},
	}
}

func (h *host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// No function route takes the request: nothing in the host's pipeline
	// writes an answer (FunctionInvocationMiddleware acts only on a matched
	// function), so Kestrel sends 404 with no body.
	if match(h.routes, r.URL.Path, r.Method) == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	u := h.target.Load()
	if u == nil {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "Function host is not running.")
		return
	}
	inv := newInvocation()
	switch h.mode {
	case modeFlex:
		h.pass(w, r, func(r *http.Request) (*http.Request, error) { return proxyRequest(r, u, inv) }, writeProxiedResponse)
	default:
		h.pass(w, r, func(r *http.Request) (*http.Request, error) { return forwardRequest(r, u, inv) }, writeForwardedResponse)
	}
}

// pass is one invocation in either mode: rebuild makes the request the
// host sends the worker (forwardRequest, proxyRequest), and respond writes
// the worker's answer as that mode does (writeForwardedResponse,
// writeProxiedResponse). A request that cannot be rebuilt, or a worker that
// does not answer, fails the invocation: in the classic mode HttpClient's
// exception reaches the host's pipeline; in the Flex mode the forwarding
// fails (EnsureSuccessfulForwardingAsync throws HttpForwardingException);
// either way ExceptionMiddleware answers 500 (failed).
func (h *host) pass(w http.ResponseWriter, r *http.Request, rebuild func(*http.Request) (*http.Request, error), respond func(http.ResponseWriter, *http.Response)) {
	out, err := rebuild(r)
	if err != nil {
		failed(w, err)
		return
	}
	resp, err := h.client.Do(out)
	if err != nil {
		failed(w, err)
		return
	}
	defer resp.Body.Close()
	respond(w, resp)
}

// copyHeaders appends every header of src to dst but those skip names
// (skip nil: none); each mode's rules say what it skips, on the request
// (contentHeaders; hopByHop) and on the answer (nothing; hopByHop).
func copyHeaders(dst, src http.Header, skip func(name string) bool) {
	for k, vs := range src {
		if skip != nil && skip(k) {
			continue
		}
		dst[k] = append(dst[k], vs...)
	}
}

// failed answers as the host does when an invocation throws: the
// exception reaches ExceptionMiddleware (src/WebJobs.Script.WebHost/
// Middleware/ExceptionMiddleware.cs), which sets 500 and writes no body.
func failed(w http.ResponseWriter, err error) {
	log.Printf("error: function invocation failed: %v", err)
	w.WriteHeader(http.StatusInternalServerError)
}
