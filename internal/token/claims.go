package token

import "time"

// AccessClaims are the claims of a keygate access token (RFC 9068 JWT
// profile, with cnf.jkt from RFC 9449 when the token is DPoP-bound).
type AccessClaims struct {
	Issuer   string
	Subject  string // "{idp}|{sub}" or "client:{client_id}"
	Audience string // keygate's issuer: the proxy is the resource server
	ClientID string
	Scope    string // space-separated granted scopes
	JTI      string
	SID      string // refresh family id, when minted from a family
	ACR      string // from the ID token, when present
	AuthTime int64  // from the ID token, 0 when absent
	JKT      string // DPoP key thumbprint (cnf.jkt), "" when not bound
	IssuedAt time.Time
	Expiry   time.Time
}
