package proxy

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/dpop"
	"github.com/keygate/keygate/internal/httpapi"
)

// ProofVerifier checks DPoP proofs (dpop.Verifier).
type ProofVerifier interface {
	// Verify checks the proof of req (RFC 9449 §4.3) and remembers it. A rejection wraps
	// dpop.ErrInvalidProof (dpop.ErrUseNonce when a server nonce is missing or stale); any other
	// error means the check could not be made.
	Verify(ctx context.Context, req dpop.Request) (*dpop.Proof, error)
	// NewNonce returns a fresh server nonce for a DPoP-Nonce header, "" when nonces are off.
	NewNonce() string
	// Algorithms are the accepted JWS algs, for the algs challenge parameter (RFC 9449 §7.1).
	Algorithms() []string
}

// dpopChallengeAlgs is the algs auth-param of a DPoP challenge sent where no ProofVerifier is at
// hand (BearerAuth refusing a bound token): every alg keygate can verify.
var dpopChallengeAlgs = algsParam(dpop.SupportedAlgorithms)

func algsParam(algs []string) string { return `algs="` + strings.Join(algs, " ") + `"` }

// DPoPAuth authenticates DPoP-bound access tokens on the proxy (RFC 9449 §7): exactly one
// "Authorization: DPoP <token>" header and exactly one DPoP proof header whose key is the one the
// token is bound to (cnf.jkt), whose htm and htu name this request, and whose ath is the hash of
// this token.
//
// Failures are 401 with a DPoP challenge (RFC 9449 §7.1): error="invalid_token" for the token,
// error="invalid_dpop_proof" for the proof, and error="use_dpop_nonce" with a DPoP-Nonce header when
// the server nonce is missing or stale (§9).
type DPoPAuth struct {
	tokens TokenVerifier
	proofs ProofVerifier
	issuer string // public origin without a trailing slash
	algs   string
	now    func() time.Time
}

// NewDPoPAuth returns the DPoP Authenticator. issuer is the configured public origin: it is both
// the audience access tokens must carry and the origin of the htu a proof must name (never the
// request's Host, which is the client's to choose). now may be nil.
func NewDPoPAuth(tokens TokenVerifier, proofs ProofVerifier, issuer string, now func() time.Time) *DPoPAuth {
	if now == nil {
		now = time.Now
	}
	return &DPoPAuth{tokens: tokens, proofs: proofs, issuer: strings.TrimSuffix(issuer, "/"),
		algs: algsParam(proofs.Algorithms()), now: now}
}

// Authenticate implements Authenticator.
func (a *DPoPAuth) Authenticate(r *http.Request) (*Caller, error) {
	raw, err := a.dpopToken(r)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(raw, "kgc_") {
		return nil, a.invalidToken("capability tokens are bearer tokens, not DPoP tokens", nil)
	}
	claims, err := a.tokens.Verify(r.Context(), raw)
	if err != nil {
		return nil, a.invalidToken("the access token is invalid, expired or revoked", err)
	}
	switch {
	case claims == nil:
		return nil, a.invalidToken("the access token is invalid", nil)
	case a.issuer != "" && claims.Audience != a.issuer:
		return nil, a.invalidToken("the access token is not for this resource server", nil)
	case !claims.Expiry.IsZero() && !a.now().Before(claims.Expiry):
		return nil, a.invalidToken("the access token expired", nil)
	case claims.JKT == "":
		// RFC 9449 §7.1: the DPoP scheme carries a DPoP-bound token; an unbound one would let the
		// proof's key stand in for a binding the server never made.
		return nil, a.invalidToken("the access token is not DPoP-bound; send it with the Bearer scheme", nil)
	}

	if err := a.CheckProof(r, raw, claims.JKT); err != nil {
		return nil, err
	}
	return &Caller{Subject: claims.Subject, ClientID: claims.ClientID, Scope: claims.Scope, TokenID: claims.JTI,
		Claims: claims, Kind: KindAccess, Scheme: "DPoP", ChallengeParams: a.algs}, nil
}

