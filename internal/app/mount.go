package app

import (
	"context"
	"net/http"
)

// mount adds the token service and proxy to the public mux.
func (a *App) mount(ctx context.Context, mux *http.ServeMux) error {
	return nil
}
