package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/httpapi"
)

// maxBufferedError is the largest upstream error body (status >= 400) that is redacted in memory
// and sent with an exact Content-Length; longer or unsized ones are redacted as they stream.
const maxBufferedError = 64 << 10

// Problem types of the proxy (RFC 9457).
const (
	ProblemUpstreamUnavailable = httpapi.ProblemTypeBase + "upstream-unavailable"
	ProblemUpstreamTimeout     = httpapi.ProblemTypeBase + "upstream-timeout"
	ProblemBodyTooLarge        = httpapi.ProblemTypeBase + "body-too-large"
	ProblemMethodNotAllowed    = httpapi.ProblemTypeBase + "method-not-allowed"
)

// Config is the part of keygate.yaml the proxy needs.
type Config struct {
	Issuer         string // public origin; the audience of access tokens
	Upstreams      []config.Upstream
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-* headers are believed
}

// Deps are the proxy's collaborators.
type Deps struct {
	// Tokens verifies bearer access tokens for the default Authenticator. Required unless Auth is set.
	Tokens TokenVerifier
	// Auth replaces the default bearer Authenticator (capability tokens, DPoP).
	Auth Authenticator
	// Secrets provides upstream credentials. Required.
	Secrets SecretSource
	Logger  *slog.Logger
	Now     func() time.Time
	// Transport, when set, carries every upstream request instead of the built-in per-upstream
	// transports (tests). The upstream's timeout is then the transport's business.
	Transport http.RoundTripper
	// UpstreamTransports overrides the transport of single upstreams by name (dev mode wires
	// EchoTransport as "echo").
	UpstreamTransports map[string]http.RoundTripper
	// Authorize runs after authentication and the scope check, before forwarding: limits and
	// capability use counting go here. Its error is sent like a handler's (an *httpapi.Problem,
	// *httpapi.OAuthError, or anything else as a 500). nil allows everything.
	Authorize func(r *http.Request, c *Caller, route *RouteMatch) error
	// Observe, when set, is told of every request addressed to an upstream, once it is answered:
	// the request, its caller (nil when authentication failed or was not reached), the route
	// (never nil; Pattern is empty when no route matched), the status the client got (499 when it
	// went away), the time taken, and the request and response body bytes that went through the
	// proxy. It runs after the response is written and must not keep r.
	Observe func(r *http.Request, c *Caller, route *RouteMatch, status int, dur time.Duration, bytesIn, bytesOut int64)
}

// RouteMatch is the route a request matched.
type RouteMatch struct {
	Upstream         string
	Pattern          string // the route's path pattern, e.g. /v1/models/**
	Method           string
	Path             string // the decoded path after /{upstream}
	Scope            string
	RequireSignature bool
}

// Proxy forwards /{upstream}/{path...} to the configured upstreams.
type Proxy struct {
	upstreams map[string]*upstream
	auth      Authenticator
	secrets   *secretCache
	log       *slog.Logger
	authorize func(r *http.Request, c *Caller, route *RouteMatch) error
	observe   func(r *http.Request, c *Caller, route *RouteMatch, status int, dur time.Duration, bytesIn, bytesOut int64)
	trusted   []netip.Prefix
	owned     []*http.Transport
	idle      time.Duration // streamIdleTimeout; shorter in tests
}

// upstream is one compiled config.Upstream.
type upstream struct {
	name           string
	target         *url.URL
	prefix         string // decoded path prefix, without a trailing slash
	prefixRaw      string // escaped path prefix
	auth           config.UpstreamAuth
	router         *router
	maxBody        int64
	allowSetCookie bool
	cors           *corsPolicy
	rp             *httputil.ReverseProxy
	p              *Proxy
	cred           atomic.Pointer[credential]
}

// forward is the state of one forwarded request, shared by ServeHTTP and the ReverseProxy hooks
// through the request context.
type forward struct {
	up      *upstream
	cred    *credential
	rest    string // decoded path after /{upstream}
	restRaw string // escaped path after /{upstream}
	start   time.Time
	status  int
	caller  *Caller     // set once authenticated
	route   *RouteMatch // set once a route matched
	bytesIn int64
	body    *limitBody
	resp    *idleBody
}

