package idp

import "time"

// Identity is what a verified ID token says about its user.
type Identity struct {
	Provider string // configured identity provider name
	Subject  string // the IdP's sub
	Audience string // the audience that matched
	ACR      string
	AuthTime int64 // 0 when absent
	Expiry   time.Time
}

// KeygateSubject is the subject keygate tokens carry: "{idp}|{sub}".
func (id *Identity) KeygateSubject() string { return id.Provider + "|" + id.Subject }
