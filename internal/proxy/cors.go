package proxy

import (
	"net/http"
	"slices"
	"strings"

	"github.com/keygate/keygate/internal/httpapi"
)

// CORS (Fetch standard, "CORS protocol"). keygate answers preflights itself, without
// authentication (browsers send none) and without contacting the upstream, and owns the CORS
// headers of every proxied response: whatever Access-Control-* headers the upstream sends are
// dropped. Allowed origins are matched exactly; the response names the origin, never "*" (also
// when the config allows any origin with "*"). No Access-Control-Allow-Credentials: keygate tokens
// travel in the Authorization header, not in cookies, so credentialed mode is never needed.

const corsMaxAge = "600"

// corsExposed are the response headers a browser app may read.
const corsExposed = "WWW-Authenticate, DPoP-Nonce, Retry-After, RateLimit, RateLimit-Policy, X-Request-Id"

// corsAllowedHeaders are the request headers a preflight may ask for (lower case, as browsers send
// them). Others are left out of Access-Control-Allow-Headers, and the browser refuses to send them.
var corsAllowedHeaders = []string{
	"authorization", "dpop", "content-type", "accept", "accept-language", "content-language",
	"content-digest", "signature", "signature-input", "idempotency-key", "last-event-id",
	"cache-control", "x-request-id",
}

// corsPolicy is the set of origins allowed for one upstream (or the OAuth endpoints).
type corsPolicy struct {
	any     bool
	origins []string
}

// newCORS returns nil when no origin is allowed.
func newCORS(origins []string) *corsPolicy {
	if len(origins) == 0 {
		return nil
	}
	return &corsPolicy{any: slices.Contains(origins, "*"), origins: slices.Clone(origins)}
}

func (c *corsPolicy) allows(origin string) bool {
	if c == nil || origin == "" || origin == "null" {
		return false
	}
	return c.any || slices.Contains(c.origins, origin)
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// setActual adds the headers of an allowed cross-origin actual response.
func setActual(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", corsExposed)
}

// writePreflight answers an allowed preflight with 204.
func writePreflight(w http.ResponseWriter, r *http.Request, origin string, methods []string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	if allowed := allowedRequestHeaders(r.Header.Values("Access-Control-Request-Headers")); allowed != "" {
		h.Set("Access-Control-Allow-Headers", allowed)
	}
	h.Set("Access-Control-Max-Age", corsMaxAge)
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
}

// allowedRequestHeaders keeps the requested header names that are in corsAllowedHeaders.
func allowedRequestHeaders(requested []string) string {
	var out []string
	for _, line := range requested {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if slices.Contains(corsAllowedHeaders, name) && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return strings.Join(out, ", ")
}

func corsForbidden() *httpapi.Problem {
	return &httpapi.Problem{Status: http.StatusForbidden, Type: httpapi.ProblemTypeBase + "cors-origin",
		Title: "Forbidden", Detail: "this origin may not call this API from a browser"}
}

// corsMethods are the methods CORS allows on the OAuth endpoints.
var corsMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost}

// CORS returns middleware applying the same policy to other endpoints (the app uses it for
// /oauth2/* with oauth_cors): it answers preflights for GET, HEAD and POST from the listed origins
// (403 for others) and adds Access-Control-Allow-Origin to responses for listed origins. With no
// origins it adds nothing, and preflights pass through to next.
func CORS(origins []string) func(http.Handler) http.Handler {
	pol := newCORS(origins)
	return func(next http.Handler) http.Handler {
		if pol == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			w.Header().Add("Vary", "Origin")
			if isPreflight(r) {
				if !pol.allows(origin) {
					httpapi.WriteProblem(w, r, corsForbidden())
					return
				}
				writePreflight(w, r, origin, corsMethods)
				return
			}
			if pol.allows(origin) {
				setActual(w.Header(), origin)
			}
			next.ServeHTTP(w, r)
		})
	}
}