type forwardKey struct{}

// New compiles the upstreams of cfg.
func New(cfg Config, deps Deps) (*Proxy, error) {
	if deps.Secrets == nil {
		return nil, errors.New("proxy: no secret source")
	}
	if deps.Auth == nil && deps.Tokens == nil {
		return nil, errors.New("proxy: no token verifier or authenticator")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	p := &Proxy{
		upstreams: make(map[string]*upstream, len(cfg.Upstreams)),
		auth:      deps.Auth,
		log:       deps.Logger,
		authorize: deps.Authorize,
		observe:   deps.Observe,
		trusted:   cfg.TrustedProxies,
		idle:      streamIdleTimeout,
	}
	if p.auth == nil {
		p.auth = NewBearerAuth(deps.Tokens, cfg.Issuer, deps.Now)
	}
	errLog := log.New(&errorLogWriter{p: p}, "", 0)
	pool := newBufferPool()
	var names []string
	for i := range cfg.Upstreams {
		cu := &cfg.Upstreams[i]
		u, err := p.newUpstream(cu)
		if err != nil {
			return nil, fmt.Errorf("proxy: upstream %q: %w", cu.Name, err)
		}
		if _, dup := p.upstreams[u.name]; dup {
			return nil, fmt.Errorf("proxy: duplicate upstream %q", cu.Name)
		}
		tr := deps.UpstreamTransports[u.name]
		if tr == nil {
			tr = deps.Transport
		}
		if tr == nil {
			timeout := cu.Timeout.Std()
			if timeout <= 0 {
				timeout = config.DefaultUpstreamTimeout
			}
			t := newTransport(timeout)
			p.owned = append(p.owned, t)
			tr = t
		}
		u.rp = &httputil.ReverseProxy{
			Rewrite:        u.rewrite,
			Transport:      tr,
			ModifyResponse: u.modifyResponse,
			ErrorHandler:   u.errorHandler,
			ErrorLog:       errLog,
			BufferPool:     pool,
			// Zero: a response of known length is not flushed early. The ReverseProxy itself
			// flushes after every write for text/event-stream and for responses of unknown
			// length (chunked streams), which is what streaming needs.
			FlushInterval: 0,
		}
		p.upstreams[u.name] = u
		names = append(names, u.auth.Secret)
	}
	p.secrets = newSecretCache(deps.Secrets, names, deps.Logger, deps.Now)
	return p, nil
}

func (p *Proxy) newUpstream(cu *config.Upstream) (*upstream, error) {
	if cu.Name == "" || strings.ContainsAny(cu.Name, "/%") {
		return nil, errors.New("invalid name")
	}
	target, err := url.Parse(cu.URL)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" ||
		target.User != nil || target.RawQuery != "" || target.Fragment != "" {
		return nil, errors.New("url must be an absolute http(s) URL without user info, query or fragment")
	}
	switch cu.Auth.Type {
	case config.UpstreamAuthBearer, config.UpstreamAuthBasic:
	case config.UpstreamAuthHeader:
		if cu.Auth.Name == "" || !strings.Contains(cu.Auth.Template, config.SecretPlaceholder) {
			return nil, errors.New("header auth needs a name and a template with {{secret}}")
		}
	case config.UpstreamAuthQuery:
		if cu.Auth.Param == "" {
			return nil, errors.New("query auth needs a param")
		}
	default:
		return nil, fmt.Errorf("unknown auth type %q", cu.Auth.Type)
	}
	if cu.Auth.Secret == "" {
		return nil, errors.New("auth needs a secret")
	}
	rt, err := newRouter(cu.Routes)
	if err != nil {
		return nil, err
	}
	maxBody := int64(cu.MaxRequestBody)
	if maxBody <= 0 {
		maxBody = int64(config.DefaultMaxRequestBody)
	}
	return &upstream{
		name:           cu.Name,
		target:         target,
		prefix:         strings.TrimSuffix(target.Path, "/"),
		prefixRaw:      strings.TrimSuffix(target.EscapedPath(), "/"),
		auth:           cu.Auth,
		router:         rt,
		maxBody:        maxBody,
		allowSetCookie: cu.AllowSetCookie,
		cors:           newCORS(cu.CORS.Origins),
		p:              p,
	}, nil
}

// Run keeps the upstream credentials fresh until ctx is done: it loads them all, then checks every
// two seconds for rotated versions. Without Run, credentials load on first use and never change.
func (p *Proxy) Run(ctx context.Context) {
	p.secrets.run(ctx, secretPollInterval)
	for _, t := range p.owned {
		t.CloseIdleConnections()
	}
}

// Wrap sends requests whose first path segment names an upstream to the proxy and everything else
// to next. Mount the proxy this way rather than as a ServeMux pattern: ServeMux answers paths with
// "..", "." or "//" segments with a redirect to the cleaned path before any handler runs, so the
// proxy would never see (and refuse) them.
func (p *Proxy) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path := r.URL.Path; len(path) > 1 && path[0] == '/' {
			if name, _ := splitUpstream(path); p.upstreams[name] != nil {
				p.ServeHTTP(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP proxies ANY /{upstream}/{path...}.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Only origin-form targets: an absolute-form target ("GET http://other/ HTTP/1.1") must not
	// make keygate an open proxy, nor CONNECT a tunnel.
	if r.Method == http.MethodConnect || r.RequestURI == "" || r.RequestURI[0] != '/' {
		p.fail(w, r, httpapi.BadRequest("the request target must be a path"))
		return
	}
	escaped := r.URL.EscapedPath()
	if msg := checkPath(escaped, r.URL.Path); msg != "" {
		p.fail(w, r, httpapi.BadRequest(msg))
		return
	}
	name, rest := splitUpstream(r.URL.Path)
	u := p.upstreams[name]
	if u == nil {
		p.fail(w, r, httpapi.NotFound("no such upstream"))
		return
	}
	_, restRaw := splitUpstream(escaped)
	f := &forward{up: u, rest: rest, restRaw: restRaw, start: time.Now()}
	if p.observe != nil {
		defer p.observeDone(r, f)
	}
	if err := u.serve(w, r, f); err != nil {
		f.status = statusOf(err)
		p.fail(w, r, err)
	}
}

func (p *Proxy) observeDone(r *http.Request, f *forward) {
	var in, out int64 = f.bytesIn, 0
	if f.body != nil {
		in = f.body.n.Load()
	}
	if f.resp != nil {
		out = f.resp.n
	}
	status := f.status
	if status == 0 {
		status = http.StatusBadGateway // a panic (ErrAbortHandler) before the status was known
	}
	route := f.route
	if route == nil {
		route = &RouteMatch{Upstream: f.up.name, Method: r.Method, Path: f.rest}
	}
	p.observe(r, f.caller, route, status, time.Since(f.start), in, out)
}

// serve checks the request and forwards it; an error is answered by the caller, with nothing sent
// upstream.
func (u *upstream) serve(w http.ResponseWriter, r *http.Request, f *forward) error {
	if isPreflight(r) {
		origin := r.Header.Get("Origin")
		if !u.cors.allows(origin) {
			return corsForbidden()
		}
		methods := u.router.allowed(f.rest)
		if len(methods) == 0 {
			return httpapi.NotFound("no such route")
		}
		writePreflight(w, r, origin, methods)
		f.status = http.StatusNoContent
		return nil
	}
	if u.cors != nil {
		h := w.Header()
		h.Add("Vary", "Origin")
		if origin := r.Header.Get("Origin"); u.cors.allows(origin) {
			setActual(h, origin)
		}
	}
	rt, pathMatched := u.router.lookup(r.Method, f.rest)
	if rt == nil {
		if pathMatched {
			return &httpapi.Problem{Status: http.StatusMethodNotAllowed, Type: ProblemMethodNotAllowed,
				Title: "Method Not Allowed", Detail: "this route does not allow " + r.Method,
				Header: http.Header{"Allow": {strings.Join(u.router.allowed(f.rest), ", ")}}}
		}
		return httpapi.NotFound("no such route")
	}
	f.route = &RouteMatch{Upstream: u.name, Pattern: rt.raw, Method: r.Method, Path: f.rest, Scope: rt.scope,
		RequireSignature: rt.requireSignature}
	if hasQueryToken(r.URL.RawQuery) {
		return invalidRequest("access tokens in the query string are refused; use the Authorization header")
	}
	caller, err := u.p.auth.Authenticate(r)
	if err != nil {
		return authError(err)
	}
	if caller == nil {
		return invalidToken("the access token is invalid", errors.New("authenticator returned no caller"))
	}
	f.caller = caller
	if !caller.HasScope(rt.scope) {
		return insufficientScope(caller, rt.scope)
	}
	if r.ContentLength > u.maxBody {
		return bodyTooLarge(u.maxBody)
	}
	entry, err := u.p.secrets.get(r.Context(), u.auth.Secret)
	if err != nil {
		return &httpapi.Problem{Status: http.StatusBadGateway, Type: ProblemUpstreamUnavailable, Title: "Bad Gateway",
			Detail: "the upstream credential is not available", Cause: err}
	}
	f.cred = u.credential(entry)
	if u.p.authorize != nil {
		if err := u.p.authorize(r, caller, f.route); err != nil {
			return err
		}
	}
	out := r.WithContext(context.WithValue(r.Context(), forwardKey{}, f))
	switch {
	case r.ContentLength > 0:
		f.bytesIn = r.ContentLength
	case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
		f.body = &limitBody{rc: r.Body, max: u.maxBody}
		out.Body = f.body
	}
	u.rp.ServeHTTP(w, out)
	return nil
}

// credential returns the credential for entry, derived once per secret version.
func (u *upstream) credential(e *secretEntry) *credential {
	if c := u.cred.Load(); c != nil && c.entry == e {
		return c
	}
	c := newCredential(&u.auth, e)
	u.cred.Store(c)
	return c
}

func forwardFrom(ctx context.Context) *forward {
	f, _ := ctx.Value(forwardKey{}).(*forward)
	return f
}

// stripHeaders are request headers never forwarded: keygate's own credentials (RFC 6750, RFC 9449,
// RFC 9421), the client's cookies, and client claims about addresses and URLs that upstreams may
// believe. Hop-by-hop headers (RFC 9110 §7.6.1) are removed by the ReverseProxy before Rewrite.
var stripHeaders = []string{
	"Authorization", "Proxy-Authorization", "Dpop", "Signature", "Signature-Input", "Cookie",
	"Forwarded", "X-Real-Ip", "True-Client-Ip", "X-Client-Ip", "X-Original-Url", "X-Rewrite-Url",
}

// rewrite builds the outbound request (httputil.ReverseProxy.Rewrite).
func (u *upstream) rewrite(pr *httputil.ProxyRequest) {
	f := forwardFrom(pr.In.Context())
	out := pr.Out

	// SetURL, with keygate's own path join: the upstream URL's path is a prefix, and the client's
	// escaping of the rest is kept.
	out.URL.Scheme = u.target.Scheme
	out.URL.Host = u.target.Host
	out.URL.Path = u.prefix + f.rest
	out.URL.RawPath = ""
	if u.prefixRaw != u.prefix || f.restRaw != f.rest {
		out.URL.RawPath = u.prefixRaw + f.restRaw
	}
	out.Host = ""

	h := out.Header
	for _, k := range stripHeaders {
		delete(h, k)
	}
	for k := range h {
		if strings.HasPrefix(k, "X-Forwarded-") || strings.IndexByte(k, '_') >= 0 && underscoreAlias(k) {
			delete(h, k)
		}
	}
	// Upgrades (WebSocket, h2c) are not proxied: the body limits and idle cut-off could not apply.
	delete(h, "Upgrade")
	delete(h, "Connection")

	trusted := u.p.trustedPeer(pr.In.RemoteAddr)
	if trusted {
		if v := pr.In.Header["X-Forwarded-For"]; len(v) > 0 {
			h["X-Forwarded-For"] = v
		}
	}
	pr.SetXForwarded()
	if trusted {
		if v := pr.In.Header.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
			h.Set("X-Forwarded-Proto", v)
		}
		if v := pr.In.Header.Get("X-Forwarded-Host"); v != "" {
			h.Set("X-Forwarded-Host", v)
		}
	}
	f.cred.inject(out)
}

// underscoreAlias reports whether a header name with underscores would be read as a stripped
// header by an upstream that maps "_" to "-" (CGI, PHP, some nginx setups), e.g. "X_forwarded_for"
// or "X_real_ip".
func underscoreAlias(k string) bool {
	alias := strings.ReplaceAll(k, "_", "-")
	if len(alias) >= len("X-Forwarded-") && strings.EqualFold(alias[:len("X-Forwarded-")], "X-Forwarded-") {
		return true
	}
	for _, s := range stripHeaders {
		if strings.EqualFold(alias, s) {
			return true
		}
	}
	return false
}

// modifyResponse cleans the upstream response (httputil.ReverseProxy.ModifyResponse).
func (u *upstream) modifyResponse(res *http.Response) error {
	f := forwardFrom(res.Request.Context())
	if f.body != nil && f.body.tooLarge.Load() {
		// The upstream answered a body that keygate cut short; the client gets the 413.
		return errBodyTooLarge
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		return errUpgrade
	}
	f.status = res.StatusCode
	h := res.Header
	if !u.allowSetCookie {
		delete(h, "Set-Cookie")
	}
	for k := range h {
		// keygate owns CORS: an upstream's "Access-Control-Allow-Origin: *" must not widen it.
		if strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
	f.cred.redactHeaders(h)

	f.resp = newIdleBody(res, f.cred, u.p.idle)
	res.Body = f.resp
	// Error bodies are where upstreams echo requests back ("invalid key: sk-..."), so they are
	// searched for the credential. Successful responses stream untouched: scanning them would cost
	// every byte of every response and delay streams, and an upstream that reflects credentials in
	// a success body is the upstream's own doing (the dev-mode echo does so on purpose).
	if res.StatusCode >= 400 && res.Request.Method != http.MethodHead {
		return redactBody(res, f.cred)
	}
	return nil
}

var (
	errBodyTooLarge = errors.New("request body too large")
	errUpgrade      = errors.New("upstream switched protocols")
	errStreamIdle   = errors.New("upstream response body idle for too long")
)

// redactBody replaces the credential in an error response body.
func redactBody(res *http.Response, c *credential) error {
	var src io.ReadCloser = res.Body
	gzipped := false
	switch strings.ToLower(strings.TrimSpace(res.Header.Get("Content-Encoding"))) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			withholdBody(res)
			return nil
		}
		src = readCloser{Reader: zr, Closer: res.Body}
		gzipped = true
		res.Header.Del("Content-Encoding")
	default:
		// An encoding keygate cannot read (br, zstd) could hide the credential: the client gets
		// the status and headers, not the body.
		withholdBody(res)
		return nil
	}
	if !gzipped && res.ContentLength >= 0 && res.ContentLength <= maxBufferedError {
		b, err := io.ReadAll(io.LimitReader(src, maxBufferedError+1))
		if err != nil {
			return fmt.Errorf("read upstream error body: %w", err)
		}
		b = c.redactBytes(b)
		res.Body = readCloser{Reader: bytes.NewReader(b), Closer: src}
		res.ContentLength = int64(len(b))
		res.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	res.Body = newRedactReader(src, c)
	res.ContentLength = -1
	res.Header.Del("Content-Length")
	return nil
}

func withholdBody(res *http.Response) {
	_ = res.Body.Close()
	res.Body = http.NoBody
	res.ContentLength = 0
	res.Header.Del("Content-Encoding")
	res.Header.Set("Content-Length", "0")
}

type readCloser struct {
	io.Reader
	io.Closer
}

// errorHandler answers a failed round trip (httputil.ReverseProxy.ErrorHandler). The client never
// sees err; the log gets it with the credential redacted and the request id.
func (u *upstream) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	f := forwardFrom(r.Context())
	var mbe *http.MaxBytesError
	var pb *httpapi.Problem
	switch {
	case f != nil && f.body != nil && f.body.tooLarge.Load(), errors.As(err, &mbe), errors.Is(err, errBodyTooLarge):
		pb = bodyTooLarge(u.maxBody)
	case r.Context().Err() != nil && errors.Is(r.Context().Err(), context.Canceled):
		// The client went away; nobody reads an answer.
		if f != nil {
			f.status = 499
		}
		u.p.log.LogAttrs(r.Context(), slog.LevelDebug, "proxy: client went away",
			slog.String("request_id", httpapi.RequestID(r.Context())), slog.String("upstream", u.name))
		return
	case isTimeout(err):
		pb = &httpapi.Problem{Status: http.StatusGatewayTimeout, Type: ProblemUpstreamTimeout, Title: "Gateway Timeout",
			Detail: "the upstream did not answer in time"}
	default:
		pb = &httpapi.Problem{Status: http.StatusBadGateway, Type: ProblemUpstreamUnavailable, Title: "Bad Gateway",
			Detail: "the upstream could not be reached"}
	}
	msg := err.Error()
	if f != nil && f.cred != nil {
		msg = f.cred.redactString(msg)
	}
	pb.Cause = fmt.Errorf("upstream %s: %s", u.name, msg)
	if f != nil {
		f.status = pb.Status
	}
	httpapi.WriteError(w, r, u.p.log, pb)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func bodyTooLarge(max int64) *httpapi.Problem {
	return &httpapi.Problem{Status: http.StatusRequestEntityTooLarge, Type: ProblemBodyTooLarge,
		Title: "Content Too Large", Detail: "the request body exceeds " + strconv.FormatInt(max, 10) + " bytes"}
}

// authError passes an Authenticator's protocol errors through and turns anything else into
// invalid_token.
func authError(err error) error {
	var oe *httpapi.OAuthError
	var pe *httpapi.Problem
	if errors.As(err, &oe) || errors.As(err, &pe) {
		return err
	}
	return invalidToken("the access token is invalid", err)
}

func statusOf(err error) int {
	var oe *httpapi.OAuthError
	var pe *httpapi.Problem
	switch {
	case errors.As(err, &oe):
		if oe.Status == 0 {
			return http.StatusBadRequest
		}
		return oe.Status
	case errors.As(err, &pe):
		return pe.Status
	}
	return http.StatusInternalServerError
}

func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteError(w, r, p.log, err)
}

// trustedPeer reports whether the connection comes from a trusted proxy.
func (p *Proxy) trustedPeer(remoteAddr string) bool {
	if len(p.trusted) == 0 {
		return false
	}
	a, ok := peerAddr(remoteAddr)
	return ok && p.isTrusted(a)
}

func (p *Proxy) isTrusted(a netip.Addr) bool {
	for _, pf := range p.trusted {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(remoteAddr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		a, err := netip.ParseAddr(remoteAddr)
		return a.Unmap(), err == nil
	}
	return ap.Addr().Unmap(), true
}

// ClientIP returns the address of the client for per-IP limits: the connection's peer, or, when
// the peer is a trusted proxy, the rightmost X-Forwarded-For entry that is not a trusted proxy.
func (p *Proxy) ClientIP(r *http.Request) netip.Addr {
	peer, ok := peerAddr(r.RemoteAddr)
	if !ok || !p.isTrusted(peer) {
		return peer
	}
	vals := r.Header.Values("X-Forwarded-For")
	addr := peer
	for i := len(vals) - 1; i >= 0; i-- {
		list := vals[i]
		for list != "" {
			var item string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				item, list = list[j+1:], list[:j]
			} else {
				item, list = list, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(item))
			if err != nil {
				return addr
			}
			addr = a.Unmap()
			if !p.isTrusted(addr) {
				return addr
			}
		}
	}
	return addr
}

// errorLogWriter sends the ReverseProxy's own log lines to slog, with every loaded credential
// redacted.
type errorLogWriter struct{ p *Proxy }

func (e *errorLogWriter) Write(b []byte) (int, error) {
	msg := strings.TrimSpace(string(b))
	for _, u := range e.p.upstreams {
		if c := u.cred.Load(); c != nil {
			msg = c.redactString(msg)
		}
	}
	e.p.log.LogAttrs(context.Background(), slog.LevelWarn, "proxy: "+msg)
	return len(b), nil
}
