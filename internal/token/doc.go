// Package token mints and verifies keygate's access tokens, manages the
// keys that sign them, serves them as a JWK Set, and keeps the revocation
// index every node consults.
//
// Access tokens follow the JWT profile of RFC 9068: a compact JWS
// (RFC 7515) with header typ "at+jwt" (§2.1), alg and kid, carrying iss,
// sub, aud, client_id, scope, exp, iat and jti (§2.2), plus sid for tokens
// of a refresh family and cnf.jkt (RFC 9449 §6) when DPoP-bound. They are
// signed with ES256 or EdDSA (RFC 7518 §3.4, RFC 8037); keys are published
// as a JWK Set (RFC 7517 §5) and named by their RFC 7638 thumbprint.
//
// Verification follows the JWT BCP (RFC 8725): the accepted algorithm is
// the one bound to the key, never taken from the token (§3.1); typ is
// checked explicitly so other JWTs cannot be substituted (§3.11); issuer
// and audience are compared exactly (§3.8, §3.9); tokens over 8 KiB are
// refused before any parsing. The JOSE header is parsed here and signatures
// are checked with crypto/ecdsa and crypto/ed25519 directly, because the
// verifier sits on the proxy's hot path and needs only this one narrow
// profile; minting uses go-jose.
//
// Signing keys move through three states, kept in the signing_keys table
// with the private keys sealed in the vault: next (published, not signing),
// current (signing) and retired (published until access TTL + 5 minutes
// after it stopped signing, then deleted). A key is published as next for a
// whole rotation period before it signs, well over one JWKS cache lifetime.
//
// Revocation is an append-only log in the database (kinds jti, subject,
// client, family) that every node replays into an in-memory index; see
// Revocations.
package token
