package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the command line with stdin and returns stdout and the error.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Execute(t.Context(), Env{
		Args:   args,
		Getenv: func(k string) string { return env[k] },
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errOut,
	})
	return out.String(), err
}

func writeConfig(t *testing.T, dir string) string {
	t.Helper()
	cfg := `issuer: https://api.example.com
database: "sqlite://` + dir + `/keygate.db"
master_key_file: ` + dir + `/master.key
upstreams:
  - name: openai
    url: https://api.openai.com
    auth: { type: bearer, secret: openai-key }
    routes:
      - { methods: [POST], path: /v1/chat/completions, scope: chat }
`
	path := filepath.Join(dir, "keygate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSecretLifecycle(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"KEYGATE_CONFIG": writeConfig(t, dir)}

	out, err := runCLI(t, env, "", "init")
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	if !strings.Contains(out, "created master key") {
		t.Errorf("init output = %q", out)
	}
	if st, err := os.Stat(filepath.Join(dir, "master.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v, mode %v", err, st.Mode())
	}
	if _, err := runCLI(t, env, "", "init"); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second init err = %v, want refusal to overwrite", err)
	}

	if _, err := runCLI(t, env, "", "check"); err == nil || !strings.Contains(err.Error(), "openai-key") {
		t.Errorf("check before put err = %v, want it to name the missing secret", err)
	}

	const value = "sk-live-UNIQUE-7f3a9c"
	if out, err := runCLI(t, env, value, "secret", "put", "openai-key"); err != nil || !strings.Contains(out, "version 1") {
		t.Fatalf("secret put: %q, %v", out, err)
	}
	if out, err := runCLI(t, env, "", "check"); err != nil || strings.TrimSpace(out) != "ok" {
		t.Errorf("check = %q, %v; want ok", out, err)
	}
	if out, err := runCLI(t, env, value+"-2\n", "secret", "rotate", "openai-key"); err != nil || !strings.Contains(out, "version 2") {
		t.Fatalf("secret rotate: %q, %v", out, err)
	}
	out, err = runCLI(t, env, "", "secret", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "openai-key") || strings.Contains(out, "sk-live") {
		t.Errorf("secret list = %q: want the name and never the value", out)
	}

	// The value appears nowhere in the data directory: database, WAL, key.
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte("sk-live-UNIQUE")) {
			t.Errorf("%s contains the secret value in plaintext", path)
		}
		return nil
	})

	// A wrong master key cannot read it.
	other := t.TempDir()
	wrong := filepath.Join(other, "wrong.key")
	os.WriteFile(wrong, []byte("1:"+strings.Repeat("A", 43)+"=\n"), 0o600)
	envWrong := map[string]string{"KEYGATE_CONFIG": env["KEYGATE_CONFIG"], "KEYGATE_MASTER_KEY": strings.Repeat("B", 43) + "="}
	if _, err := runCLI(t, envWrong, "", "secret", "list"); err == nil || !strings.Contains(err.Error(), "master key does not match") {
		t.Errorf("wrong master key err = %v, want master key mismatch", err)
	}

	if out, err := runCLI(t, env, "", "secret", "rm", "openai-key"); err != nil || !strings.Contains(out, "deleted") {
		t.Errorf("secret rm = %q, %v", out, err)
	}
}

func TestSecretValueFromArgsRefused(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"KEYGATE_CONFIG": writeConfig(t, dir)}
	_, err := runCLI(t, env, "", "secret", "put", "openai-key", "sk-live-in-argv")
	if err == nil || !strings.Contains(err.Error(), "never taken from arguments") {
		t.Fatalf("err = %v, want refusal explaining why", err)
	}
	if strings.Contains(err.Error(), "sk-live-in-argv") {
		t.Errorf("error echoes the value: %v", err)
	}
}

func TestSecretFromEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"KEYGATE_CONFIG": writeConfig(t, dir), "MY_KEY": "from-env-value"}
	if _, err := runCLI(t, env, "", "init"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, env, "", "secret", "put", "a", "--from-env", "MY_KEY"); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "v.txt")
	os.WriteFile(f, []byte("from-file\n"), 0o600)
	if _, err := runCLI(t, env, "", "secret", "put", "b", "--from-file", f); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, env, "", "secret", "put", "c", "--from-env", "UNSET"); err == nil {
		t.Error("empty env var accepted")
	}
	if _, err := runCLI(t, env, "", "secret", "rotate", "nope"); err == nil || !strings.Contains(err.Error(), "no such secret") {
		t.Errorf("rotate of a missing secret err = %v", err)
	}
}

