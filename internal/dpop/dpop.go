package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"hash/maphash"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Defaults and limits.
const (
	// DefaultWindow is how far iat may be from now, either way, and so how
	// long a jti is remembered.
	DefaultWindow = 60 * time.Second
	// MaxProofSize bounds a DPoP header value, checked before parsing.
	MaxProofSize = 8 << 10
	// MaxJTILength bounds the jti claim.
	MaxJTILength = 256
	// NonceKeySize is the length of Config.NonceKey.
	NonceKeySize = 32

	replayNamespace = "dpop"
)

// SupportedAlgorithms are the JWS algorithms a Verifier can accept, and the
// default for Config.Algorithms. Both are asymmetric (RFC 9449 §4.3 check 5:
// "not none", "not ... a symmetric algorithm").
var SupportedAlgorithms = []string{"ES256", "EdDSA"}

// ReplayStore remembers one-time identifiers across all nodes. Remember
// reports fresh = true for the first caller with (namespace, id) while the
// entry lives, false to every other caller, racing or not.
type ReplayStore interface {
	Remember(ctx context.Context, namespace, id string, expiresAt time.Time) (fresh bool, err error)
}

// Config configures a Verifier.
type Config struct {
	// Window bounds |now - iat| and is how long a jti is remembered;
	// DefaultWindow when zero.
	Window time.Duration
	// Algorithms are the accepted JWS algs, a subset of
	// SupportedAlgorithms; all of them when empty.
	Algorithms []string
	// NonceKey, NonceKeySize bytes shared by all nodes, turns server
	// nonces on; nil turns them off.
	NonceKey []byte
	// RequireNonce refuses proofs without a nonce (ErrUseNonce). It needs
	// NonceKey. Without it, a nonce is checked when present.
	RequireNonce bool
}

// Verifier checks DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	window   time.Duration
	es256    bool
	eddsa    bool
	nonces   *nonceSealer // nil: nonces off
	required bool
	replay   ReplayStore
	seen     seenCache
	keys     keyCache
	now      func() time.Time
}

// NewVerifier returns a Verifier. It panics on a configuration that is a
// programming error: an alg outside SupportedAlgorithms, a NonceKey that is
// not NonceKeySize bytes, or RequireNonce without a NonceKey.
func NewVerifier(cfg Config, replay ReplayStore, now func() time.Time) *Verifier {
	v := &Verifier{window: cfg.Window, replay: replay, now: now, required: cfg.RequireNonce}
	v.keys.seed = maphash.MakeSeed()
	if v.window <= 0 {
		v.window = DefaultWindow
	}
	if v.now == nil {
		v.now = time.Now
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = SupportedAlgorithms
	}
	for _, a := range algs {
		switch a {
		case "ES256":
			v.es256 = true
		case "EdDSA":
			v.eddsa = true
		default:
			panic(fmt.Sprintf("dpop: unsupported algorithm %q", a))
		}
	}
	switch {
	case cfg.NonceKey != nil && len(cfg.NonceKey) != NonceKeySize:
		panic(fmt.Sprintf("dpop: nonce key must be %d bytes", NonceKeySize))
	case cfg.NonceKey != nil:
		v.nonces = newNonceSealer(cfg.NonceKey)
	case cfg.RequireNonce:
		panic("dpop: RequireNonce needs a NonceKey")
	}
	return v
}

// Request is what Verify needs to know about the HTTP request.
type Request struct {
	// Proofs are all values of the DPoP header field (r.Header.Values).
	Proofs []string
	// Method is the request method.
	Method string
	// URL is the configured public origin plus the request path, as the
	// client addressed it. Never build it from Host: that is the client's
	// to choose. A query is allowed and ignored.
	URL string
	// AccessToken is the DPoP access token of the request; "" at the token
	// endpoint, where no ath is expected.
	AccessToken string
}

// Proof is a verified DPoP proof.
type Proof struct {
	JKT       string // RFC 7638 thumbprint of the proof's jwk (RFC 9449 §6.1)
	JTI       string
	IssuedAt  time.Time
	Alg       string
	NextNonce string // when nonces are on and the client should switch: send as DPoP-Nonce
}

// NewNonce returns a fresh server nonce for a DPoP-Nonce header (RFC 9449
// §8.1), or "" when nonces are off.
func (v *Verifier) NewNonce() string {
	if v.nonces == nil {
		return ""
	}
	return v.nonces.seal(v.now())
}

