package vault

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/store"
)

func FuzzParseMasterKeys(f *testing.F) {
	k := base64.StdEncoding.EncodeToString(key32(1))
	for _, seed := range []string{
		k,
		"1:" + k + "\n2:" + base64.RawURLEncoding.EncodeToString(key32(2)) + "\n",
		"# comment\n\n3:" + k,
		"1:" + k + "\n1:" + k,
		"x:" + k,
		"-1:" + k,
		"99999999999999999999:" + k,
		k[:20],
		"1:",
		":",
		"\x00\xff",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kr, err := ParseMasterKeys(data)
		if err != nil {
			if kr != nil {
				t.Fatal("keyring and error both returned")
			}
			msg := err.Error()
			// Any input line of some length echoed back would show here.
			for line := range strings.SplitSeq(string(data), "\n") {
				line = strings.TrimSpace(line)
				if len(line) >= 8 && strings.Contains(msg, line) {
					t.Fatalf("error %q echoes input line %q", msg, line)
				}
				if _, enc, ok := strings.Cut(line, ":"); ok && len(strings.TrimSpace(enc)) >= 8 && strings.Contains(msg, strings.TrimSpace(enc)) {
					t.Fatalf("error %q echoes key text", msg)
				}
			}
			return
		}
		if kr.Current() < 1 || len(kr.Versions()) == 0 {
			t.Fatalf("empty keyring without error")
		}
		back, err := ParseMasterKeys(kr.Marshal())
		if err != nil {
			t.Fatalf("reparse of Marshal: %v", err)
		}
		for _, v := range kr.Versions() {
			a, _ := kr.key(v)
			b, ok := back.key(v)
			if !ok || !bytes.Equal(a, b) {
				t.Fatalf("version %d lost in round trip", v)
			}
		}
	})
}

func FuzzOpen(f *testing.F) {
	kr, err := ParseMasterKeys([]byte(base64.StdEncoding.EncodeToString(key32(0x42))))
	if err != nil {
		f.Fatal(err)
	}
	mk, _ := kr.key(1)
	// Seeds: a real envelope and mangled variants. The envelope is built
	// with fixed nonces and data key so that every fuzz worker process
	// derives the same bytes and can recognise it.
	dk := bytes.Repeat([]byte{0x24}, dataKeySize)
	wk := sealFixed(f, mk, dk, dataKeyAAD("k", 1, 1), 1)
	ct := sealFixed(f, dk, []byte("seed value"), valueAAD("k", 1), 2)
	f.Add(wk, ct)
	f.Add(ct, wk)
	f.Add([]byte{}, []byte{})
	f.Add([]byte{formatV1}, bytes.Repeat([]byte{formatV1}, 40))
	f.Add(append([]byte{0x02}, wk[1:]...), ct)

	f.Fuzz(func(t *testing.T, wrapped, ciphertext []byte) {
		if bytes.Equal(wrapped, wk) && bytes.Equal(ciphertext, ct) {
			return // the one genuine envelope
		}
		// Raw open of arbitrary bytes under the master key and as a data key.
		if pt, err := open(mk, ciphertext, valueAAD("k", 1)); err == nil {
			t.Fatalf("open succeeded on fuzzed data: %x", pt)
		}
		if _, err := unwrapKey(mk, wrapped, "k", 1, 1); err == nil && !bytes.Equal(wrapped, wk) {
			t.Fatal("unwrap succeeded on fuzzed data")
		}
		// The whole read path through a store holding the fuzzed row.
		st := newFakeStore()
		v := New(st, kr, testNow)
		if err := v.Verify(t.Context()); err != nil {
			t.Fatal(err)
		}
		st.setRow(store.SecretVersion{Name: "k", Version: 1, MasterVersion: 1, WrappedKey: wrapped, Ciphertext: ciphertext})
		s, _, err := v.Get(t.Context(), "k")
		if err == nil {
			t.Fatalf("Get succeeded on fuzzed row: %d bytes", s.Len())
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
		if !s.IsZero() {
			t.Fatal("secret returned with error")
		}
	})
}

func sealFixed(tb testing.TB, key, plaintext, aad []byte, nonceByte byte) []byte {
	tb.Helper()
	aead, err := newGCM(key)
	if err != nil {
		tb.Fatal(err)
	}
	out := append([]byte{formatV1}, bytes.Repeat([]byte{nonceByte}, nonceSize)...)
	return aead.Seal(out, out[1:], plaintext, aad)
}
