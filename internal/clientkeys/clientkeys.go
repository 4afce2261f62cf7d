// Package clientkeys fetches and caches the JWK Sets (RFC 7517 §5) that
// confidential clients publish at their registered jwks_uri (RFC 7591 §2),
// for private_key_jwt client assertions (RFC 7523 §2.2) and RFC 9421
// request signatures.
//
// A set is fetched on first use and kept for MaxAge. A kid that is not in
// the cached set causes one refetch (single-flight per URI), and no URI is
// fetched more than once per MinRefetchInterval, so a flood of requests
// naming made-up kids cannot turn keygate into a load generator against a
// client's server. Fetches require HTTPS unless the host is loopback (on
// every redirect hop too), read at most 1 MiB, give up after 10 s, and
// keep only asymmetric public keys (RSA of at least 2048 bits).
//
// Written here on the standard library and go-jose, after internal/idp's
// key fetcher: no maintained library offers this cache with these limits.
package clientkeys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/keygate/keygate/internal/keyfetch"
)

// Limits and timings.
const (
	// MinRefetchInterval is the least time between two fetch attempts of
	// one URI.
	MinRefetchInterval = 30 * time.Second
	// MaxAge is how long a fetched set is used before it is fetched again
	// (keys a client withdraws stop being accepted).
	MaxAge = time.Hour

	maxKeys = 100
)

// ErrUnavailable reports that a client's keys could not be fetched: the
// client's server is down or serves no usable set. The wrapped cause is
// for the log, not for the client.
var ErrUnavailable = errors.New("client keys unavailable")

var errRateLimited = errors.New("key set fetched less than 30s ago")

// Cache holds the key sets of client jwks_uris. It is safe for concurrent
// use.
type Cache struct {
	client *http.Client
	now    func() time.Time
	log    *slog.Logger
	sf     singleflight.Group

	mu   sync.Mutex
	sets map[string]*entry // by URI
}

type entry struct {
	keys        []jose.JSONWebKey // replaced, never modified
	fetchedAt   time.Time
	lastAttempt time.Time
}

// New returns an empty cache. client may be nil; it is copied and given a
// redirect policy that applies the HTTPS rule to every hop.
func New(client *http.Client, now func() time.Time, logger *slog.Logger) *Cache {
	c := keyfetch.Client(client)
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{client: c, now: now, log: logger, sets: map[string]*entry{}}
}

// Keys returns the public signature keys published at uri. When kid is not
// empty and no key has it, the set is fetched again first (rate limited);
// the caller then refuses a kid still missing. The error wraps
// ErrUnavailable when there is no set younger than MaxAge.
func (c *Cache) Keys(ctx context.Context, uri, kid string) ([]jose.JSONWebKey, error) {
	keys, fetchedAt := c.snapshot(uri)
	if keys == nil || c.now().Sub(fetchedAt) >= MaxAge {
		err := c.refresh(ctx, uri)
		if keys, fetchedAt = c.snapshot(uri); keys == nil || c.now().Sub(fetchedAt) >= MaxAge {
			if err == nil || errors.Is(err, errRateLimited) {
				err = errors.New("last fetch failed less than 30s ago")
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, redacted(uri), err)
		}
	}
	if kid == "" || hasKid(keys, kid) {
		return keys, nil
	}
	// Perhaps the client rotated: one refetch, rate limited.
	if err := c.refresh(ctx, uri); err != nil && !errors.Is(err, errRateLimited) {
		c.log.Warn("fetch client keys", slog.String("jwks_uri", redacted(uri)), slog.Any("error", err))
	}
	keys, _ = c.snapshot(uri)
	return keys, nil
}

func hasKid(keys []jose.JSONWebKey, kid string) bool {
	for _, k := range keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

func (c *Cache) snapshot(uri string) ([]jose.JSONWebKey, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.sets[uri]; e != nil {
		return e.keys, e.fetchedAt
	}
	return nil, time.Time{}
}

// refresh fetches uri once for all concurrent callers, unless it was
// attempted less than MinRefetchInterval ago.
func (c *Cache) refresh(ctx context.Context, uri string) error {
	_, err, _ := c.sf.Do(uri, func() (any, error) {
		now := c.now()
		c.mu.Lock()
		e := c.sets[uri]
		if e == nil {
			e = &entry{}
			c.sets[uri] = e
		}
		if !e.lastAttempt.IsZero() && now.Sub(e.lastAttempt) < MinRefetchInterval {
			c.mu.Unlock()
			return nil, errRateLimited
		}
		e.lastAttempt = now
		c.mu.Unlock()

		// Shared by every waiter, so not bound to the first caller's request.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyfetch.Timeout)
		defer cancel()
		keys, err := c.fetch(fctx, uri)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		e.keys, e.fetchedAt = keys, c.now()
		c.mu.Unlock()
		c.log.Debug("fetched client keys", slog.String("jwks_uri", redacted(uri)), slog.Int("keys", len(keys)))
		return nil, nil
	})
	return err
}

// fetch reads a JWK Set, keeping the public signature keys it can use and
// skipping the rest (unknown key types must not hide the good ones).
func (c *Cache) fetch(ctx context.Context, rawURL string) ([]jose.JSONWebKey, error) {
	body, err := keyfetch.Get(ctx, c.client, rawURL)
	if err != nil {
		return nil, err
	}
	return parseKeySet(body)
}

// parseKeySet keeps the usable keys of a JWK Set (RFC 7517 §5): public,
// asymmetric, for signatures. Keys that do not parse are skipped; a set
// with none left is an error.
func parseKeySet(body []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := []jose.JSONWebKey{}
	for _, raw := range set.Keys {
		if len(keys) == maxKeys {
			break
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		// A client publishing its private key has lost it; refuse rather
		// than quietly use the public half.
		if !k.IsPublic() {
			continue
		}
		if keyfetch.UsableKey(k.Key) && (k.Use == "" || k.Use == "sig") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable public signature keys")
	}
	return keys, nil
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}
