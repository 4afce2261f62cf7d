package token

import (
	"encoding/json"
	"time"
)

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

// jwtClaims is the JSON form of AccessClaims (RFC 9068 §2.2). NumericDates
// are whole seconds.
type jwtClaims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  json.RawMessage `json:"aud"` // a string when minted; an array is accepted
	ClientID  string          `json:"client_id"`
	Scope     string          `json:"scope,omitempty"`
	Expiry    int64           `json:"exp"`
	IssuedAt  int64           `json:"iat"`
	NotBefore *int64          `json:"nbf,omitempty"`
	JTI       string          `json:"jti"`
	SID       string          `json:"sid,omitempty"`
	ACR       string          `json:"acr,omitempty"`
	AuthTime  int64           `json:"auth_time,omitempty"`
	Cnf       *confirmation   `json:"cnf,omitempty"`
}

// confirmation is the cnf claim (RFC 7800 §3.1) with the DPoP key
// thumbprint member jkt (RFC 9449 §6.1).
type confirmation struct {
	JKT string `json:"jkt,omitempty"`
}