// Algorithms returns the accepted algs, for dpop_signing_alg_values_supported
// (RFC 9449 §5.1) and the algs challenge parameter (§7.1).
func (v *Verifier) Algorithms() []string {
	var algs []string
	if v.es256 {
		algs = append(algs, "ES256")
	}
	if v.eddsa {
		algs = append(algs, "EdDSA")
	}
	return algs
}

type header struct {
	typ, alg string
	jwk      []byte
	crit     bool
}

type claims struct {
	jti, htm, htu, ath, nonce string
	iat                       float64
	hasIAT                    bool
}

// Verify checks the DPoP proof of req per RFC 9449 §4.3 and remembers it so
// that it is never accepted again. A rejection wraps ErrInvalidProof (and
// may be ErrReplay or wrap ErrUseNonce); any other error is the
// ReplayStore's and means the check could not be made.
func (v *Verifier) Verify(ctx context.Context, req Request) (*Proof, error) {
	// §4.3 check 1: "There is not more than one DPoP HTTP request header
	// field."
	switch len(req.Proofs) {
	case 0:
		return nil, errNoProof
	case 1:
	default:
		return nil, errManyProofs
	}
	jws := req.Proofs[0]
	if len(jws) > MaxProofSize {
		return nil, errTooLarge
	}

	// §4.3 check 2: "The DPoP HTTP request header field value is a single
	// well-formed JWT." A compact JWS is three base64url parts (RFC 7515
	// §7.1).
	d1 := strings.IndexByte(jws, '.')
	if d1 < 0 {
		return nil, errNotJWS
	}
	d2 := d1 + 1 + strings.IndexByte(jws[d1+1:], '.')
	if d2 <= d1 || strings.IndexByte(jws[d2+1:], '.') >= 0 {
		return nil, errNotJWS
	}
	hPart, cPart, sPart := jws[:d1], jws[d1+1:d2], jws[d2+1:]
	if hPart == "" || cPart == "" || sPart == "" || !isB64URL(hPart) || !isB64URL(cPart) || !isB64URL(sPart) {
		return nil, errEncoding
	}
	// A header seen before is the same bytes that passed checks 4, 5 and
	// 7 then (keyCache); otherwise it is decoded and checked here.
	vh := v.keys.get(hPart)
	hLen := 0
	if vh == nil {
		hLen = b64.DecodedLen(len(hPart))
	}
	buf := make([]byte, hLen+b64.DecodedLen(len(cPart))+b64.DecodedLen(len(sPart)))
	var hJSON []byte
	rest := buf
	var err error
	if vh == nil {
		if hJSON, rest, err = decodeInto(rest, hPart); err != nil {
			return nil, err
		}
	}
	cJSON, rest, err := decodeInto(rest, cPart)
	if err != nil {
		return nil, err
	}
	sig, _, err := decodeInto(rest, sPart)
	if err != nil {
		return nil, err
	}
	if vh == nil {
		if vh, err = v.checkHeader(hJSON); err != nil {
			return nil, err
		}
		v.keys.add(hPart, vh)
	}
	// §4.3 check 6: "the JWT signature verifies with the public key
	// contained in the jwk JOSE Header Parameter".
	if !verifySignature(vh.alg, vh.pub, jws[:d2], sig) {
		return nil, errSignature
	}

	c, err := parseClaims(cJSON)
	if err != nil {
		return nil, err
	}
	// §4.3 check 3: "All required claims per Section 4.2 are contained in
	// the JWT."
	switch {
	case c.jti == "":
		return nil, errNoJTI
	case len(c.jti) > MaxJTILength:
		return nil, errLongJTI
	case c.htm == "":
		return nil, errNoHTM
	case c.htu == "":
		return nil, errNoHTU
	case !c.hasIAT:
		return nil, errNoIAT
	}
	// §4.3 check 8: "The htm claim matches the HTTP method of the current
	// request."
	if c.htm != req.Method {
		return nil, errHTM
	}
	// §4.3 check 9: "The htu claim matches the HTTP URI value for the HTTP
	// request in which the JWT was received, ignoring any query and
	// fragment parts."
	want, err := normalizeURI(req.URL)
	if err != nil {
		return nil, errRequestURL
	}
	got, err := normalizeURI(c.htu)
	if err != nil {
		return nil, errBadHTU
	}
	if got != want {
		return nil, errHTU
	}
	// §4.3 check 11: "The creation time of the JWT, as determined by either
	// the iat claim or a server managed timestamp via the nonce claim, is
	// within an acceptable window (see Section 11.1)."
	now := v.now()
	sec, frac := math.Modf(c.iat)
	iat := time.Unix(int64(sec), int64(frac*1e9))
	if now.Sub(iat) > v.window {
		return nil, errIATOld
	}
	if iat.Sub(now) > v.window {
		return nil, errIATFuture
	}
	// §4.3 check 12: "the value of the ath claim equals the hash of that
	// access token".
	if req.AccessToken != "" {
		if c.ath == "" {
			return nil, errNoATH
		}
		sum := sha256.Sum256([]byte(req.AccessToken))
		var enc [43]byte
		b64.Encode(enc[:], sum[:])
		if subtle.ConstantTimeCompare(enc[:], []byte(c.ath)) != 1 {
			return nil, errATH
		}
	}

	jkt := vh.jkt
	proof := &Proof{JKT: jkt, JTI: c.jti, IssuedAt: iat, Alg: vh.alg}

	// §4.3 check 10: "If the server provided a nonce value to the client,
	// the nonce claim matches the server-provided nonce value."
	if v.nonces != nil {
		if c.nonce == "" {
			if v.required {
				return nil, errNonceMissing
			}
			proof.NextNonce = v.nonces.seal(now)
		} else {
			// A nonce minted up to a window ahead of this node's clock
			// is another node's whose clock runs ahead, not a forgery.
			issued, ok := v.nonces.open(c.nonce)
			switch {
			case !ok || issued.After(now.Add(v.window)):
				return nil, errNonceInvalid
			case now.Sub(issued) > NonceLifetime:
				return nil, errNonceExpired
			case now.Sub(issued) > NonceLifetime/2:
				proof.NextNonce = v.nonces.seal(now)
			}
		}
	}

	// §11.1: "the server MUST ensure that DPoP proofs are not replayed by
	// ... storing, in the context of the target URI, the jti value of each
	// DPoP proof for the time window in which the respective DPoP proof JWT
	// would be accepted." The id is bound to the key so that one client
	// cannot burn another's jti, and hashed to bound its size. Past
	// iat+window the iat check refuses the proof, so the entry may go then;
	// the extra second covers the store's millisecond clock.
	id := replayID(jkt, c.jti)
	expires := iat.Add(v.window + time.Second)
	if v.seen.seen(&id, now) {
		return nil, ErrReplay
	}
	fresh, err := v.replay.Remember(ctx, replayNamespace, b64.EncodeToString(id[:]), expires)
	if err != nil {
		return nil, fmt.Errorf("remember dpop jti: %w", err)
	}
	v.seen.add(&id, expires, now)
	if !fresh {
		return nil, ErrReplay
	}
	return proof, nil
}

