// Package dpop verifies OAuth 2.0 DPoP proofs (RFC 9449) for keygate's
// token endpoint and proxy.
//
// A Verifier applies the checks of RFC 9449 §4.3 to the single DPoP header
// of a request: a well-formed compact JWS (RFC 7515 §7.1) with typ
// "dpop+jwt", an allowed asymmetric alg (ES256 or EdDSA, the latter also
// under its RFC 9864 name Ed25519; never "none", never a MAC, per RFC 8725
// §3.1), a public jwk whose type and curve match the alg and whose point is
// on the curve (RFC 8725 §3.4), a valid signature, and the
// claims jti, htm, htu, iat, ath (§4.2, §4.3) and, when configured, a server
// nonce (§8, §9). Every proof is accepted once: its jti is remembered in a
// ReplayStore shared by all nodes (§11.1), with a small in-memory cache in
// front that turns away repeats seen by this node without a database round
// trip.
//
// Server nonces are stateless: a nonce is a timestamp sealed with
// HMAC-SHA-256 under a key all nodes share, so any node accepts any node's
// nonce and nothing is stored.
//
// Thumbprint computes RFC 7638 JWK thumbprints, the jkt that binds tokens to
// a key (RFC 9449 §6.1).
//
// The JOSE parsing is written by hand rather than with go-jose: a proof is
// parsed on every proxied request, the accepted subset is tiny, and a strict
// case-sensitive JSON reader that rejects duplicate members leaves no room
// for the parser differentials RFC 8725 §2.8 warns about.
package dpop
