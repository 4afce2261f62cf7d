package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func key32(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestParseMasterKeys(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString(key32(1))
	k2 := base64.RawURLEncoding.EncodeToString(key32(0xfb)) // has - and _
	short := base64.StdEncoding.EncodeToString(key32(3)[:16])
	tests := []struct {
		name     string
		in       string
		versions []int
		wantErr  string
	}{
		{name: "bare", in: k1 + "\n", versions: []int{1}},
		{name: "bare no newline", in: k1, versions: []int{1}},
		{name: "versioned", in: "1:" + k1 + "\n2:" + k2 + "\n", versions: []int{1, 2}},
		{name: "comments and blanks", in: "# keys\n\n  3:" + k2 + "  \r\n# end\n", versions: []int{3}},
		{name: "raw url", in: k2, versions: []int{1}},
		{name: "empty", in: "", wantErr: "no master key"},
		{name: "only comments", in: "# nothing\n", wantErr: "no master key"},
		{name: "duplicate", in: "1:" + k1 + "\n1:" + k2, wantErr: "version 1 appears twice"},
		{name: "short", in: short, wantErr: "key is 16 bytes, want 32"},
		{name: "bad base64", in: "1:!!!!", wantErr: "not valid base64"},
		{name: "bad version", in: "x:" + k1, wantErr: "version must be a positive integer"},
		{name: "zero version", in: "0:" + k1, wantErr: "version must be a positive integer"},
		{name: "bare mixed", in: k1 + "\n2:" + k2, wantErr: "only allowed alone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := ParseMasterKeys([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				for _, k := range []string{k1, k2, short, "!!!!"} {
					if strings.Contains(err.Error(), k) {
						t.Fatalf("error echoes key material: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := kr.Versions(); !slices.Equal(got, tt.versions) {
				t.Fatalf("versions = %v, want %v", got, tt.versions)
			}
			if got, want := kr.Current(), tt.versions[len(tt.versions)-1]; got != want {
				t.Fatalf("Current = %d, want %d", got, want)
			}
		})
	}
}

func TestKeyringMarshalRoundTrip(t *testing.T) {
	kr, err := GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := kr.AddVersion(); err != nil || v != 2 {
		t.Fatalf("AddVersion = %d, %v", v, err)
	}
	back, err := ParseMasterKeys(kr.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{1, 2} {
		a, _ := kr.key(v)
		b, _ := back.key(v)
		if !bytes.Equal(a, b) {
			t.Fatalf("version %d differs after round trip", v)
		}
	}
	a, _ := kr.key(1)
	b, _ := kr.key(2)
	if bytes.Equal(a, b) {
		t.Fatal("versions share a key")
	}
}

func TestKeyringRedacts(t *testing.T) {
	kr, err := ParseMasterKeys([]byte(base64.StdEncoding.EncodeToString(key32(7))))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "kr", kr)
	js, _ := json.Marshal(struct{ K *Keyring }{kr})
	for _, got := range []string{kr.String(), fmt.Sprintf("%v %+v %#v %s %x", kr, kr, kr, kr, kr), buf.String(), string(js)} {
		if !strings.Contains(got, "[redacted]") || strings.Contains(got, base64.StdEncoding.EncodeToString(key32(7))) ||
			strings.Contains(got, "7 7 7") || strings.Contains(got, "070707") {
			t.Fatalf("keyring printed as %s", got)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func TestLoadMasterKeyFileMode(t *testing.T) {
	dir := t.TempDir()
	data := []byte("1:" + base64.StdEncoding.EncodeToString(key32(9)) + "\n")
	tests := []struct {
		mode    fs.FileMode
		wantErr string
	}{
		{0o600, ""},
		{0o400, ""},
		{0o644, "has mode 0644; it must be 0600 (chmod 600 "},
		{0o640, "has mode 0640"},
		{0o604, "has mode 0604"},
		{0o601, "has mode 0601"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%04o", tt.mode), func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("master-%o.key", tt.mode))
			writeFile(t, path, data, tt.mode)
			kr, err := LoadMasterKeyFile(path)
			if tt.wantErr == "" {
				if err != nil || kr.Current() != 1 {
					t.Fatalf("LoadMasterKeyFile = %v, %v", kr, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadMasterKeyFileBadContentNoEcho(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	bad := base64.StdEncoding.EncodeToString(key32(5)[:31])
	writeFile(t, path, []byte(bad), 0o600)
	_, err := LoadMasterKeyFile(path)
	if err == nil || strings.Contains(err.Error(), bad) {
		t.Fatalf("err = %v", err)
	}
}

func TestGenerateMasterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if err := GenerateMasterKeyFile(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %04o, want 0600", fi.Mode().Perm())
	}
	kr, err := LoadMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kr.Versions(), []int{1}) {
		t.Fatalf("versions = %v", kr.Versions())
	}
	before, _ := os.ReadFile(path)
	err = GenerateMasterKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second GenerateMasterKeyFile err = %v, want ErrExist", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("existing key file was changed")
	}
}

func TestWriteMasterKeyFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	writeFile(t, path, []byte("old"), 0o600)
	kr, _ := GenerateKeyring()
	kr.AddVersion()
	if err := WriteMasterKeyFile(path, kr); err != nil {
		t.Fatal(err)
	}
	got, err := LoadMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Versions(), []int{1, 2}) {
		t.Fatalf("versions = %v", got.Versions())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestMasterKeyFromEnv(t *testing.T) {
	enc := base64.StdEncoding.EncodeToString(key32(4))
	kr, err := MasterKeyFromEnv(enc)
	if err != nil || kr.Current() != 1 {
		t.Fatalf("MasterKeyFromEnv = %v, %v", kr, err)
	}
	_, err = MasterKeyFromEnv(enc[:20])
	if err == nil || !strings.HasPrefix(err.Error(), "KEYGATE_MASTER_KEY: ") || strings.Contains(err.Error(), enc[:20]) {
		t.Fatalf("err = %v", err)
	}
}
