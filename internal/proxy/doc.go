// Package proxy is keygate's resource server: it serves ANY /{upstream}/{path...}, checks the
// caller's token, route and scope, and forwards the request to the upstream API with the real
// credential, which the caller never sees.
//
// # Authentication
//
// Access tokens arrive as "Authorization: Bearer <token>" (RFC 6750 §2.1) and nowhere else: a
// token in the query string (§2.3) is refused with 400 invalid_request, because URLs end up in
// logs, browser histories and Referer headers. Failures are answered as RFC 6750 §3 says: no
// credentials is a 401 with a bare "Bearer realm" challenge (§3.1: no error code), a bad token 401
// invalid_token, a malformed header 400 invalid_request, a missing scope 403 insufficient_scope
// with the scope needed, challenged with the scheme the request used (a DPoP caller gets a DPoP
// challenge with algs, RFC 9449 §7.1). Tokens longer than 8 KiB are refused unparsed. The Authenticator interface
// lets capability tokens and DPoP (RFC 9449) plug in beside the default BearerAuth.
//
// # Routing and path hygiene
//
// The first path segment names the upstream; routes match method and path pattern ("*" one
// segment, a final "**" the rest, see router.go), most specific pattern first. Unknown upstream or
// route is 404, a known route with another method 405 with Allow; neither contacts the upstream.
// Paths are matched decoded but forwarded with the client's escaping, so anything that could decode
// to a different path upstream is refused with 400 rather than normalised (path.go): dot segments,
// also encoded; encoded "/" and "\"; double encodings; backslashes; control bytes; empty segments.
// Absolute-form request targets and CONNECT are refused, so keygate is never an open proxy.
//
// # Forwarding
//
// httputil.ReverseProxy with Rewrite. Hop-by-hop headers (RFC 9110 §7.6.1, and those named in
// Connection) are dropped by the ReverseProxy; keygate also drops the caller's credentials
// (Authorization, DPoP, Signature, Signature-Input, Cookie, Proxy-Authorization), every incoming
// Forwarded/X-Forwarded-* header and other client-asserted address headers, then sets its own
// X-Forwarded-For/-Host/-Proto (keeping the incoming chain only from trusted proxies) and adds the
// upstream credential as a bearer token, a templated header, HTTP Basic (RFC 7617) or a query
// parameter, replacing any client value of the same name. Protocol upgrades are not proxied.
// Redirects are passed back, never followed; status codes pass through (a 429 and its Retry-After
// stay as they are).
//
// Credentials come from the vault through a cache that polls the version number every two
// seconds and swaps in a rotated value without a gap. The credential must never reach the caller
// or a log, even from an upstream that echoes requests back in its errors: response headers are
// searched for it, and error bodies (status >= 400) are redacted in memory up to 64 KiB (with an
// exact Content-Length) or as they stream beyond that; gzip error bodies are decoded to do so and
// error bodies in other encodings are withheld. Success bodies stream untouched (cost and latency).
// Set-Cookie is dropped unless the upstream allows it, and upstream CORS headers are replaced by
// keygate's own (cors.go).
//
// Streams: Server-Sent Events and other responses of unknown length are flushed write by write; a
// response body idle for 60 s is cut. The upstream timeout bounds the wait for response headers
// only. Request bodies are capped per upstream: 413 before contacting the upstream when
// Content-Length is too large, 413 mid-stream for chunked bodies.
//
// Everything here is the standard library's; the reverse proxy is net/http/httputil's. No library
// does path hygiene, credential injection or error-body redaction for us, so they are written
// here.
package proxy
