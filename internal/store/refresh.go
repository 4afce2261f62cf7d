package store

// RefreshStore keeps refresh token families.
type RefreshStore interface{}

// ReplayStore remembers one-time identifiers (jti, nonces) until they expire.
type ReplayStore interface{}
