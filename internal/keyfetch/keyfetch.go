// Package keyfetch fetches public key material (JWK Sets, discovery
// documents) from URLs that configuration names: identity providers'
// jwks_uri and clients' jwks_uri. The rules are the same for both: HTTPS
// only, except on loopback hosts (tests, dev mode), on every redirect hop
// too; a bounded body and time; and only keys that can sign and are safe to
// trust — asymmetric, RSA of at least 2048 bits (RFC 8725 §2.1: a symmetric
// "oct" key in a public set could only help an attacker).
package keyfetch

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Limits of a fetch.
const (
	MaxBodySize  = 1 << 20
	Timeout      = 10 * time.Second
	MaxRedirects = 3
	MinRSABits   = 2048
)

// Client returns a copy of base (or a new client with Timeout when nil)
// whose redirects must obey CheckURL too.
func Client(base *http.Client) *http.Client {
	if base == nil {
		base = &http.Client{Timeout: Timeout}
	}
	c := *base
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= MaxRedirects {
			return errors.New("too many redirects")
		}
		return CheckURL(req.URL)
	}
	return &c
}

// Get fetches rawURL with client and returns the body of a 200 answer, at
// most MaxBodySize bytes. Errors name the URL without its userinfo.
func Get(ctx context.Context, client *http.Client, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("invalid URL")
	}
	if err := CheckURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u.Redacted(), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("GET %s: response over %d bytes", u.Redacted(), MaxBodySize)
	}
	return body, nil
}

// CheckURL requires HTTPS, except on loopback hosts.
func CheckURL(u *url.URL) error {
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	default:
		return fmt.Errorf("refusing %s: https required", u.Redacted())
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// UsableKey admits asymmetric public keys only, RSA of at least MinRSABits.
func UsableKey(k any) bool {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return k.N.BitLen() >= MinRSABits
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return true
	default:
		return false
	}
}