// checkHeader applies the checks of §4.3 on the protected header hJSON
// and returns what it yields.
func (v *Verifier) checkHeader(hJSON []byte) (*verifiedHeader, error) {
	h, err := parseHeader(hJSON)
	if err != nil {
		return nil, err
	}
	// §4.3 check 4: "the typ JOSE Header Parameter has the value dpop+jwt".
	if h.typ != "dpop+jwt" {
		return nil, errTyp
	}
	// §4.3 check 5: "the alg JOSE Header Parameter indicates a registered
	// asymmetric digital signature algorithm [IANA.JOSE.ALGS], is not none,
	// is supported by the application, and is acceptable per local policy".
	// RFC 9864 §2.2 registers "Ed25519" as the fully-specified name of
	// EdDSA over Ed25519, the only EdDSA curve accepted here; current
	// clients (npm dpop, oauth4webapi) send it, so both names are taken.
	if !(h.alg == "ES256" && v.es256 || (h.alg == "EdDSA" || h.alg == "Ed25519") && v.eddsa) {
		return nil, errAlg
	}
	// RFC 7515 §4.1.11: a recipient MUST reject a JWS whose crit lists an
	// extension it does not understand; this one understands none.
	if h.crit {
		return nil, errCrit
	}
	if h.jwk == nil {
		return nil, errNoJWK
	}
	key, err := parseJWK(h.jwk)
	if err != nil {
		return nil, err
	}
	// §4.3 check 7: "the JWK ... does not contain a private key"; its type
	// must fit the alg and its point lie on the curve.
	pub, err := key.publicKey(h.alg)
	if err != nil {
		return nil, err
	}
	// publicKey accepted only EC and OKP keys with every required member,
	// so the thumbprint cannot fail here.
	jkt, err := key.thumbprint()
	if err != nil {
		return nil, errJWKKey
	}
	return &verifiedHeader{alg: h.alg, pub: pub, jkt: jkt}, nil
}

