package httpsig

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Algorithm names (RFC 9421 §6.2.2).
const (
	AlgEd25519         = "ed25519"
	AlgECDSAP256SHA256 = "ecdsa-p256-sha256"
	AlgHMACSHA256      = "hmac-sha256"
)

const (
	// MaxHeaderSize caps Signature-Input, Signature and Content-Digest
	// (all field lines together), checked before parsing.
	MaxHeaderSize = 4 << 10
	// MaxNonceLength caps the nonce parameter.
	MaxNonceLength = 256

	replayNamespace = "httpsig"
)

// ErrInvalidSignature is wrapped by every rejection. The error text names
// the failed check and is safe to show the client.
var ErrInvalidSignature = errors.New("invalid http signature")

// ErrReplay reports a nonce already accepted for the key. It wraps
// ErrInvalidSignature.
var ErrReplay error = &sigError{msg: "invalid http signature: nonce already used", kind: ErrInvalidSignature}

// ErrUnknownKey is what a KeyResolver returns for a keyid it does not know.
var ErrUnknownKey = errors.New("unknown keyid")

type sigError struct {
	msg  string
	kind error
}

func (e *sigError) Error() string { return e.msg }
func (e *sigError) Unwrap() error { return e.kind }

func invalid(reason string) error {
	return &sigError{msg: "invalid http signature: " + reason, kind: ErrInvalidSignature}
}

var (
	errMissing       = invalid("Signature-Input or Signature missing")
	errTooLarge      = invalid("signature header longer than 4 KiB")
	errInputSyntax   = invalid("malformed Signature-Input")
	errSigSyntax     = invalid("malformed Signature")
	errNotOne        = invalid("exactly one signature is accepted")
	errLabel         = invalid("Signature and Signature-Input labels differ")
	errComponent     = invalid("unsupported covered component")
	errDupComponent  = invalid("component covered twice")
	errParam         = invalid("unsupported or mistyped signature parameter")
	errNoMethod      = invalid("@method not covered")
	errNoTargetURI   = invalid("@target-uri not covered")
	errNoDigest      = invalid("content-digest not covered for a request with content")
	errNoCreated     = invalid("created missing")
	errNoNonce       = invalid("nonce missing")
	errBadNonce      = invalid("nonce empty or too long")
	errNoKeyID       = invalid("keyid missing")
	errCreatedOld    = invalid("created too far in the past")
	errCreatedFuture = invalid("created too far in the future")
	errExpired       = invalid("signature expired")
	errUnknownKey    = invalid("unknown keyid")
	errAlgMismatch   = invalid("alg does not match the key")
	errFieldMissing  = invalid("covered field missing from the request")
	errSignature     = invalid("signature does not verify")
)

// Key is a client's verification key for one keyid.
type Key struct {
	// Alg is AlgEd25519, AlgECDSAP256SHA256 or AlgHMACSHA256.
	Alg string
	// Public is an ed25519.PublicKey or a P-256 *ecdsa.PublicKey.
	Public crypto.PublicKey
	// HMACSecret is the shared secret for AlgHMACSHA256.
	HMACSecret []byte
	// ClientID is the client the key belongs to.
	ClientID string
}

// KeyResolver finds the key for a keyid: a kid of the client's jwks, or
// "hmac:{client_id}". It returns an error wrapping ErrUnknownKey when there
// is none.
type KeyResolver interface {
	ResolveKey(ctx context.Context, keyid string) (Key, error)
}

// ReplayStore remembers one-time identifiers across all nodes; of callers
// with one live (namespace, id), exactly one sees fresh.
type ReplayStore interface {
	Remember(ctx context.Context, namespace, id string, expiresAt time.Time) (fresh bool, err error)
}

// Verifier checks RFC 9421 request signatures. It is safe for concurrent
// use.
type Verifier struct {
	keys   KeyResolver
	replay ReplayStore
	window time.Duration
	now    func() time.Time
}

// NewVerifier returns a Verifier accepting signatures created within
// ±window of now (dpop.proof_window).
func NewVerifier(keys KeyResolver, replay ReplayStore, window time.Duration, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{keys: keys, replay: replay, window: window, now: now}
}

