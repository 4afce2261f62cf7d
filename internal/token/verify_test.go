package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
)

func TestVerify(t *testing.T) {
	keys := newTestKeys(t)
	clk := newClock()
	now := clk.Now()
	pubDER, _ := x509.MarshalPKIXPublicKey(keys.ec.Public())

	baseHeader := func() map[string]any { return map[string]any{"alg": "ES256", "kid": keys.ecKID, "typ": "at+jwt"} }
	baseClaims := func() map[string]any {
		return map[string]any{"iss": testIssuer, "sub": "google|alice", "aud": testIssuer, "client_id": "ios-app",
			"scope": "chat", "jti": "j-1", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	}
	with := func(m map[string]any, kv ...any) map[string]any {
		m = maps.Clone(m)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	es := es256Signer(keys.ec)
	hmacWith := func(secret []byte) func([]byte) []byte {
		return func(in []byte) []byte { m := hmac.New(sha256.New, secret); m.Write(in); return m.Sum(nil) }
	}
	none := func([]byte) []byte { return nil }

	tests := []struct {
		name    string
		token   func() string
		wantErr error // nil: must verify
	}{
		{"valid ES256", func() string { return craft(t, baseHeader(), baseClaims(), es) }, nil},
		{"valid EdDSA", func() string {
			return craft(t, with(baseHeader(), "alg", "EdDSA", "kid", keys.edKID), baseClaims(), edSigner(keys.ed))
		}, nil},
		{"typ application/at+jwt", func() string { return craft(t, with(baseHeader(), "typ", "application/AT+JWT"), baseClaims(), es) }, nil},
		{"aud array containing the audience", func() string {
			return craft(t, baseHeader(), with(baseClaims(), "aud", []string{"other", testIssuer}), es)
		}, nil},
		{"exp within skew", func() string {
			return craft(t, baseHeader(), with(baseClaims(), "exp", now.Add(-10*time.Second).Unix()), es)
		}, nil},
		{"unknown header ignored", func() string { return craft(t, with(baseHeader(), "x-note", "hi"), baseClaims(), es) }, nil},

		{"alg none unsigned", func() string { return craft(t, with(baseHeader(), "alg", "none"), baseClaims(), none) + "" }, ErrInvalidToken},
		{"alg none with a signature", func() string { return craft(t, with(baseHeader(), "alg", "none"), baseClaims(), es) }, ErrInvalidToken},
		{"HS256 keyed with the public key DER", func() string {
			return craft(t, with(baseHeader(), "alg", "HS256"), baseClaims(), hmacWith(pubDER))
		}, ErrInvalidToken},
		{"HS256 keyed with the public JWK", func() string {
			return craft(t, with(baseHeader(), "alg", "HS256"), baseClaims(), hmacWith(keys.ecPubJWK))
		}, ErrInvalidToken},
		{"alg of the other key", func() string { return craft(t, with(baseHeader(), "alg", "EdDSA"), baseClaims(), edSigner(keys.ed)) }, ErrInvalidToken},
		{"embedded jwk", func() string {
			return craft(t, with(baseHeader(), "jwk", map[string]any{"kty": "EC"}), baseClaims(), es)
		}, ErrInvalidToken},
		{"jku", func() string { return craft(t, with(baseHeader(), "jku", "https://evil.test/jwks"), baseClaims(), es) }, ErrInvalidToken},
		{"x5u", func() string { return craft(t, with(baseHeader(), "x5u", "https://evil.test/cert"), baseClaims(), es) }, ErrInvalidToken},
		{"x5c", func() string { return craft(t, with(baseHeader(), "x5c", []string{"MIIB"}), baseClaims(), es) }, ErrInvalidToken},
		{"unknown crit", func() string {
			return craft(t, with(baseHeader(), "crit", []string{"exp"}, "exp", 1), baseClaims(), es)
		}, ErrInvalidToken},
		{"empty crit", func() string { return craft(t, with(baseHeader(), "crit", []string{}), baseClaims(), es) }, ErrInvalidToken},
		{"typ JWT", func() string { return craft(t, with(baseHeader(), "typ", "JWT"), baseClaims(), es) }, ErrInvalidToken},
		{"typ missing", func() string { return craft(t, with(baseHeader(), "typ", nil), baseClaims(), es) }, ErrInvalidToken},
		{"typ not a string", func() string { return craft(t, with(baseHeader(), "typ", 7), baseClaims(), es) }, ErrInvalidToken},
		{"kid missing", func() string { return craft(t, with(baseHeader(), "kid", nil), baseClaims(), es) }, ErrInvalidToken},
		{"unknown kid", func() string { return craft(t, with(baseHeader(), "kid", "nope"), baseClaims(), es) }, ErrInvalidToken},
		{"foreign issuer", func() string { return craft(t, baseHeader(), with(baseClaims(), "iss", "https://evil.test"), es) }, ErrInvalidToken},
		{"issuer differs in case", func() string { return craft(t, baseHeader(), with(baseClaims(), "iss", "https://KEYGATE.test"), es) }, ErrInvalidToken},
		{"wrong audience", func() string { return craft(t, baseHeader(), with(baseClaims(), "aud", "https://other.test"), es) }, ErrInvalidToken},
		{"aud array without the audience", func() string {
			return craft(t, baseHeader(), with(baseClaims(), "aud", []string{"a", "b"}), es)
		}, ErrInvalidToken},
		{"aud missing", func() string { return craft(t, baseHeader(), with(baseClaims(), "aud", nil), es) }, ErrInvalidToken},
		{"expired", func() string {
			return craft(t, baseHeader(), with(baseClaims(), "exp", now.Add(-31*time.Second).Unix()), es)
		}, ErrExpired},
		{"exp missing", func() string { return craft(t, baseHeader(), with(baseClaims(), "exp", nil), es) }, ErrInvalidToken},
		{"iat in the future", func() string {
			return craft(t, baseHeader(), with(baseClaims(), "iat", now.Add(time.Minute).Unix()), es)
		}, ErrInvalidToken},
		{"nbf in the future", func() string {
			return craft(t, baseHeader(), with(baseClaims(), "nbf", now.Add(time.Minute).Unix()), es)
		}, ErrInvalidToken},
		{"jti missing", func() string { return craft(t, baseHeader(), with(baseClaims(), "jti", nil), es) }, ErrInvalidToken},
		{"client_id missing", func() string { return craft(t, baseHeader(), with(baseClaims(), "client_id", nil), es) }, ErrInvalidToken},
		{"over 8 KiB", func() string {
			return craft(t, baseHeader(), with(baseClaims(), "scope", strings.Repeat("a", MaxTokenSize)), es)
		}, ErrInvalidToken},
		{"tampered payload", func() string {
			tok := craft(t, baseHeader(), baseClaims(), es)
			parts := strings.Split(tok, ".")
			parts[1] = b64e([]byte(`{"iss":"` + testIssuer + `","sub":"google|mallory","aud":"` + testIssuer +
				`","client_id":"ios-app","jti":"j-1","iat":` + itoa(now.Unix()) + `,"exp":` + itoa(now.Add(time.Minute).Unix()) + `}`))
			return strings.Join(parts, ".")
		}, ErrInvalidToken},
		{"DER-encoded ES256 signature", func() string {
			return craft(t, baseHeader(), baseClaims(), func(in []byte) []byte {
				d := sha256.Sum256(in)
				sig, _ := ecdsaSignASN1(keys, d[:])
				return sig
			})
		}, ErrInvalidToken},
		{"four parts", func() string { return craft(t, baseHeader(), baseClaims(), es) + ".x" }, ErrInvalidToken},
		{"padding", func() string { return craft(t, baseHeader(), baseClaims(), es) + "=" }, ErrInvalidToken},
		{"whitespace", func() string { return " " + craft(t, baseHeader(), baseClaims(), es) }, ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(keys.source, nil, VerifierConfig{Issuer: testIssuer, Audience: testIssuer}, clk.Now)
			tok := tt.token()
			got, err := v.Verify(t.Context(), tok)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.Subject != "google|alice" || got.ClientID != "ios-app" || got.Scope != "chat" || got.JTI != "j-1" {
					t.Errorf("claims = %+v", got)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify err = %v, want %v", err, tt.wantErr)
			}
			t.Logf("refused: %v", err)
			if got != nil {
				t.Errorf("Verify returned claims with an error")
			}
			if len(tok) > 20 && strings.Contains(err.Error(), tok[:20]) {
				t.Errorf("error echoes the token: %v", err)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestExpiredIsInvalid(t *testing.T) {
	if !errors.Is(ErrExpired, ErrInvalidToken) || !errors.Is(ErrRevoked, ErrInvalidToken) {
		t.Fatal("ErrExpired and ErrRevoked must wrap ErrInvalidToken")
	}
}

func TestVerifyCacheHonoursExpiry(t *testing.T) {
	keys := newTestKeys(t)
	clk := newClock()
	v := NewVerifier(keys.source, nil, VerifierConfig{Issuer: testIssuer, Audience: testIssuer}, clk.Now)
	now := clk.Now()
	tok := craft(t, map[string]any{"alg": "ES256", "kid": keys.ecKID, "typ": "at+jwt"},
		map[string]any{"iss": testIssuer, "sub": "s", "aud": testIssuer, "client_id": "c", "jti": "j",
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}, es256Signer(keys.ec))
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute + DefaultSkew)
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("cached token past exp: err = %v, want ErrExpired", err)
	}
}

// TestRevokedEvenWhenCached: each kind of revocation refuses a token that
// was verified (and cached) before it.
func TestRevokedEvenWhenCached(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	st := openStore(t)
	m := loadedManager(t, st, newFakeVault(), AlgES256, clk)
	tests := []struct {
		name   string
		rv     func(c AccessClaims) store.Revocation
		claims func(c *AccessClaims)
	}{
		{"jti", func(c AccessClaims) store.Revocation { return store.Revocation{Kind: store.RevokeJTI, Value: c.JTI} }, nil},
		{"subject", func(c AccessClaims) store.Revocation {
			return store.Revocation{Kind: store.RevokeSubject, Value: c.Subject, IssuedBefore: clk.Now()}
		}, nil},
		{"client", func(c AccessClaims) store.Revocation {
			return store.Revocation{Kind: store.RevokeClient, Value: c.ClientID, IssuedBefore: clk.Now()}
		}, nil},
		{"family", func(c AccessClaims) store.Revocation {
			return store.Revocation{Kind: store.RevokeFamily, Value: "fam-1"}
		},
			func(c *AccessClaims) { c.SID = "fam-1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev := NewRevocations(st, clk.Now, nil)
			if err := rev.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			v := NewVerifier(m, rev, VerifierConfig{Issuer: testIssuer, Audience: testIssuer}, clk.Now)
			c := validClaims(clk.Now())
			c.Subject, c.ClientID = "subj-"+tt.name, "client-"+tt.name
			if tt.claims != nil {
				tt.claims(&c)
			}
			tok, err := m.Sign(c)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // second call is a cache hit
				if _, err := v.Verify(ctx, tok); err != nil {
					t.Fatalf("before revocation: %v", err)
				}
			}
			r := tt.rv(c)
			r.ExpiresAt = clk.Now().Add(time.Hour)
			if err := rev.Revoke(ctx, r); err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrRevoked) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("after revocation: err = %v, want ErrRevoked", err)
			}
			// A fresh Revocations on another node learns it from the log.
			other := NewRevocations(st, clk.Now, nil)
			if err := other.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if err := other.Check(&c); !errors.Is(err, ErrRevoked) {
				t.Errorf("other node: Check = %v, want ErrRevoked", err)
			}
			if tt.name == "subject" || tt.name == "client" {
				// Tokens issued after the revocation are fine.
				clk.Advance(2 * time.Second)
				c2 := c
				c2.JTI, c2.IssuedAt, c2.Expiry = NewJTI(), clk.Now(), clk.Now().Add(time.Minute)
				tok2, _ := m.Sign(c2)
				if _, err := v.Verify(ctx, tok2); err != nil {
					t.Errorf("token issued after the revocation: %v", err)
				}
			}
		})
	}
}
