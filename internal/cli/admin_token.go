package cli

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/admin"
	"github.com/keygate/keygate/internal/store"
)

var adminNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (g *globals) adminCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "admin API tokens"}
	tok := &cobra.Command{Use: "token", Short: "create or remove admin API tokens (kga_...)"}
	tok.AddCommand(&cobra.Command{
		Use:   "create NAME",
		Short: "create an admin token; it is printed once and stored hashed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !adminNameRE.MatchString(name) {
				return errors.New("admin token name must match [A-Za-z0-9._-]{1,64}")
			}
			o, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer o.Close()
			token, hash := admin.NewToken()
			err = o.store.CreateAdminToken(cmd.Context(), store.AdminToken{Name: name, Hash: hash, CreatedAt: time.Now()})
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("admin token %q already exists (remove it first with keygate admin token rm %s)", name, name)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), token)
			fmt.Fprintf(cmd.ErrOrStderr(), "admin token %q created; it is shown only this once\n", name)
			return nil
		},
	}, &cobra.Command{
		Use:   "rm NAME",
		Short: "remove an admin token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer o.Close()
			if err := o.store.DeleteAdminToken(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no admin token named %q", args[0])
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed admin token %s\n", args[0])
			return nil
		},
	})
	cmd.AddCommand(tok)
	return cmd
}