// sigInput is one parsed Signature-Input member.
type sigInput struct {
	label      string
	components []string
	params     []param // as received, in order, for @signature-params
	created    int64
	hasCreated bool
	expires    int64
	hasExpires bool
	nonce      string
	keyid      string
	alg        string
}

// Verify checks the one signature of r and returns the client it belongs
// to. targetURI is the configured public origin plus r's request-target
// (never built from Host); it is the @target-uri value, compared byte for
// byte with what the client signed. body is r's content, already read in
// full (ReadBody); a covered content-digest is checked against it.
//
// A rejection wraps ErrInvalidSignature (ErrReplay for a used nonce); any
// other error is the KeyResolver's or the ReplayStore's.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, targetURI string, body []byte) (clientID string, err error) {
	in, sig, err := parseHeaders(r.Header)
	if err != nil {
		return "", err
	}

	// DESIGN.md: the signature must cover @method, @target-uri and, when
	// the request has content, content-digest (RFC 9530 §1.1: "the
	// Content-Digest field ... can be used to ... protect the content" once
	// it is itself signed).
	var hasMethod, hasTarget, hasDigest bool
	for _, c := range in.components {
		switch c {
		case "@method":
			hasMethod = true
		case "@target-uri":
			hasTarget = true
		case "content-digest":
			hasDigest = true
		}
	}
	switch {
	case !hasMethod:
		return "", errNoMethod
	case !hasTarget:
		return "", errNoTargetURI
	case !hasDigest && hasContent(r, body):
		return "", errNoDigest
	case !in.hasCreated:
		return "", errNoCreated
	case in.nonce == "" && !hasParam(in.params, "nonce"):
		return "", errNoNonce
	case in.nonce == "" || len(in.nonce) > MaxNonceLength:
		return "", errBadNonce
	case in.keyid == "":
		return "", errNoKeyID
	}

	// RFC 9421 §3.2.1: the verifier "SHOULD check the created parameter
	// ... is within an acceptable window"; keygate requires it.
	now := v.now()
	created := time.Unix(in.created, 0)
	if now.Sub(created) > v.window {
		return "", errCreatedOld
	}
	if created.Sub(now) > v.window {
		return "", errCreatedFuture
	}
	// §3.2.1: "If the expires parameter is present, the verifier MUST
	// ensure the current time is before the expiration time".
	if in.hasExpires && !now.Before(time.Unix(in.expires, 0)) {
		return "", errExpired
	}

	key, err := v.keys.ResolveKey(ctx, in.keyid)
	if errors.Is(err, ErrUnknownKey) {
		return "", errUnknownKey
	}
	if err != nil {
		return "", fmt.Errorf("resolve signature key: %w", err)
	}
	// §3.2 step 6.3: "If the alg parameter is present, it MUST match the
	// algorithm of the key material."
	if in.alg != "" && in.alg != key.Alg {
		return "", errAlgMismatch
	}

	base, err := signatureBase(in, r, targetURI)
	if err != nil {
		return "", err
	}
	ok, err := verifyWith(key, base, sig)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errSignature
	}

	if hasDigest {
		if err := VerifyContentDigest(r.Header.Values("Content-Digest"), body); err != nil {
			return "", err
		}
	}

	// §7.2.2: the nonce lets "the verifier ... detect replays"; it is
	// bound to the keyid so one client cannot burn another's, and
	// remembered for as long as created keeps the signature acceptable.
	id := sha256.Sum256([]byte(in.keyid + "\x00" + in.nonce))
	fresh, err := v.replay.Remember(ctx, replayNamespace, base64.RawURLEncoding.EncodeToString(id[:]), created.Add(v.window+time.Second))
	if err != nil {
		return "", fmt.Errorf("remember signature nonce: %w", err)
	}
	if !fresh {
		return "", ErrReplay
	}
	return key.ClientID, nil
}

// hasContent reports whether r carries content: "Content-Length > 0 or
// Transfer-Encoding", or body bytes in hand.
func hasContent(r *http.Request, body []byte) bool {
	return len(body) > 0 || r.ContentLength != 0 || len(r.TransferEncoding) > 0 ||
		r.Header.Get("Transfer-Encoding") != ""
}

