package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/vault"
)

// Dev mode defaults (DESIGN.md "Dev mode").
const (
	devDataDir     = "keygate-dev"
	devListen      = "127.0.0.1:8080"
	devAdminListen = "127.0.0.1:9090"
)

func (g *globals) serveCmd() *cobra.Command {
	var dev bool
	var listen, adminListen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the public listener (tokens + proxy) and the admin listener",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var cfg *config.Config
			var err error
			if dev {
				cfg, err = g.prepareDev(ctx, listen, adminListen)
			} else {
				cfg, err = g.loadConfig()
				if err == nil {
					if listen != "" {
						cfg.Listen = listen
					}
					if adminListen != "" {
						cfg.AdminListen = adminListen
					}
				}
			}
			if err != nil {
				return err
			}
			o, err := g.openWith(ctx, cfg)
			if err != nil {
				return err
			}
			defer o.Close()
			if dev {
				if err := app.SeedDev(ctx, o.vault, filepath.Join(filepath.Dir(cfg.MasterKeyFile), "dev-backend.secret")); err != nil {
					return err
				}
			}
			logger := newLogger(g.env.Stderr)
			opts := app.Options{Dev: dev, Logger: logger}
			if dev {
				opts.Ready = func(pub, adm net.Addr) { printWalkthrough(cmd.OutOrStdout(), pub.String(), adm.String(), devDataDir) }
			}
			a, err := app.New(ctx, cfg, o.store, o.vault, opts)
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
	cmd.Flags().BoolVar(&dev, "dev", false, "zero-config demo on loopback with data in ./"+devDataDir+"/")
	cmd.Flags().StringVar(&listen, "listen", "", "public listen address (overrides the config)")
	cmd.Flags().StringVar(&adminListen, "admin-listen", "", "admin listen address (overrides the config)")
	return cmd
}

// prepareDev creates ./keygate-dev (0700) with a master key on first use and
// returns the dev config. Dev mode binds loopback only.
func (g *globals) prepareDev(_ context.Context, listen, adminListen string) (*config.Config, error) {
	if listen == "" {
		listen = devListen
	}
	if adminListen == "" {
		adminListen = devAdminListen
	}
	for _, addr := range []string{listen, adminListen} {
		if err := requireLoopback(addr); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(devDataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dev: create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	cfg := config.DevConfig(listen, adminListen, dir)
	if _, err := os.Stat(cfg.MasterKeyFile); errors.Is(err, os.ErrNotExist) {
		if err := vault.GenerateMasterKeyFile(cfg.MasterKeyFile); err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dev config: %w", err)
	}
	return cfg, nil
}

func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dev: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("dev: refusing to listen on %q: dev mode binds loopback addresses only", addr)
	}
	return nil
}
