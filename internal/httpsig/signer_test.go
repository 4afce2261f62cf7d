package httpsig

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// An independent RFC 9421 signer for tests: it writes the signature base
// with plain string concatenation, not with the package's serialiser.

type testSigner struct {
	keyid string
	key   Key
	sign  func(base []byte) []byte
}

func newEd25519Signer(t testing.TB, keyid, client string) *testSigner {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{keyid: keyid, key: Key{Alg: AlgEd25519, Public: pub, ClientID: client},
		sign: func(b []byte) []byte { return ed25519.Sign(priv, b) }}
}

func newECDSASigner(t testing.TB, keyid, client string) *testSigner {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{keyid: keyid, key: Key{Alg: AlgECDSAP256SHA256, Public: &priv.PublicKey, ClientID: client},
		sign: func(b []byte) []byte {
			d := sha256.Sum256(b)
			r, s, err := ecdsa.Sign(rand.Reader, priv, d[:])
			if err != nil {
				t.Fatal(err)
			}
			sig := make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
			return sig
		}}
}

func newHMACSigner(keyid, client string, secret []byte) *testSigner {
	return &testSigner{keyid: keyid, key: Key{Alg: AlgHMACSHA256, HMACSecret: secret, ClientID: client},
		sign: func(b []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(b)
			return m.Sum(nil)
		}}
}

// sigSpec describes one signature; zero fields take the defaults.
type sigSpec struct {
	label      string
	components []string // default: @method @target-uri [content-digest]
	params     string   // default: ;created=…;nonce="…";keyid="…"
	created    int64
	nonce      string
	signer     *testSigner // sign with this key instead (keyid stays)
}

// signRequest adds Signature-Input and Signature to r, signing the values it
// has now, with targetURI as @target-uri.
func signRequest(t testing.TB, s *testSigner, r *http.Request, targetURI string, spec sigSpec) {
	t.Helper()
	if spec.label == "" {
		spec.label = "sig1"
	}
	if spec.components == nil {
		spec.components = []string{"@method", "@target-uri"}
		if r.Header.Get("Content-Digest") != "" {
			spec.components = append(spec.components, "content-digest")
		}
	}
	if spec.created == 0 {
		spec.created = t0.Unix()
	}
	if spec.nonce == "" {
		var b [16]byte
		rand.Read(b[:])
		spec.nonce = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if spec.params == "" {
		spec.params = ";created=" + strconv.FormatInt(spec.created, 10) + `;nonce="` + spec.nonce + `";keyid="` + s.keyid + `"`
	}
	quoted := make([]string, len(spec.components))
	var base strings.Builder
	for i, c := range spec.components {
		quoted[i] = `"` + c + `"`
		var v string
		switch c {
		case "@method":
			v = r.Method
		case "@target-uri":
			v = targetURI
		default:
			v = r.Header.Get(c)
		}
		base.WriteString(`"` + c + `": ` + v + "\n")
	}
	sigParams := "(" + strings.Join(quoted, " ") + ")" + spec.params
	base.WriteString(`"@signature-params": ` + sigParams)
	signer := s
	if spec.signer != nil {
		signer = spec.signer
	}
	sig := signer.sign([]byte(base.String()))
	r.Header.Set("Signature-Input", spec.label+"="+sigParams)
	r.Header.Set("Signature", spec.label+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
}

func contentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

var t0 = time.Unix(1_700_000_000, 0)

func fixedNow() time.Time { return t0 }

// keyring is a KeyResolver over a map.
type keyring map[string]Key

func (k keyring) ResolveKey(_ context.Context, keyid string) (Key, error) {
	key, ok := k[keyid]
	if !ok {
		return Key{}, ErrUnknownKey
	}
	return key, nil
}

type resolverFunc func(ctx context.Context, keyid string) (Key, error)

func (f resolverFunc) ResolveKey(ctx context.Context, keyid string) (Key, error) {
	return f(ctx, keyid)
}

// memStore is an in-memory ReplayStore: exactly one caller sees fresh.
type memStore struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func newMemStore() *memStore { return &memStore{m: map[string]time.Time{}} }

func (s *memStore) Remember(_ context.Context, ns, id string, exp time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := ns + "\x00" + id
	if old, ok := s.m[k]; ok && old.After(t0) {
		return false, nil
	}
	s.m[k] = exp
	return true, nil
}

type storeFunc func(ctx context.Context, ns, id string, exp time.Time) (bool, error)

func (f storeFunc) Remember(ctx context.Context, ns, id string, exp time.Time) (bool, error) {
	return f(ctx, ns, id, exp)
}

const (
	origin    = "https://api.example.com"
	reqTarget = "/billing/v1/charges?idempotent=1"
	targetURI = origin + reqTarget
)

func newRequest(t testing.TB, method string, body []byte) *http.Request {
	t.Helper()
	var r *http.Request
	if body == nil {
		r = httptest.NewRequest(method, reqTarget, nil)
	} else {
		r = httptest.NewRequest(method, reqTarget, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Content-Digest", contentDigest(body))
	}
	return r
}

var errBoom = errors.New("boom")