func TestBadInputsExitWithOneLine(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("issuer: https://x.example\nlistn: :8080\n"), 0o600)
	loose := filepath.Join(dir, "loose.key")
	os.WriteFile(loose, []byte(strings.Repeat("A", 43)+"=\n"), 0o644)
	looseCfg := filepath.Join(dir, "loose.yaml")
	os.WriteFile(looseCfg, []byte("issuer: https://x.example\ndatabase: sqlite://"+dir+"/l.db\nmaster_key_file: "+loose+"\n"), 0o600)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown key", map[string]string{"KEYGATE_CONFIG": bad}, []string{"check"}, `"listn"`},
		{"missing config", map[string]string{"KEYGATE_CONFIG": filepath.Join(dir, "none.yaml")}, []string{"check"}, "no such file"},
		{"world-readable master key", map[string]string{"KEYGATE_CONFIG": looseCfg}, []string{"secret", "list"}, "0600"},
		{"unreachable database", map[string]string{"KEYGATE_CONFIG": cfgPath, "KEYGATE_DATABASE": "postgres://u:pw-secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "KEYGATE_MASTER_KEY": strings.Repeat("A", 43) + "="}, []string{"secret", "list"}, "cannot connect"},
		{"sqlite directory missing", map[string]string{"KEYGATE_CONFIG": cfgPath, "KEYGATE_DATABASE": "sqlite://" + dir + "/no/such/dir/k.db", "KEYGATE_MASTER_KEY": strings.Repeat("A", 43) + "="}, []string{"migrate"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCLI(t, tt.env, "", tt.args...)
			if err == nil {
				t.Fatal("succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "pw-secret") {
				t.Errorf("err leaks a password: %v", err)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, nil, "", "version")
	if err != nil || !strings.HasPrefix(out, "keygate ") || !strings.Contains(out, "go1.") {
		t.Errorf("version = %q, %v", out, err)
	}
}

var _ = context.Background

func TestKeyRotateAndTokenRevoke(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"KEYGATE_CONFIG": writeConfig(t, dir)}
	if _, err := runCLI(t, env, "", "init"); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, env, "", "key", "rotate")
	if err != nil || !strings.Contains(out, "now signs") {
		t.Fatalf("key rotate = %q, %v", out, err)
	}
	out, err = runCLI(t, env, "", "token", "revoke", "--subject", "google|123")
	if err != nil || !strings.Contains(out, "revoked subject google|123") {
		t.Fatalf("token revoke = %q, %v", out, err)
	}
	if _, err := runCLI(t, env, "", "token", "revoke"); err == nil {
		t.Error("token revoke without a selector succeeded")
	}
	if _, err := runCLI(t, env, "", "token", "revoke", "--subject", "a", "--client", "b"); err == nil {
		t.Error("token revoke with two selectors succeeded")
	}
}

func TestVaultRotateMaster(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"KEYGATE_CONFIG": writeConfig(t, dir)}
	if _, err := runCLI(t, env, "", "init"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, env, "sk-live-rotate-me", "secret", "put", "openai-key"); err != nil {
		t.Fatal(err)
	}
	oldKey, _ := os.ReadFile(filepath.Join(dir, "master.key"))
	out, err := runCLI(t, env, "", "vault", "rotate-master")
	if err != nil || !strings.Contains(out, "version 2") {
		t.Fatalf("rotate-master = %q, %v", out, err)
	}
	newKey, _ := os.ReadFile(filepath.Join(dir, "master.key"))
	var versions []string
	for _, line := range strings.Split(string(newKey), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			versions = append(versions, strings.SplitN(line, ":", 2)[0])
		}
	}
	if bytes.Equal(oldKey, newKey) || len(versions) != 1 || versions[0] != "2" {
		t.Errorf("master key file after rotation holds versions %v, want only 2", versions)
	}
	if st, _ := os.Stat(filepath.Join(dir, "master.key")); st.Mode().Perm() != 0o600 {
		t.Errorf("master key mode %v, want 0600", st.Mode().Perm())
	}
	if out, err := runCLI(t, env, "", "check"); err != nil || strings.TrimSpace(out) != "ok" {
		t.Errorf("check after rotation = %q, %v (the secret must still be readable)", out, err)
	}
	// The old key no longer opens the vault.
	oldFile := filepath.Join(dir, "old.key")
	os.WriteFile(oldFile, oldKey, 0o600)
	var oldValue string
	for _, line := range strings.Split(string(oldKey), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			oldValue = line
		}
	}
	oldEnv := map[string]string{"KEYGATE_CONFIG": env["KEYGATE_CONFIG"], "KEYGATE_MASTER_KEY": oldValue}
	if _, err := runCLI(t, oldEnv, "", "secret", "list"); err == nil {
		t.Error("the retired master key still opens the vault")
	}
	// With the key in an environment variable there is no file to rewrite.
	if _, err := runCLI(t, oldEnv, "", "vault", "rotate-master"); err == nil || !strings.Contains(err.Error(), "master_key_file") {
		t.Errorf("rotate-master with KEYGATE_MASTER_KEY err = %v", err)
	}
}
