package main

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The classic mode: customHandler.enableForwardingHttpRequest, as Static Web
// Apps managed functions run devicegate. DefaultHttpWorkerService.
// ProcessHttpInAndOutInvocationRequest rebuilds the request with
// HttpRequestExtensions.ToHttpRequestMessage (src/WebJobs.Script/Extensions/
// HttpRequestExtensions.cs), sends it with its HttpClient and hands the
// HttpResponseMessage to HttpBinding.CreateObjectResult, whose
// HttpResponseMessageOutputFormatter writes it to the client.

// contentHeaders are the headers .NET files under HttpContentHeaders
// (System.Net.Http KnownHeaders, HttpHeaderType.Content; YARP's
// RequestUtilities._contentHeaders lists the same eleven).
// ToHttpRequestMessage copies every request header with
// httpRequest.Headers.TryAddWithoutValidation, which refuses these on a
// request's own headers: they are dropped, and only Content-Length and
// Content-Type come back, on the body, when a body is copied.
var contentHeaders = map[string]bool{
	"Allow": true, "Content-Disposition": true, "Content-Encoding": true, "Content-Language": true,
	"Content-Length": true, "Content-Location": true, "Content-Md5": true, "Content-Range": true,
	"Content-Type": true, "Expires": true, "Last-Modified": true,
}

// errChunkedNoContent is the host's HttpClient refusing the rebuilt request.
var errChunkedNoContent = errors.New("'Transfer-Encoding: chunked' header can not be used when content object is not specified")

// forwardRequest rebuilds in as the classic host does, addressed to worker.
func forwardRequest(in *http.Request, worker *url.URL, inv invocation) (*http.Request, error) {
	// A chunked body has no Content-Length, so ToHttpRequestMessage copies
	// no body; but it copies the Transfer-Encoding: chunked header (Kestrel
	// keeps it among the request headers: HttpRequestHeaders
	// .HeaderTransferEncoding, read by Http1MessageBody.For), and
	// HttpClient then refuses a chunked request without content
	// (dotnet/runtime SocketsHttpHandler.ValidateAndNormalizeRequest:
	// net_http_chunked_not_allowed_with_empty_content). The invocation
	// throws; the client gets the host's 500 and the handler nothing.
	if slices.ContainsFunc(in.TransferEncoding, func(te string) bool { return strings.EqualFold(te, "chunked") }) {
		return nil, errChunkedNoContent
	}
	// DefaultHttpWorkerService.GetPathValue: with enableForwardingHttpRequest
	// the path is the request's own absolute path (route prefix included),
	// BuildAndGetUri puts it after http://127.0.0.1:<port>.
	target := worker.Scheme + "://" + worker.Host + in.URL.EscapedPath() + forwardQuery(in.URL.RawQuery)

	// Copy body: only "if (request.ContentLength != null &&
	// request.ContentLength > 0)", with Content-Length and Content-Type.
	var body io.Reader
	if in.ContentLength > 0 {
		body = in.Body
	}
	out, err := http.NewRequestWithContext(in.Context(), in.Method, target, body)
	if err != nil {
		return nil, err
	}
	copyHeaders(out.Header, in.Header, func(k string) bool { return contentHeaders[http.CanonicalHeaderKey(k)] })
	if in.ContentLength > 0 {
		out.ContentLength = in.ContentLength
		if ct := in.Header.Get("Content-Type"); ct != "" {
			out.Header.Set("Content-Type", ct)
		}
	}
	// Host is an ordinary request header to ToHttpRequestMessage: copied,
	// and HttpClient sends it instead of the worker's address.
	out.Host = in.Host
	addInvocationHeaders(out.Header, inv)
	return out, nil
}

// addInvocationHeaders is DefaultHttpWorkerService.AddHeaders:
// X-Azure-Functions-HostVersion and X-Azure-Functions-InvocationId
// (HttpWorkerConstants), and the host's product token appended to the
// client's User-Agent (Headers.UserAgent.ParseAdd).
func addInvocationHeaders(h http.Header, inv invocation) {
	h.Set("X-Azure-Functions-HostVersion", inv.version)
	h.Set("X-Azure-Functions-InvocationId", inv.id)
	ua := "Azure-Functions-Host/" + inv.version
	if old := h.Get("User-Agent"); old != "" {
		ua = old + " " + ua
	}
	h.Set("User-Agent", ua)
}

// forwardQuery is the query ToHttpRequestMessage sends:
// QueryHelpers.AddQueryString(uri, request.GetQueryCollectionAsDictionary()).
// ASP.NET Core parses the query into a collection whose keys compare without
// regard to case (QueryHelpers.ParseNullableQuery, KeyValueAccumulator):
// empty pieces are skipped, a piece without "=" is a key with an empty
// value, "+" is a space and %XX is decoded. GetQueryCollectionAsDictionary
// keeps one entry per key, its values joined with commas
// (StringValues.ToString), and AddQueryString writes each key and value
// encoded by UrlEncoder.Default, in the order keys first appeared.
func forwardQuery(raw string) string {
	var keys []string
	values := map[string][]string{}
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		k, v = queryUnescape(k), queryUnescape(v)
		fold := strings.ToLower(k)
		if _, seen := values[fold]; !seen {
			keys = append(keys, k)
		}
		values[fold] = append(values[fold], v)
	}
	if len(keys) == 0 {
		return ""
	}
	var b strings.Builder
	for i, k := range keys {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(urlEncode(k))
		b.WriteByte('=')
		b.WriteString(urlEncode(strings.Join(values[strings.ToLower(k)], ",")))
	}
	return b.String()
}

// queryUnescape decodes as ASP.NET Core does: "+" is a space, a valid %XX
// is its byte, an invalid one is left as it is (Uri.UnescapeDataString).
func queryUnescape(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// urlEncode is UrlEncoder.Default: letters, digits and "-._~" stay; every
// other byte of the UTF-8 form becomes %XX (a space is %20, not "+").
func urlEncode(s string) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// writeForwardedResponse is HttpResponseMessageOutputFormatter.WriteAsync
// (Microsoft.AspNetCore.Mvc.WebApiCompatShim): the status code, every
// response header and content header appended as they came (so each
// Set-Cookie passes, and Content-Type and Location), except a
// Transfer-Encoding that is just "chunked", which the server decides
// itself; then the body. Go's client has already taken Transfer-Encoding
// out of the header map.
func writeForwardedResponse(w http.ResponseWriter, resp *http.Response) {
	copyHeaders(w.Header(), resp.Header, nil)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
