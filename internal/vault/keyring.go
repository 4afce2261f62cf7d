package vault

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// MasterKeySize is the length of a master key: AES-256.
const MasterKeySize = 32

// maxKeyFileSize bounds how much of a key file is read; a real one is a few
// hundred bytes.
const maxKeyFileSize = 64 << 10

// Keyring holds the versions of the master key. The highest version is the
// current one: new data keys are wrapped under it. Older versions are kept
// only while a master key rotation is in progress.
//
// A Keyring prints as "[redacted]" through fmt, log/slog and encoding/json.
type Keyring struct {
	keys map[int]*[MasterKeySize]byte
}

// GenerateKeyring returns a keyring with one fresh random key, version 1.
func GenerateKeyring() (*Keyring, error) {
	kr := &Keyring{keys: map[int]*[MasterKeySize]byte{}}
	if _, err := kr.AddVersion(); err != nil {
		return nil, err
	}
	return kr, nil
}

// ParseMasterKeys parses a master key file: one key per line as
// "<version>:<base64 of 32 bytes>", base64 in standard or URL alphabet,
// padded or not. A file holding a single bare base64 line means version 1.
// Blank lines and lines starting with # are ignored. Errors name line
// numbers, never key material.
func ParseMasterKeys(data []byte) (*Keyring, error) {
	kr := &Keyring{keys: map[int]*[MasterKeySize]byte{}}
	var bare, lines int
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), maxKeyFileSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines++
		version := 1
		enc := line
		if v, k, ok := strings.Cut(line, ":"); ok {
			var err error
			version, err = strconv.Atoi(strings.TrimSpace(v))
			if err != nil || version < 1 || version > math.MaxInt32 {
				return nil, fmt.Errorf("master key line %d: version must be a positive integer", n)
			}
			enc = strings.TrimSpace(k)
		} else {
			bare++
		}
		key, err := decodeKey(enc)
		if err != nil {
			return nil, fmt.Errorf("master key line %d: %w", n, err)
		}
		if _, dup := kr.keys[version]; dup {
			clear(key[:])
			return nil, fmt.Errorf("master key line %d: version %d appears twice", n, version)
		}
		kr.keys[version] = key
	}
	if err := sc.Err(); err != nil {
		// bufio's errors describe sizes, not content.
		return nil, fmt.Errorf("read master keys: %w", err)
	}
	if bare > 0 && lines > 1 {
		return nil, errors.New("master keys: a key without a version prefix is only allowed alone; write each key as <version>:<base64>")
	}
	if len(kr.keys) == 0 {
		return nil, errors.New("no master key found")
	}
	return kr, nil
}

func decodeKey(s string) (*[MasterKeySize]byte, error) {
	var raw []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			raw = b
			break
		}
	}
	if raw == nil {
		return nil, errors.New("key is not valid base64")
	}
	defer clear(raw)
	if len(raw) != MasterKeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(raw), MasterKeySize)
	}
	k := new([MasterKeySize]byte)
	copy(k[:], raw)
	return k, nil
}

// MasterKeyFromEnv parses the value of KEYGATE_MASTER_KEY: base64 of 32
// bytes, or the key file format.
func MasterKeyFromEnv(value string) (*Keyring, error) {
	kr, err := ParseMasterKeys([]byte(value))
	if err != nil {
		return nil, fmt.Errorf("KEYGATE_MASTER_KEY: %w", err)
	}
	return kr, nil
}

// LoadMasterKeyFile reads a master key file. It refuses a file that group or
// others may access in any way.
func LoadMasterKeyFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open master key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("master key file %s has mode %04o; it must be 0600 (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	defer clear(data)
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("master key file %s is larger than %d bytes", path, maxKeyFileSize)
	}
	kr, err := ParseMasterKeys(data)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return kr, nil
}

// GenerateMasterKeyFile creates path holding a new random master key,
// version 1, with mode 0600. It refuses to overwrite an existing file.
func GenerateMasterKeyFile(path string) error {
	kr, err := GenerateKeyring()
	if err != nil {
		return err
	}
	data := kr.Marshal()
	defer clear(data)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("sync master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("close master key file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// WriteMasterKeyFile replaces path with kr atomically: a 0600 temporary file
// in the same directory is written and synced, renamed over path, and the
// directory is synced. A crash leaves either the old file or the new one.
func WriteMasterKeyFile(path string, kr *Keyring) error {
	data := kr.Marshal()
	defer clear(data)
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary master key file: %w", err)
	}
	tmp := f.Name()
	fail := func(what string, err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("%s temporary master key file: %w", what, err)
	}
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return fail("chmod", err)
	}
	if _, err := f.Write(data); err != nil {
		return fail("write", err)
	}
	if err := f.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("close temporary master key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace master key file: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync key directory: %w", err)
	}
	return nil
}

// Current returns the highest key version, or 0 for an empty keyring.
func (kr *Keyring) Current() int {
	cur := 0
	for v := range kr.keys {
		cur = max(cur, v)
	}
	return cur
}

// Versions returns the key versions in ascending order.
func (kr *Keyring) Versions() []int {
	vs := make([]int, 0, len(kr.keys))
	for v := range kr.keys {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// Has reports whether the keyring holds version v.
func (kr *Keyring) Has(v int) bool {
	_, ok := kr.keys[v]
	return ok
}

// AddVersion adds a new random key as version Current()+1 and returns it.
func (kr *Keyring) AddVersion() (int, error) {
	if kr.keys == nil {
		kr.keys = map[int]*[MasterKeySize]byte{}
	}
	k := new([MasterKeySize]byte)
	if _, err := rand.Read(k[:]); err != nil {
		return 0, fmt.Errorf("generate master key: %w", err)
	}
	v := kr.Current() + 1
	kr.keys[v] = k
	return v, nil
}

// Marshal encodes the keyring in the key file format, oldest version first.
// The result holds key material: clear it after use.
func (kr *Keyring) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("# keygate master keys, one per line: <version>:<base64 of 32 bytes>.\n")
	b.WriteString("# Keep this file secret (mode 0600) and backed up: without it the vault cannot be read.\n")
	for _, v := range kr.Versions() {
		b.WriteString(strconv.Itoa(v))
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(kr.keys[v][:]))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// key returns master key version v.
func (kr *Keyring) key(v int) ([]byte, bool) {
	k, ok := kr.keys[v]
	if !ok {
		return nil, false
	}
	return k[:], true
}

// only returns a keyring sharing kr's key version v alone.
func (kr *Keyring) only(v int) *Keyring {
	return &Keyring{keys: map[int]*[MasterKeySize]byte{v: kr.keys[v]}}
}

// clone returns a keyring with the same keys, safe to extend.
func (kr *Keyring) clone() *Keyring {
	c := &Keyring{keys: make(map[int]*[MasterKeySize]byte, len(kr.keys)+1)}
	for v, k := range kr.keys {
		c.keys[v] = k
	}
	return c
}

// String returns "[redacted]".
func (*Keyring) String() string { return redacted }

// GoString returns "[redacted]".
func (*Keyring) GoString() string { return redacted }

// Format prints "[redacted]" for every verb.
func (*Keyring) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (*Keyring) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler: the JSON string "[redacted]".
func (*Keyring) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
