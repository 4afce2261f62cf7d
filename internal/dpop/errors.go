package dpop

import "errors"

// ErrInvalidProof is wrapped by every proof rejection. The error text names
// the failed check and is safe to send as error_description; it never
// contains the proof, a token or a key.
var ErrInvalidProof = errors.New("invalid dpop proof")

// ErrReplay reports a proof whose jti was already accepted (RFC 9449 §11.1).
// It wraps ErrInvalidProof.
var ErrReplay error = &proofError{msg: "invalid dpop proof: jti already used", kind: ErrInvalidProof}

// ErrUseNonce reports a missing, expired or unknown server nonce (RFC 9449
// §8, §9). It wraps ErrInvalidProof, so test for it first: the caller answers
// error "use_dpop_nonce" with a fresh DPoP-Nonce header from NewNonce
// instead of "invalid_dpop_proof".
var ErrUseNonce error = &proofError{msg: "dpop nonce required", kind: ErrInvalidProof}

// proofError is a rejection with a fixed text. The reasons are package-level
// values so that turning away garbage costs no allocation.
type proofError struct {
	msg  string
	kind error
}

func (e *proofError) Error() string { return e.msg }
func (e *proofError) Unwrap() error { return e.kind }

func invalid(reason string) error {
	return &proofError{msg: "invalid dpop proof: " + reason, kind: ErrInvalidProof}
}

func useNonce(reason string) error {
	return &proofError{msg: "dpop nonce required: " + reason, kind: ErrUseNonce}
}

var (
	errNoProof      = invalid("missing DPoP header")
	errManyProofs   = invalid("more than one DPoP header")
	errTooLarge     = invalid("proof longer than 8 KiB")
	errNotJWS       = invalid("not a compact JWS")
	errEncoding     = invalid("bad base64url encoding")
	errHeaderJSON   = invalid("header is not a JSON object")
	errClaimsJSON   = invalid("claims are not a JSON object")
	errDuplicate    = invalid("duplicate JSON member")
	errMemberType   = invalid("JSON member has the wrong type")
	errTyp          = invalid("typ is not dpop+jwt")
	errAlg          = invalid("alg not allowed")
	errCrit         = invalid("crit header not supported")
	errNoJWK        = invalid("jwk header missing")
	errJWKJSON      = invalid("jwk is malformed")
	errPrivateJWK   = invalid("jwk contains private key material")
	errJWKType      = invalid("jwk kty or crv does not match alg")
	errJWKKey       = invalid("jwk is not a valid public key")
	errSignature    = invalid("signature does not verify")
	errNoJTI        = invalid("jti missing")
	errLongJTI      = invalid("jti longer than 256 characters")
	errNoHTM        = invalid("htm missing")
	errHTM          = invalid("htm does not match the request method")
	errNoHTU        = invalid("htu missing")
	errBadHTU       = invalid("htu is not a valid http(s) URI")
	errHTU          = invalid("htu does not match the request URI")
	errNoIAT        = invalid("iat missing")
	errIATOld       = invalid("iat too far in the past")
	errIATFuture    = invalid("iat too far in the future")
	errNoATH        = invalid("ath missing")
	errATH          = invalid("ath does not match the access token")
	errNonceMissing = useNonce("nonce missing")
	errNonceInvalid = useNonce("nonce not issued by this server")
	errNonceExpired = useNonce("nonce expired")
	errRequestURL   = errors.New("dpop: request URL is not a valid http(s) URI")
)
