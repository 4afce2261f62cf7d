// Package cli is keygate's command line: one cobra command per verb in
// DESIGN.md "Binary and commands". Every command fails with one line on
// stderr (printed by main) and a non-zero exit.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/backend"
	"github.com/keygate/keygate/internal/vault"
)

// Version and Commit are set with -ldflags at release time.
var (
	Version = "dev"
	Commit  = ""
)

// Env is everything a command may touch of the outside world.
type Env struct {
	Args   []string
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

type globals struct {
	env        Env
	configPath string
}

// Execute runs the command line in env.
func Execute(ctx context.Context, env Env) error {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	g := &globals{env: env}
	root := &cobra.Command{
		Use:           "keygate",
		Short:         "keygate keeps API keys out of apps: OAuth 2.0 tokens and a credential-injecting proxy",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(env.Args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "config file (default keygate.yaml, env KEYGATE_CONFIG)")
	root.AddCommand(
		g.serveCmd(),
		g.initCmd(),
		g.migrateCmd(),
		g.checkCmd(),
		g.secretCmd(),
		g.vaultCmd(),
		g.adminCmd(),
		g.keyCmd(),
		g.tokenCmd(),
		g.auditCmd(),
		versionCmd(),
	)
	return root.ExecuteContext(ctx)
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			commit := Commit
			if commit == "" {
				if bi, ok := debug.ReadBuildInfo(); ok {
					for _, s := range bi.Settings {
						if s.Key == "vcs.revision" {
							commit = s.Value
						}
					}
				}
			}
			if commit == "" {
				commit = "unknown"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "keygate %s (commit %s, %s)\n", Version, commit, runtime.Version())
			return nil
		},
	}
}

// path returns the config file path: --config, else KEYGATE_CONFIG, else
// keygate.yaml.
func (g *globals) path() string {
	if g.configPath != "" {
		return g.configPath
	}
	if p := g.env.Getenv("KEYGATE_CONFIG"); p != "" {
		return p
	}
	return config.DefaultConfigFile
}

func (g *globals) loadConfig() (*config.Config, error) {
	return config.Load(g.path(), g.env.Getenv)
}

// keyring reads the master keys: KEYGATE_MASTER_KEY when set, else the
// configured master_key_file.
func (g *globals) keyring(cfg *config.Config) (*vault.Keyring, error) {
	if v := g.env.Getenv("KEYGATE_MASTER_KEY"); v != "" {
		kr, err := vault.MasterKeyFromEnv(v)
		if err != nil {
			return nil, fmt.Errorf("KEYGATE_MASTER_KEY: %w", err)
		}
		return kr, nil
	}
	if cfg.MasterKeyFile == "" {
		return nil, errors.New("no master key: set master_key_file in the config or KEYGATE_MASTER_KEY")
	}
	return vault.LoadMasterKeyFile(cfg.MasterKeyFile)
}

// opened is a migrated store and a vault whose master key matches it.
type opened struct {
	cfg   *config.Config
	store store.Store
	vault *vault.Vault
}

func (o *opened) Close() { o.store.Close() }

func (g *globals) open(ctx context.Context) (*opened, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	return g.openWith(ctx, cfg)
}

func (g *globals) openWith(ctx context.Context, cfg *config.Config) (*opened, error) {
	kr, err := g.keyring(cfg)
	if err != nil {
		return nil, err
	}
	st, err := backend.Open(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	v := vault.New(st, kr, nil)
	if g.env.Getenv("KEYGATE_MASTER_KEY") == "" && cfg.MasterKeyFile != "" {
		path := cfg.MasterKeyFile
		v.SetKeyLoader(func() (*vault.Keyring, error) { return vault.LoadMasterKeyFile(path) })
	}
	if err := v.Verify(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return &opened{cfg: cfg, store: st, vault: v}, nil
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
