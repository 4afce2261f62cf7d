package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/store/backend"
	"github.com/keygate/keygate/internal/vault"
)

func (g *globals) initCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "create the master key file (0600) and migrate the database; refuses to overwrite",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			created := false
			if g.env.Getenv("KEYGATE_MASTER_KEY") == "" {
				if cfg.MasterKeyFile == "" {
					return errors.New("init: set master_key_file in the config (or KEYGATE_MASTER_KEY)")
				}
				if _, err := os.Stat(cfg.MasterKeyFile); err == nil {
					return fmt.Errorf("init: %s already exists; refusing to overwrite a master key", cfg.MasterKeyFile)
				}
				if err := vault.GenerateMasterKeyFile(cfg.MasterKeyFile); err != nil {
					return fmt.Errorf("init: %w", err)
				}
				created = true
			}
			o, err := g.openWith(ctx, cfg)
			if err != nil {
				if created {
					// Nothing half-done: a key that never guarded data goes.
					os.Remove(cfg.MasterKeyFile)
				}
				return fmt.Errorf("init: %w", err)
			}
			defer o.Close()
			out := cmd.OutOrStdout()
			if created {
				fmt.Fprintf(out, "created master key %s (mode 0600): back it up; without it the vault cannot be read\n", cfg.MasterKeyFile)
			}
			fmt.Fprintf(out, "database %s migrated\n", o.store.Backend())
			return nil
		},
	}
}

func (g *globals) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "apply the embedded database migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			st, err := backend.Open(cmd.Context(), cfg.Database)
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "database %s migrated\n", st.Backend())
			return nil
		},
	}
}

func (g *globals) checkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "validate the config and that every secret it names exists",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer o.Close()
			var missing []string
			for _, name := range o.cfg.SecretNames() {
				if _, _, err := o.vault.Get(cmd.Context(), name); err != nil {
					if errors.Is(err, vault.ErrNotFound) {
						missing = append(missing, name)
						continue
					}
					return err
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("config names secrets that are not in the vault: %s (add them with keygate secret put NAME)", strings.Join(missing, ", "))
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
}

func (g *globals) vaultCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "vault", Short: "master key operations"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate-master",
		Short: "add a master key version and re-wrap every data key under it (values untouched)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.env.Getenv("KEYGATE_MASTER_KEY") != "" {
				return errors.New("rotate-master needs master_key_file: a key given in KEYGATE_MASTER_KEY cannot be rewritten; move it into a 0600 file first")
			}
			o, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer o.Close()
			v, err := o.vault.RotateMaster(cmd.Context(), o.cfg.MasterKeyFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "master key is now version %d; every data key re-wrapped\n", v)
			return nil
		},
	})
	return cmd
}