func replayID(jkt, jti string) [32]byte {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var id [32]byte
	h.Sum(id[:0])
	return id
}

// decodeInto decodes s into the front of buf and returns the decoded bytes
// and the rest of buf.
func decodeInto(buf []byte, s string) (dec, rest []byte, err error) {
	n, err := b64.Decode(buf, []byte(s))
	if err != nil {
		return nil, nil, errEncoding
	}
	return buf[:n:n], buf[n:], nil
}

func parseHeader(data []byte) (header, error) {
	var h header
	var seen uint
	err := eachMember(data, func(key string, kind jsonKind, raw []byte) error {
		var bit uint
		switch key {
		case "typ":
			bit = 1
		case "alg":
			bit = 2
		case "jwk":
			bit = 4
		case "crit":
			h.crit = true
			return nil
		default:
			return nil
		}
		if seen&bit != 0 {
			return errDuplicate
		}
		seen |= bit
		if key == "jwk" {
			if kind != kindObject {
				return errMemberType
			}
			h.jwk = raw
			return nil
		}
		if kind != kindString {
			return errMemberType
		}
		s, err := jsonString(raw)
		if key == "typ" {
			h.typ = s
		} else {
			h.alg = s
		}
		return err
	})
	if err == errJSON {
		err = errHeaderJSON
	}
	return h, err
}

func parseClaims(data []byte) (claims, error) {
	var c claims
	var seen uint
	err := eachMember(data, func(key string, kind jsonKind, raw []byte) error {
		var dst *string
		var bit uint
		switch key {
		case "jti":
			dst, bit = &c.jti, 1
		case "htm":
			dst, bit = &c.htm, 2
		case "htu":
			dst, bit = &c.htu, 4
		case "ath":
			dst, bit = &c.ath, 8
		case "nonce":
			dst, bit = &c.nonce, 16
		case "iat":
			bit = 32
		default:
			return nil
		}
		if seen&bit != 0 {
			return errDuplicate
		}
		seen |= bit
		if key == "iat" {
			// RFC 7519 §2: NumericDate, seconds, possibly fractional.
			if kind != kindNumber {
				return errMemberType
			}
			f, err := strconv.ParseFloat(string(raw), 64)
			if err != nil || f < 0 || f > 1<<40 {
				return errMemberType
			}
			c.iat, c.hasIAT = f, true
			return nil
		}
		if kind != kindString {
			return errMemberType
		}
		s, err := jsonString(raw)
		*dst = s
		return err
	})
	if err == errJSON {
		err = errClaimsJSON
	}
	return c, err
}

// p256Order is the order n of P-256.
var p256Order = mustHex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")

func verifySignature(alg string, pub any, signingInput string, sig []byte) bool {
	switch alg {
	case "ES256":
		// RFC 7518 §3.4: the signature is R || S, each 32 bytes, big
		// endian; both must be in [1, n-1].
		if len(sig) != 64 || !inScalarRange(sig[:32]) || !inScalarRange(sig[32:]) {
			return false
		}
		digest := sha256.Sum256([]byte(signingInput))
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pub.(*ecdsa.PublicKey), digest[:], r, s)
	case "EdDSA", "Ed25519":
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(pub.(ed25519.PublicKey), []byte(signingInput), sig)
	}
	return false
}

// inScalarRange reports whether the 32-byte big-endian x is in [1, n-1].
func inScalarRange(x []byte) bool {
	zero := true
	for _, c := range x {
		if c != 0 {
			zero = false
			break
		}
	}
	if zero {
		return false
	}
	for i := range x {
		if x[i] != p256Order[i] {
			return x[i] < p256Order[i]
		}
	}
	return false // x == n
}

func mustHex(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		b[i] = unhex(s[2*i])<<4 | unhex(s[2*i+1])
	}
	return b
}
