package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/vault"
)

// errValueInArgs explains why a secret on the command line is refused.
var errValueInArgs = errors.New("secret values are never taken from arguments (they end up in shell history and ps); pipe the value on stdin, or use --from-file FILE or --from-env VAR")

func (g *globals) secretCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "secret", Short: "manage vault secrets (values from stdin, --from-file or --from-env)"}
	cmd.AddCommand(g.secretPutCmd("put", "store a secret (a new secret or a new version)", false),
		g.secretPutCmd("rotate", "add a new version of an existing secret; the proxy uses it at once", true),
		g.secretListCmd(), g.secretRmCmd())
	return cmd
}

func (g *globals) secretPutCmd(use, short string, mustExist bool) *cobra.Command {
	var fromFile, fromEnv string
	cmd := &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return errValueInArgs
			}
			if len(args) == 0 {
				return errors.New("secret " + use + ": missing NAME")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			o, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer o.Close()
			if mustExist {
				if _, _, err := o.vault.Get(cmd.Context(), name); err != nil {
					if errors.Is(err, vault.ErrNotFound) {
						return fmt.Errorf("secret rotate %s: no such secret (use secret put to create it)", name)
					}
					return err
				}
			}
			value, err := g.readSecretValue(fromFile, fromEnv)
			if err != nil {
				return fmt.Errorf("secret %s %s: %w", use, name, err)
			}
			v, err := o.vault.Put(cmd.Context(), name, vault.NewSecret(value))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored %s version %d\n", name, v)
			return nil
		},
	}
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read the value from FILE")
	cmd.Flags().StringVar(&fromEnv, "from-env", "", "read the value from environment variable VAR")
	return cmd
}

// readSecretValue reads the value from exactly one source. One trailing
// newline (as echo and editors add) is removed.
func (g *globals) readSecretValue(fromFile, fromEnv string) ([]byte, error) {
	var value []byte
	switch {
	case fromFile != "" && fromEnv != "":
		return nil, errors.New("use only one of --from-file and --from-env")
	case fromFile != "":
		b, err := os.ReadFile(fromFile)
		if err != nil {
			return nil, fmt.Errorf("read --from-file: %w", err)
		}
		value = b
	case fromEnv != "":
		v := g.env.Getenv(fromEnv)
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is empty or unset", fromEnv)
		}
		value = []byte(v)
	default:
		if g.env.Stdin == nil {
			return nil, errors.New("no value on stdin")
		}
		b, err := io.ReadAll(io.LimitReader(g.env.Stdin, vault.MaxValueLen+2))
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		value = b
	}
	value = bytes.TrimSuffix(value, []byte("\n"))
	value = bytes.TrimSuffix(value, []byte("\r"))
	if len(value) == 0 {
		return nil, errors.New("empty value")
	}
	if len(value) > vault.MaxValueLen {
		return nil, fmt.Errorf("value longer than %d bytes", vault.MaxValueLen)
	}
	return value, nil
}

func (g *globals) secretListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "list secret names and versions (never values)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer o.Close()
			list, err := o.vault.List(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tVERSIONS\tCREATED\tUPDATED")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", s.Name, s.Latest, s.Versions,
					s.CreatedAt.Format(time.RFC3339), s.UpdatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
}

func (g *globals) secretRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "delete every version of a secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer o.Close()
			if err := o.vault.Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		},
	}
}
