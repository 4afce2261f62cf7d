package cli

import (
	"fmt"
	"io"

	"github.com/keygate/keygate/internal/config"
)

// printWalkthrough prints the dev-mode curl walk-through for the address the
// public listener actually bound.
func printWalkthrough(w io.Writer, cfg *config.Config, addr string) {
	base := "http://" + addr
	fmt.Fprintf(w, `
keygate dev server on %[1]s (admin %[2]s), data in %[3]s

  curl -s %[1]s/healthz
`, base, cfg.AdminListen, devDataDir)
}
