package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"

	"github.com/keygate/keygate/internal/vault"
)

// SeedDev stores dev mode's demo secrets on first start: the echo
// upstream's key and dev-backend's client secret, which is also written to
// secretFile (0600) so the walk-through can use it.
func SeedDev(ctx context.Context, v *vault.Vault, secretFile string) error {
	if _, _, err := v.Get(ctx, "echo-key"); errors.Is(err, vault.ErrNotFound) {
		if _, err := v.Put(ctx, "echo-key", vault.NewSecret([]byte("demo-upstream-key-"+randomString(12)))); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
	} else if err != nil {
		return err
	}
	_, _, err := v.Get(ctx, "clients/dev-backend")
	_, statErr := os.Stat(secretFile)
	if errors.Is(err, vault.ErrNotFound) || statErr != nil {
		secret := "kgs_" + randomString(32)
		if _, err := v.Put(ctx, "clients/dev-backend", vault.NewSecret([]byte(secret))); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
			return fmt.Errorf("dev: write %s: %w", secretFile, err)
		}
	} else if err != nil {
		return err
	}
	return nil
}

// randomString returns n random bytes, base64url encoded.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
