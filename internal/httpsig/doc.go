// Package httpsig verifies HTTP Message Signatures (RFC 9421) on requests
// from keygate's confidential backends, with Content-Digest (RFC 9530)
// binding the body.
//
// Only the profile keygate needs is implemented (DESIGN.md, "Signed
// requests"):
//
//   - exactly one signature per request: Signature-Input and Signature must
//     each be a dictionary with one member, under the same label. RFC 9421
//     §3.2 lets a verifier choose which of several signatures to check;
//     keygate refuses the ambiguity instead of picking one;
//   - covered components @method, @target-uri and, when the request has
//     content, content-digest are required; @authority, @scheme, @path,
//     @query, @request-target and plain header fields may be covered too;
//     component parameters (sf, key, bs, req, tr, name) are refused;
//   - parameters created and nonce and keyid are required, expires and alg
//     are honoured, tag is allowed; anything else is refused;
//   - algorithms ed25519 (§3.3.6), ecdsa-p256-sha256 (§3.3.4, raw r||s) and
//     hmac-sha256 (§3.3.3);
//   - created within ±window of now, and each (keyid, nonce) accepted once
//     across all nodes through a ReplayStore (§7.2.2).
//
// The RFC 8941 structured-field parsing is a small strict parser written
// here for exactly this subset: the general-purpose libraries parse far more
// than is needed, and every extra production is attack surface on a path
// any client can reach. Header values are capped at MaxHeaderSize before
// parsing.
//
// Bodies are buffered, not streamed: the proxy reads at most the upstream's
// max_request_body (ReadBody), checks Content-Digest against the bytes, and
// forwards the same bytes. A streaming digest check would learn of a
// mismatch only after the upstream had begun acting on the body.
package httpsig