// CheckProof verifies the request's DPoP proof for token raw (its ath) and
// requires it to be signed by the key with thumbprint jkt, the key the token
// is bound to. Capability tokens minted with dpop_jkt use it too.
func (a *DPoPAuth) CheckProof(r *http.Request, raw, jkt string) error {
	// RFC 9449 §4.3 check 9: "The htu claim matches the HTTP URI value for the HTTP request in
	// which the JWT was received, ignoring any query and fragment parts." The origin is the
	// configured one; the path is the one the client sent.
	proof, err := a.proofs.Verify(r.Context(), dpop.Request{
		Proofs:      r.Header.Values("DPoP"),
		Method:      r.Method,
		URL:         a.issuer + r.URL.EscapedPath(),
		AccessToken: raw,
	})
	if err != nil {
		return a.proofError(err)
	}
	// RFC 9449 §7.1: the resource server MUST "ensure that the public key to which the access
	// token is bound matches the public key from the DPoP proof".
	if subtle.ConstantTimeCompare([]byte(proof.JKT), []byte(jkt)) != 1 {
		return a.challenge(http.StatusUnauthorized, "invalid_dpop_proof",
			"the DPoP proof is not signed by the key the access token is bound to", nil)
	}
	return nil
}

// dpopToken extracts the token of an "Authorization: DPoP" header. RFC 9449 §7.1:
//
//	credentials = "DPoP" 1*SP token68
//
// As with Bearer, keygate accepts exactly one space and exactly one Authorization header.
func (a *DPoPAuth) dpopToken(r *http.Request) (string, error) {
	vals := r.Header["Authorization"]
	switch {
	case len(vals) == 0:
		return "", a.noCredentials()
	case len(vals) > 1:
		return "", a.challenge(http.StatusBadRequest, "invalid_request", "more than one Authorization header", nil)
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	switch {
	case !strings.EqualFold(scheme, "DPoP"):
		return "", a.noCredentials()
	case !ok || tok == "":
		return "", a.challenge(http.StatusBadRequest, "invalid_request", "the Authorization header has no token", nil)
	case len(tok) > MaxTokenLength:
		return "", a.invalidToken("the token is too long", nil)
	case !isB64Token(tok): // token68 has the same grammar as b64token
		return "", a.challenge(http.StatusBadRequest, "invalid_request", "the Authorization header is malformed", nil)
	}
	return tok, nil
}

// proofError maps a ProofVerifier error to its answer.
func (a *DPoPAuth) proofError(err error) error {
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		// RFC 9449 §9: "the resource server responds with an HTTP 401 ... WWW-Authenticate ...
		// error="use_dpop_nonce" ... [and] a DPoP-Nonce HTTP header with the nonce value".
		oe := a.challenge(http.StatusUnauthorized, "use_dpop_nonce",
			"the resource server requires a nonce in the DPoP proof", err)
		oe.Header = http.Header{"Dpop-Nonce": {a.proofs.NewNonce()}}
		return oe
	case errors.Is(err, dpop.ErrInvalidProof):
		// The error text names the failed check and is safe to send (dpop.ErrInvalidProof).
		return a.challenge(http.StatusUnauthorized, "invalid_dpop_proof", err.Error(), nil)
	}
	return &httpapi.Problem{Status: http.StatusInternalServerError, Type: httpapi.ProblemTypeBase + "internal",
		Title: "Internal Server Error", Cause: err}
}

func (a *DPoPAuth) invalidToken(desc string, cause error) error {
	return a.challenge(http.StatusUnauthorized, "invalid_token", desc, cause)
}

// noCredentials is the answer to a request without DPoP credentials: a challenge without an error
// code (RFC 6750 §3.1, which RFC 9449 §7.1 follows).
func (a *DPoPAuth) noCredentials() error {
	return &httpapi.Problem{Status: http.StatusUnauthorized, Type: httpapi.ProblemTypeBase + "unauthorized",
		Title: "Unauthorized", Detail: "a DPoP access token is required",
		Header: http.Header{"Www-Authenticate": {httpapi.Challenge("DPoP", "", "", a.algs)}}}
}

func (a *DPoPAuth) challenge(status int, code, desc string, cause error) *httpapi.OAuthError {
	return &httpapi.OAuthError{Status: status, Code: code, Description: desc, Challenge: "DPoP",
		ChallengeParams: a.algs, Cause: cause}
}
