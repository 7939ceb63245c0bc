package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The Flex Consumption mode: customHandler.enableProxyingHttpRequest.
// DefaultHttpWorkerService.InvokeAsync sends an HTTP function's request to
// ProxyInvocationRequest, which adds its headers (AddProxyingHeaders) and
// has DefaultHttpProxyService.StartForwarding pass the request through
// YARP's IHttpForwarder.SendAsync with the default transformer
// (HttpTransformer.Default = TransformBuilder.CreateTransformer: copy
// headers, suppress the original Host, X-Forwarded-* with action Set).
// FunctionInvocationMiddleware then writes nothing more
// (ScriptConstants.HttpProxyingEnabled): the answer is YARP's copy of the
// worker's.

// hopByHop is YARP's RequestUtilities._headersToExclude, skipped on the
// request (ShouldSkipRequestHeader) and on the response
// (ShouldSkipResponseHeader).
var hopByHop = map[string]bool{
	"Connection": true, "Transfer-Encoding": true, "Keep-Alive": true, "Upgrade": true,
	"Proxy-Connection": true, "Proxy-Authenticate": true, "Proxy-Authentication-Info": true,
	"Proxy-Authorization": true, "Proxy-Features": true, "Proxy-Instruction": true,
	"Security-Scheme": true, "Alpn": true, "Close": true, "Http2-Settings": true,
	"Upgrade-Insecure-Requests": true, "Te": true, "Alt-Svc": true,
}

func isHopByHop(name string) bool { return hopByHop[http.CanonicalHeaderKey(name)] }

// proxyRequest builds the request YARP sends to worker for in.
func proxyRequest(in *http.Request, worker *url.URL, inv invocation) (*http.Request, error) {
	// RequestUtilities.MakeDestinationAddress: the destination prefix, the
	// request's path, and its query string exactly as received (repeated
	// keys stay repeated, nothing is re-encoded).
	target := worker.Scheme + "://" + worker.Host + in.URL.EscapedPath()
	if in.URL.RawQuery != "" {
		target += "?" + in.URL.RawQuery
	}
	// HttpForwarder.SetupRequestBodyCopy: a body is streamed when the
	// request is chunked or has Content-Length > 0 (Kestrel's
	// IHttpRequestBodyDetectionFeature.CanHaveBody). Unlike the classic
	// mode, a chunked body reaches the handler, still chunked.
	chunked := slices.ContainsFunc(in.TransferEncoding, func(te string) bool { return strings.EqualFold(te, "chunked") })
	var body io.Reader
	if chunked || in.ContentLength > 0 {
		body = in.Body
	}
	out, err := http.NewRequestWithContext(in.Context(), in.Method, target, body)
	if err != nil {
		return nil, err
	}
	if chunked {
		out.ContentLength = -1
	} else if in.ContentLength > 0 {
		out.ContentLength = in.ContentLength
	}
	// HttpTransformer.TransformRequestAsync: every request header but the
	// hop-by-hop ones; content headers go on the body, or on an
	// EmptyHttpContent when there is none (RequestUtilities.AddHeader), so
	// Content-Type passes either way.
	copyHeaders(out.Header, in.Header, func(k string) bool { return isHopByHop(k) || strings.HasPrefix(k, ":") })
	// RequestHeaderOriginalHostTransform(false): the original Host is not
	// sent; HttpClient sends the destination's, 127.0.0.1:<port>.
	out.Host = worker.Host
	// AddXForwarded(ForwardedTransformActions.Set): each X-Forwarded-*
	// header is replaced by what this hop saw, and Forwarded is removed
	// (TransformHelpers.RemoveForwardedHeader).
	out.Header.Del("Forwarded")
	// RequestHeaderXForwardedForTransform: the connection's remote address,
	// without its port; whatever the client sent is dropped.
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		out.Header.Set("X-Forwarded-For", ip)
	} else {
		out.Header.Del("X-Forwarded-For")
	}
	// RequestHeaderXForwardedProtoTransform: the request's scheme, which
	// AppServiceHeaderFixupMiddleware takes from an incoming
	// X-Forwarded-Proto; this stand-in itself listens on plain HTTP.
	scheme := "http"
	if p := strings.TrimSpace(strings.Split(in.Header.Get("X-Forwarded-Proto"), ",")[0]); p != "" {
		scheme = p
	}
	out.Header.Set("X-Forwarded-Proto", scheme)
	// RequestHeaderXForwardedHostTransform: the original Host
	// (AppServiceHeaderFixupMiddleware puts DISGUISED-HOST there first).
	fwdHost := in.Host
	if d := in.Header.Get("Disguised-Host"); d != "" {
		fwdHost = d
	}
	out.Header.Set("X-Forwarded-Host", fwdHost)
	// RequestHeaderXForwardedPrefixTransform: the PathBase, empty here, so
	// the header is removed.
	out.Header.Del("X-Forwarded-Prefix")
	// DefaultHttpWorkerService.AddProxyingHeaders overwrites the version and
	// invocation id headers; DefaultHttpProxyService.StartForwarding sets
	// x-ms-invocation-id (ScriptConstants.HttpProxyCorrelationHeader). The
	// User-Agent passes unchanged.
	out.Header.Set("X-Azure-Functions-HostVersion", inv.version)
	out.Header.Set("X-Azure-Functions-InvocationId", inv.id)
	out.Header.Set("X-Ms-Invocation-Id", inv.id)
	return out, nil
}

// writeProxiedResponse is HttpForwarder's copy of the worker's answer: the
// status, every header but the hop-by-hop ones
// (HttpTransformer.TransformResponseAsync, CopyResponseHeaders), without
// a "Content-Length: 0" on a status that has no body (IsBodylessStatusCode:
// 1xx, 204, 205), then the body, streamed as it comes (response buffering
// is disabled).
func writeProxiedResponse(w http.ResponseWriter, resp *http.Response) {
	dst := w.Header()
	copyHeaders(dst, resp.Header, isHopByHop)
	if s := resp.StatusCode; (s < 200 || s == http.StatusNoContent || s == http.StatusResetContent) && dst.Get("Content-Length") == "0" {
		dst.Del("Content-Length")
	}
	w.WriteHeader(resp.StatusCode)
	f, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if f != nil {
				f.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
