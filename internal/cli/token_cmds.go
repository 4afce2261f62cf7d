package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

func (g *globals) keyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "signing keys"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "rotate signing keys: next becomes current, current retires, a new next is published",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer o.Close()
			m := token.NewManager(o.store, o.vault, token.ManagerConfig{
				Alg: o.cfg.Tokens.SigningAlg, AccessTTL: o.cfg.Tokens.AccessTokenTTL.Std(), Rotation: o.cfg.Tokens.KeyRotation.Std(),
			}, time.Now, newLogger(g.env.Stderr))
			if err := m.Load(cmd.Context()); err != nil {
				return err
			}
			before := m.CurrentKID()
			if err := m.Rotate(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signing key %s retired; %s now signs (running servers switch within %s)\n",
				before, m.CurrentKID(), token.RefreshInterval)
			return nil
		},
	})
	return cmd
}

func (g *globals) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "token operations"}
	var subject, family, client string
	revoke := &cobra.Command{
		Use:   "revoke",
		Short: "revoke every token of a subject, refresh family or client; effective at once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kind, value, err := oneOf(map[string]string{store.RevokeSubject: subject, store.RevokeFamily: family, store.RevokeClient: client})
			if err != nil {
				return err
			}
			o, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer o.Close()
			rev := token.NewRevocations(o.store, time.Now, newLogger(g.env.Stderr))
			n, err := token.RevokeAll(cmd.Context(), o.store, rev, kind, value, time.Now(), o.cfg.Tokens.AccessTokenTTL.Std())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s %s: %d refresh families; its access tokens are refused from now on\n", kind, value, n)
			return nil
		},
	}
	revoke.Flags().StringVar(&subject, "subject", "", "subject, e.g. google|1234")
	revoke.Flags().StringVar(&family, "family", "", "refresh family id")
	revoke.Flags().StringVar(&client, "client", "", "client id")
	cmd.AddCommand(revoke)
	return cmd
}

// oneOf returns the single non-empty entry of m.
func oneOf(m map[string]string) (string, string, error) {
	var kind, value string
	for k, v := range m {
		if v == "" {
			continue
		}
		if kind != "" {
			return "", "", errors.New("give exactly one of --subject, --family, --client")
		}
		kind, value = k, v
	}
	if kind == "" {
		return "", "", errors.New("give one of --subject, --family, --client")
	}
	return kind, value, nil
}
