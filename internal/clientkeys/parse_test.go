package clientkeys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/keygate/keygate/internal/keyfetch"
)

func TestParseKeySet(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	set := func(keys ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		body []byte
		want int // usable keys; -1 = error
	}{
		{"ec and ed25519", set(jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "a"}, jose.JSONWebKey{Key: pub, KeyID: "b"}), 2},
		{"private key skipped", set(jose.JSONWebKey{Key: priv, KeyID: "p"}, jose.JSONWebKey{Key: pub, KeyID: "b"}), 1},
		{"only a private key", set(jose.JSONWebKey{Key: ec, KeyID: "p"}), -1},
		{"symmetric key refused", []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`), -1},
		{"encryption key skipped", set(jose.JSONWebKey{Key: pub, KeyID: "e", Use: "enc"}), -1},
		{"not JSON", []byte(`<html>`), -1},
		{"empty set", []byte(`{"keys":[]}`), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseKeySet(tt.body)
			if tt.want < 0 {
				if err == nil {
					t.Fatalf("accepted %d keys, want an error", len(keys))
				}
				return
			}
			if err != nil || len(keys) != tt.want {
				t.Fatalf("parseKeySet = %d keys, %v; want %d", len(keys), err, tt.want)
			}
		})
	}
}

func FuzzParseKeySet(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseKeySet(body)
		if err != nil {
			return
		}
		for _, k := range keys {
			if !k.IsPublic() || !keyfetch.UsableKey(k.Key) {
				t.Fatalf("accepted unusable key %+v", k)
			}
		}
	})
}
