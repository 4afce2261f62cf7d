package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Supported signing algorithms (RFC 7518 §3.4, RFC 8037 §3.1).
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// vaultPrefix names the vault secrets that hold signing keys.
const vaultPrefix = "keygate/signing/"

// PublicKey is a verification key and the one algorithm it may be used
// with. Binding the algorithm to the key, rather than trusting the token's
// alg header, is what RFC 8725 §3.1 asks for.
type PublicKey struct {
	Alg string
	Key crypto.PublicKey // *ecdsa.PublicKey (P-256) or ed25519.PublicKey
}

// generateKey makes a new private key for alg.
func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	default:
		return nil, fmt.Errorf("unsupported signing algorithm %q", alg)
	}
}

// keyAlg reports which algorithm a key is for, checking the curve.
func keyAlg(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("ecdsa key is not on P-256")
		}
		return AlgES256, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("bad ed25519 public key size")
		}
		return AlgEdDSA, nil
	default:
		return "", fmt.Errorf("unsupported key type %T", pub)
	}
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of pub, base64url without
// padding: the kid.
func thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("jwk thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// publicJWK is the public JWK JSON for pub. It is built from the public
// key alone, so it cannot carry private members.
func publicJWK(pub crypto.PublicKey, kid, alg string) ([]byte, error) {
	b, err := json.Marshal(&jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"})
	if err != nil {
		return nil, fmt.Errorf("marshal jwk: %w", err)
	}
	return b, nil
}

// parsePublicJWK reads a stored public JWK and checks it against its row:
// it must be public, its thumbprint must be kid and its key must fit alg.
func parsePublicJWK(b []byte, kid, alg string) (PublicKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(b); err != nil {
		return PublicKey{}, fmt.Errorf("parse public jwk: %w", err)
	}
	if !jwk.IsPublic() {
		return PublicKey{}, errors.New("stored jwk is not a public key")
	}
	return checkPublic(jwk.Key, kid, alg)
}

func checkPublic(pub crypto.PublicKey, kid, alg string) (PublicKey, error) {
	got, err := keyAlg(pub)
	if err != nil {
		return PublicKey{}, err
	}
	if got != alg {
		return PublicKey{}, fmt.Errorf("key is for %s, row says %s", got, alg)
	}
	tp, err := thumbprint(pub)
	if err != nil {
		return PublicKey{}, err
	}
	if tp != kid {
		return PublicKey{}, errors.New("key thumbprint does not match its kid")
	}
	return PublicKey{Alg: alg, Key: pub}, nil
}

// marshalPrivate serialises a private key as PKCS#8 DER for the vault.
func marshalPrivate(k crypto.Signer) ([]byte, error) {
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return b, nil
}

// parsePrivate reads a PKCS#8 private key from the vault and checks that
// it is the key its metadata row describes.
func parsePrivate(der []byte, kid, alg string) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	if _, err := checkPublic(signer.Public(), kid, alg); err != nil {
		return nil, fmt.Errorf("private key %s: %w", kid, err)
	}
	return signer, nil
}