func hasParam(ps []param, key string) bool {
	for _, p := range ps {
		if p.key == key {
			return true
		}
	}
	return false
}

// parseHeaders reads the one signature of h.
func parseHeaders(h http.Header) (sigInput, []byte, error) {
	inVals, sigVals := h.Values("Signature-Input"), h.Values("Signature")
	if len(inVals) == 0 || len(sigVals) == 0 {
		return sigInput{}, nil, errMissing
	}
	// RFC 9110 §5.3: field lines combine with ", ".
	inRaw, sigRaw := strings.Join(inVals, ", "), strings.Join(sigVals, ", ")
	if len(inRaw) > MaxHeaderSize || len(sigRaw) > MaxHeaderSize {
		return sigInput{}, nil, errTooLarge
	}
	in, err := parseSignatureInput(inRaw)
	if err != nil {
		return sigInput{}, nil, err
	}
	label, sig, err := parseSignature(sigRaw)
	if err != nil {
		return sigInput{}, nil, err
	}
	if label != in.label {
		return sigInput{}, nil, errLabel
	}
	return in, sig, nil
}

// parseSignatureInput parses a Signature-Input field value (RFC 9421 §4.1)
// holding exactly one signature.
func parseSignatureInput(s string) (sigInput, error) {
	if len(s) > MaxHeaderSize {
		return sigInput{}, errTooLarge
	}
	ms, err := parseDictionary(s)
	if err != nil {
		return sigInput{}, errInputSyntax
	}
	if len(ms) != 1 {
		return sigInput{}, errNotOne
	}
	m := ms[0]
	if !m.isList {
		return sigInput{}, errInputSyntax
	}
	in := sigInput{label: m.key, params: m.item.params}
	for _, it := range m.list {
		// §2.1: component identifiers are strings; their parameters
		// (sf, key, bs, req, tr, name) are not supported here.
		if it.val.kind != kindString || len(it.params) > 0 || !validComponent(it.val.s) {
			return sigInput{}, errComponent
		}
		for _, c := range in.components {
			// §2.5: "... the signature base MUST NOT contain ... the same
			// component identifier more than once" (in effect: refuse).
			if c == it.val.s {
				return sigInput{}, errDupComponent
			}
		}
		in.components = append(in.components, it.val.s)
	}
	for _, p := range m.item.params {
		v := p.val
		switch {
		case p.key == "created" && v.kind == kindInteger && v.i >= 0:
			in.created, in.hasCreated = v.i, true
		case p.key == "expires" && v.kind == kindInteger && v.i >= 0:
			in.expires, in.hasExpires = v.i, true
		case p.key == "nonce" && v.kind == kindString:
			in.nonce = v.s
		case p.key == "keyid" && v.kind == kindString:
			in.keyid = v.s
		case p.key == "alg" && (v.kind == kindString || v.kind == kindToken):
			in.alg = v.s
		case p.key == "tag" && v.kind == kindString:
		default:
			return sigInput{}, errParam
		}
	}
	return in, nil
}

// validComponent reports whether name is a derived component this package
// computes, or a lowercase field name (§2.1: "The component name for an
// HTTP field is the lowercased form of its field name").
func validComponent(name string) bool {
	switch name {
	case "@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query":
		return true
	case "", "signature", "signature-input":
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' || !isTchar(c) {
			return false
		}
	}
	return true
}

// parseSignature parses a Signature field value (RFC 9421 §4.2) holding
// exactly one signature.
func parseSignature(s string) (label string, sig []byte, err error) {
	if len(s) > MaxHeaderSize {
		return "", nil, errTooLarge
	}
	ms, err := parseDictionary(s)
	if err != nil {
		return "", nil, errSigSyntax
	}
	if len(ms) != 1 {
		return "", nil, errNotOne
	}
	m := ms[0]
	if m.isList || m.item.val.kind != kindBytes || len(m.item.params) > 0 {
		return "", nil, errSigSyntax
	}
	return m.key, m.item.val.b, nil
}

