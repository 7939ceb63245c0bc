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
	switch h.mode {
	case modeFlex:
		h.proxy(w, r, u, newInvocation())
	default:
		h.forward(w, r, u, newInvocation())
	}
}

// failed answers as the host does when an invocation throws: the
// exception reaches ExceptionMiddleware (src/WebJobs.Script.WebHost/
// Middleware/ExceptionMiddleware.cs), which sets 500 and writes no body.
func failed(w http.ResponseWriter, err error) {
	log.Printf("error: function invocation failed: %v", err)
	w.WriteHeader(http.StatusInternalServerError)
}