// signatureParams is the @signature-params value (RFC 9421 §2.3): the
// inner list and its parameters, serialised per RFC 8941 §4.1, in the order
// received.
func (in *sigInput) signatureParams() []byte {
	b := []byte{'('}
	for i, c := range in.components {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendString(b, c)
	}
	b = append(b, ')')
	return appendParams(b, in.params)
}

// signatureBase builds the signature base of RFC 9421 §2.5: one line
// `"name": value` per covered component, then the @signature-params line,
// joined by LF with none after the last.
func signatureBase(in sigInput, r *http.Request, targetURI string) ([]byte, error) {
	var u *url.URL
	var b []byte
	for _, c := range in.components {
		var val string
		switch c {
		case "@method":
			// §2.2.1: "The method name is case sensitive".
			val = r.Method
		case "@target-uri":
			// §2.2.2: "the full target URI for a request message".
			val = targetURI
		case "@authority", "@scheme", "@path", "@query", "@request-target":
			if u == nil {
				var err error
				if u, err = url.Parse(targetURI); err != nil || u.Host == "" {
					return nil, errors.New("httpsig: target URI is not absolute")
				}
			}
			val = derived(c, u)
		default:
			vs := r.Header.Values(c)
			if len(vs) == 0 {
				return nil, errFieldMissing
			}
			// §2.1: strip leading and trailing whitespace of each field
			// line and combine them with ", ".
			for i := range vs {
				vs[i] = strings.Trim(vs[i], " \t")
			}
			val = strings.Join(vs, ", ")
		}
		if strings.ContainsAny(val, "\r\n") {
			return nil, errFieldMissing
		}
		b = appendString(b, c)
		b = append(b, ": "...)
		b = append(b, val...)
		b = append(b, '\n')
	}
	b = append(b, `"@signature-params": `...)
	return append(b, in.signatureParams()...), nil
}

func derived(name string, u *url.URL) string {
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	switch name {
	case "@authority":
		// §2.2.3: the authority "MUST be normalized ... lowercased"
		// without a default port.
		host := strings.ToLower(u.Host)
		if p := u.Port(); (p == "443" && u.Scheme == "https") || (p == "80" && u.Scheme == "http") {
			host = strings.ToLower(u.Hostname())
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
		}
		return host
	case "@scheme":
		return strings.ToLower(u.Scheme)
	case "@path":
		return path
	case "@query":
		// §2.2.7: "If the query string is absent ... the component value
		// is the leading ? character alone".
		return "?" + u.RawQuery
	case "@request-target":
		if u.RawQuery != "" || u.ForceQuery {
			return path + "?" + u.RawQuery
		}
		return path
	}
	return ""
}

// p256Order is the order n of P-256.
var p256Order = elliptic.P256().Params().N

// verifyWith checks sig over base with key. A key of the wrong shape is a
// configuration error, not the client's.
func verifyWith(key Key, base, sig []byte) (bool, error) {
	switch key.Alg {
	case AlgEd25519:
		pub, ok := key.Public.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return false, fmt.Errorf("httpsig: key for %s is not an ed25519 public key", key.ClientID)
		}
		// §3.3.6: "The signature is a 64-octet concatenation of R and S".
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, base, sig), nil
	case AlgECDSAP256SHA256:
		pub, ok := key.Public.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return false, fmt.Errorf("httpsig: key for %s is not a P-256 public key", key.ClientID)
		}
		// §3.3.4: "The signature value is the concatenation of r and s,
		// ... each ... 32 octets", not DER.
		if len(sig) != 64 {
			return false, nil
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(p256Order) >= 0 || s.Cmp(p256Order) >= 0 {
			return false, nil
		}
		digest := sha256.Sum256(base)
		return ecdsa.Verify(pub, digest[:], r, s), nil
	case AlgHMACSHA256:
		if len(key.HMACSecret) == 0 {
			return false, fmt.Errorf("httpsig: key for %s has no hmac secret", key.ClientID)
		}
		m := hmac.New(sha256.New, key.HMACSecret)
		m.Write(base)
		// Compared in constant time (§3.3.3 is a MAC).
		return hmac.Equal(m.Sum(nil), sig), nil
	}
	return false, fmt.Errorf("httpsig: key for %s has unsupported alg %q", key.ClientID, key.Alg)
}
