package token

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/vault"
)

// Defaults and timings of key management.
const (
	DefaultAccessTTL = 5 * time.Minute
	DefaultRotation  = 720 * time.Hour
	// RetiredGrace is how long past access TTL a retired key stays
	// published: a node that has not refreshed yet may sign with it for up
	// to RefreshInterval after it retired, and clocks drift.
	RetiredGrace = 5 * time.Minute
	// RefreshInterval is how often Run reloads the keys from the database.
	RefreshInterval = 10 * time.Second
	// JWKSMaxAge is the Cache-Control max-age of the JWK Set, in seconds.
	// A next key is published for a whole rotation period before it signs,
	// far longer than this, so caches always know a key before it is used.
	JWKSMaxAge = 300

	maxLoadAttempts = 5
	// missRefreshInterval bounds database reloads caused by tokens with an
	// unknown kid (another node may have rotated moments ago).
	missRefreshInterval = time.Second
)

// ErrNotLoaded reports use of a Manager before Load succeeded.
var ErrNotLoaded = errors.New("signing keys not loaded")

// SecretVault is what the Manager needs from the vault: private keys are
// stored as secrets named "keygate/signing/<kid>". *vault.Vault satisfies it.
type SecretVault interface {
	Put(ctx context.Context, name string, value vault.Secret) (int, error)
	Get(ctx context.Context, name string) (vault.Secret, int, error)
	Delete(ctx context.Context, name string) error
}

// Store is what the Manager needs from the database. store.Store satisfies it.
type Store interface {
	store.SigningKeyStore
	WithTx(ctx context.Context, fn func(tx store.Tx) error) error
}

// ManagerConfig configures key management.
type ManagerConfig struct {
	Alg       string        // ES256 (default) or EdDSA, for keys created from now on
	AccessTTL time.Duration // lifetime of access tokens; DefaultAccessTTL when zero
	Rotation  time.Duration // how long a key signs before Run rotates it; DefaultRotation when zero
}

// Manager owns the signing keys: it creates, rotates and prunes them in the
// database and vault, signs access tokens with the current key, and
// publishes next, current and recently retired keys as a JWK Set. It is
// safe for concurrent use, and several Managers (one per node) may share a
// database: every state change is a transaction conditional on the state
// it read.
type Manager struct {
	st  Store
	v   SecretVault
	cfg ManagerConfig
	now func() time.Time
	log *slog.Logger

	mu       sync.Mutex // serialises Load, Refresh, Rotate and pruning in this process
	snap     atomic.Pointer[keySet]
	lastMiss atomic.Int64 // unix nanoseconds of the last unknown-kid reload
}

// keySet is an immutable snapshot of the keys; Sign and lookups read it
// without locks.
type keySet struct {
	kid         string // current key
	alg         string
	activatedAt time.Time
	priv        crypto.Signer
	signer      jose.Signer
	hasNext     bool
	keys        map[string]PublicKey // every published key by kid
	jwks        []byte
}

// NewManager returns a Manager; call Load before use. now and logger may
// be nil.
func NewManager(st Store, v SecretVault, cfg ManagerConfig, now func() time.Time, logger *slog.Logger) *Manager {
	if cfg.Alg == "" {
		cfg.Alg = AlgES256
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.Rotation <= 0 {
		cfg.Rotation = DefaultRotation
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{st: st, v: v, cfg: cfg, now: now, log: logger}
}

// Load makes sure there is exactly one current and one next key, creating
// what is missing, and loads them. Nodes starting together on one database
// are safe: keys are inserted in a transaction that re-reads the state, and
// the schema admits one current and one next key at most, so a loser sees
// a conflict, discards its keys and retries with the winner's.
func (m *Manager) Load(ctx context.Context) error {
	if _, err := generateKey(m.cfg.Alg); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for attempt := 1; ; attempt++ {
		err := m.ensureKeys(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrConflict) || attempt >= maxLoadAttempts {
			return fmt.Errorf("load signing keys: %w", err)
		}
	}
	if err := m.refreshLocked(ctx); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	return nil
}

func missingStates(keys []store.SigningKey) []string {
	var cur, next bool
	for _, k := range keys {
		cur = cur || k.State == store.SigningKeyCurrent
		next = next || k.State == store.SigningKeyNext
	}
	var out []string
	if !cur {
		out = append(out, store.SigningKeyCurrent)
	}
	if !next {
		out = append(out, store.SigningKeyNext)
	}
	return out
}

func (m *Manager) ensureKeys(ctx context.Context) error {
	keys, err := m.st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	missing := missingStates(keys)
	if len(missing) == 0 {
		return nil
	}
	// Vault writes run in their own transactions, so the keys are made
	// before ours; the ones we end up not using are deleted again.
	fresh := make(map[string]store.SigningKey, len(missing))
	defer func() {
		for _, k := range fresh {
			m.discard(ctx, k)
		}
	}()
	for _, state := range missing {
		k, err := m.newKey(ctx, state)
		if err != nil {
			return err
		}
		fresh[state] = k
	}
	var used []string
	err = m.st.WithTx(ctx, func(tx store.Tx) error {
		used = used[:0]
		keys, err := tx.SigningKeys(ctx)
		if err != nil {
			return err
		}
		for _, state := range missingStates(keys) {
			k, ok := fresh[state]
			if !ok {
				return fmt.Errorf("signing key %s vanished: %w", state, store.ErrConflict)
			}
			if err := tx.InsertSigningKey(ctx, k); err != nil {
				return err
			}
			used = append(used, state)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, state := range used {
		m.log.Info("signing key created", slog.String("kid", fresh[state].KID), slog.String("state", state))
		delete(fresh, state)
	}
	return nil
}

// newKey generates a key, seals it in the vault and returns its row.
func (m *Manager) newKey(ctx context.Context, state string) (store.SigningKey, error) {
	priv, err := generateKey(m.cfg.Alg)
	if err != nil {
		return store.SigningKey{}, err
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return store.SigningKey{}, err
	}
	jwk, err := publicJWK(priv.Public(), kid, m.cfg.Alg)
	if err != nil {
		return store.SigningKey{}, err
	}
	der, err := marshalPrivate(priv)
	if err != nil {
		return store.SigningKey{}, err
	}
	secret := vault.NewSecret(der)
	clear(der)
	name := vaultPrefix + kid
	if _, err := m.v.Put(ctx, name, secret); err != nil {
		return store.SigningKey{}, fmt.Errorf("store private key: %w", err)
	}
	now := m.now()
	k := store.SigningKey{KID: kid, Alg: m.cfg.Alg, State: state, VaultName: name, PublicJWK: jwk, CreatedAt: now}
	if state == store.SigningKeyCurrent {
		k.ActivatedAt = now
	}
	return k, nil
}

// discard deletes the vault secret of a key that never made it into the table.
func (m *Manager) discard(ctx context.Context, k store.SigningKey) {
	if err := m.v.Delete(context.WithoutCancel(ctx), k.VaultName); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("discard unused signing key", slog.String("kid", k.KID), slog.Any("error", err))
	}
}

// Refresh reloads the keys from the database, so that every node signs
// with the same current key and verifies with the same set.
func (m *Manager) Refresh(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.refreshLocked(ctx); err != nil {
		return fmt.Errorf("refresh signing keys: %w", err)
	}
	return nil
}

// published reports whether k belongs in the JWK Set at now.
func (m *Manager) published(k store.SigningKey, now time.Time) bool {
	if k.State != store.SigningKeyRetired {
		return true
	}
	return now.Before(k.RetiredAt.Add(m.cfg.AccessTTL + RetiredGrace))
}

func (m *Manager) refreshLocked(ctx context.Context) error {
	rows, err := m.st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	now := m.now()
	old := m.snap.Load()
	ks := &keySet{keys: make(map[string]PublicKey, len(rows))}
	var cur *store.SigningKey
	var nextKID string
	var retired []string // newest first
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		if !m.published(r, now) {
			continue
		}
		var pk PublicKey
		if old != nil {
			pk = old.keys[r.KID]
		}
		if pk.Key == nil || pk.Alg != r.Alg {
			if pk, err = parsePublicJWK(r.PublicJWK, r.KID, r.Alg); err != nil {
				if r.State == store.SigningKeyCurrent {
					return fmt.Errorf("current key %s: %w", r.KID, err)
				}
				m.log.Error("skipping unusable signing key", slog.String("kid", r.KID), slog.Any("error", err))
				continue
			}
		}
		ks.keys[r.KID] = pk
		switch r.State {
		case store.SigningKeyCurrent:
			if cur != nil {
				return errors.New("more than one current signing key")
			}
			cur = &rows[i]
		case store.SigningKeyNext:
			nextKID, ks.hasNext = r.KID, true
		default:
			retired = append(retired, r.KID)
		}
	}
	if cur == nil {
		return errors.New("no current signing key")
	}
	ks.kid, ks.alg, ks.activatedAt = cur.KID, cur.Alg, cur.ActivatedAt
	if old != nil && old.kid == cur.KID {
		ks.priv, ks.signer = old.priv, old.signer
	} else if ks.priv, ks.signer, err = m.loadSigner(ctx, *cur); err != nil {
		return err
	}
	order := []string{cur.KID}
	if nextKID != "" {
		order = append(order, nextKID)
	}
	if ks.jwks, err = buildJWKS(ks.keys, append(order, retired...)); err != nil {
		return err
	}
	m.snap.Store(ks)
	return nil
}

func (m *Manager) loadSigner(ctx context.Context, k store.SigningKey) (crypto.Signer, jose.Signer, error) {
	secret, _, err := m.v.Get(ctx, k.VaultName)
	if err != nil {
		return nil, nil, fmt.Errorf("read private key %s: %w", k.KID, err)
	}
	priv, err := parsePrivate(secret.Reveal(), k.KID, k.Alg)
	if err != nil {
		return nil, nil, err
	}
	opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), k.KID)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Alg), Key: priv}, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("signer for %s: %w", k.KID, err)
	}
	return priv, signer, nil
}

// buildJWKS serialises the public keys in order. Each JWK is rebuilt from
// the parsed public key, so private members can never reach the output.
func buildJWKS(keys map[string]PublicKey, order []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"keys":[`)
	for i, kid := range order {
		if i > 0 {
			b.WriteByte(',')
		}
		pk := keys[kid]
		j, err := publicJWK(pk.Key, kid, pk.Alg)
		if err != nil {
			return nil, err
		}
		b.Write(j)
	}
	b.WriteString("]}")
	return b.Bytes(), nil
}

// Rotate promotes next to current, retires current and creates a new next
// key, in one transaction conditional on the current key being the one this
// Manager last loaded. Of several Managers rotating at once exactly one
// rotates; the others return nil and load the winner's keys.
//
// The promoted key has been published since it was created as next, one
// rotation earlier; nodes that have not refreshed yet reload on the first
// token with its kid.
func (m *Manager) Rotate(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ks := m.snap.Load()
	if ks == nil {
		return fmt.Errorf("rotate signing keys: %w", ErrNotLoaded)
	}
	if _, err := m.rotateLocked(ctx, ks.kid, false); err != nil {
		return fmt.Errorf("rotate signing keys: %w", err)
	}
	return nil
}

func (m *Manager) rotateLocked(ctx context.Context, expect string, onlyIfDue bool) (bool, error) {
	fresh, err := m.newKey(ctx, store.SigningKeyNext)
	if err != nil {
		return false, err
	}
	now := m.now()
	rotated := false
	var retired, promoted string
	err = m.st.WithTx(ctx, func(tx store.Tx) error {
		rotated = false
		rows, err := tx.SigningKeys(ctx)
		if err != nil {
			return err
		}
		var cur, next *store.SigningKey
		for i := range rows {
			switch rows[i].State {
			case store.SigningKeyCurrent:
				cur = &rows[i]
			case store.SigningKeyNext:
				next = &rows[i]
			}
		}
		if cur == nil || next == nil {
			return errors.New("no current or next key: load first")
		}
		if cur.KID != expect {
			return nil // another node rotated already
		}
		if onlyIfDue && now.Before(cur.ActivatedAt.Add(m.cfg.Rotation)) {
			return nil
		}
		// The updates re-check the state, so on PostgreSQL a racing
		// rotation that read the same rows fails here with ErrNotFound.
		if err := tx.TransitionSigningKey(ctx, cur.KID, store.SigningKeyCurrent, store.SigningKeyRetired, now); err != nil {
			return err
		}
		if err := tx.TransitionSigningKey(ctx, next.KID, store.SigningKeyNext, store.SigningKeyCurrent, now); err != nil {
			return err
		}
		if err := tx.InsertSigningKey(ctx, fresh); err != nil {
			return err
		}
		retired, promoted, rotated = cur.KID, next.KID, true
		return nil
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		err, rotated = nil, false // lost the race to another node
	}
	if err != nil || !rotated {
		m.discard(ctx, fresh)
	}
	if err != nil {
		return false, err
	}
	if rotated {
		m.log.Info("signing key rotated", slog.String("retired", retired), slog.String("current", promoted), slog.String("next", fresh.KID))
	}
	return rotated, m.refreshLocked(ctx)
}

// Run keeps the keys in step with the database until ctx ends: every
// RefreshInterval it reloads them, rotates when the current key has signed
// for the rotation period (one node wins), and deletes retired keys that
// are no longer published, from the table and the vault.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.tick(ctx)
		}
	}
}

func (m *Manager) tick(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ks := m.snap.Load(); ks == nil || !ks.hasNext {
		if err := m.ensureKeys(ctx); err != nil {
			m.log.Warn("create signing keys", slog.Any("error", err))
		}
	}
	if err := m.refreshLocked(ctx); err != nil {
		m.log.Warn("refresh signing keys", slog.Any("error", err))
		return
	}
	ks := m.snap.Load()
	if !m.now().Before(ks.activatedAt.Add(m.cfg.Rotation)) {
		if _, err := m.rotateLocked(ctx, ks.kid, true); err != nil {
			m.log.Warn("rotate signing keys", slog.Any("error", err))
		}
	}
	if err := m.pruneLocked(ctx); err != nil {
		m.log.Warn("prune signing keys", slog.Any("error", err))
	}
}

// Prune deletes retired keys that are no longer published.
func (m *Manager) Prune(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pruneLocked(ctx)
}

func (m *Manager) pruneLocked(ctx context.Context) error {
	rows, err := m.st.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("prune signing keys: %w", err)
	}
	now := m.now()
	for _, k := range rows {
		if m.published(k, now) {
			continue
		}
		// The row goes first: a crash before the vault delete leaves an
		// unused secret, never a row whose key is gone.
		if err := m.st.DeleteSigningKey(ctx, k.KID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // another node pruned it
			}
			return fmt.Errorf("prune signing key %s: %w", k.KID, err)
		}
		m.discard(ctx, k)
		m.log.Info("signing key deleted", slog.String("kid", k.KID))
	}
	return nil
}

// CurrentKID returns the kid of the key that signs, or "" before Load.
func (m *Manager) CurrentKID() string {
	if ks := m.snap.Load(); ks != nil {
		return ks.kid
	}
	return ""
}

// VerificationKey returns the published key named kid. An unknown kid that
// looks like one of ours (a 43-character thumbprint) triggers a reload from
// the database, at most once per second, because another node may have
// rotated moments ago.
func (m *Manager) VerificationKey(ctx context.Context, kid string) (PublicKey, bool) {
	if ks := m.snap.Load(); ks != nil {
		if k, ok := ks.keys[kid]; ok {
			return k, true
		}
	}
	if len(kid) != 43 {
		return PublicKey{}, false
	}
	now := m.now().UnixNano()
	last := m.lastMiss.Load()
	if now-last < int64(missRefreshInterval) || !m.lastMiss.CompareAndSwap(last, now) {
		return PublicKey{}, false
	}
	if err := m.Refresh(ctx); err != nil {
		m.log.Warn("reload signing keys for unknown kid", slog.Any("error", err))
		return PublicKey{}, false
	}
	k, ok := m.snap.Load().keys[kid]
	return k, ok
}

// JWKS returns the JWK Set (RFC 7517 §5) of next, current and recently
// retired keys: public members only.
func (m *Manager) JWKS() []byte {
	if ks := m.snap.Load(); ks != nil {
		return bytes.Clone(ks.jwks)
	}
	return nil
}

// JWKSHandler serves the JWK Set, for GET /.well-known/jwks.json. It may be
// cached for JWKSMaxAge seconds.
func (m *Manager) JWKSHandler() http.Handler {
	cacheControl := "public, max-age=" + strconv.Itoa(JWKSMaxAge)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		ks := m.snap.Load()
		if ks == nil {
			http.Error(w, "signing keys not loaded", http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", cacheControl)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(ks.jwks)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(ks.jwks)
	})
}

// Sign mints an access token with the current key: a compact JWS with
// header typ "at+jwt" (RFC 9068 §2.1), alg and kid. Issuer, Subject,
// Audience and ClientID are required. A zero IssuedAt is now, a zero
// Expiry is IssuedAt + access TTL, and an empty JTI is 128 random bits.
func (m *Manager) Sign(c AccessClaims) (string, error) {
	ks := m.snap.Load()
	if ks == nil {
		return "", fmt.Errorf("sign access token: %w", ErrNotLoaded)
	}
	if c.Issuer == "" || c.Subject == "" || c.Audience == "" || c.ClientID == "" {
		return "", errors.New("sign access token: iss, sub, aud and client_id are required")
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = m.now()
	}
	if c.Expiry.IsZero() {
		c.Expiry = c.IssuedAt.Add(m.cfg.AccessTTL)
	}
	if c.JTI == "" {
		c.JTI = NewJTI()
	}
	aud, err := json.Marshal(c.Audience)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	jc := jwtClaims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: aud, ClientID: c.ClientID, Scope: c.Scope,
		Expiry: c.Expiry.Unix(), IssuedAt: c.IssuedAt.Unix(), JTI: c.JTI,
		SID: c.SID, ACR: c.ACR, AuthTime: c.AuthTime,
	}
	if c.JKT != "" {
		jc.Cnf = &confirmation{JKT: c.JKT}
	}
	payload, err := json.Marshal(&jc)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	jws, err := ks.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return jws.CompactSerialize()
}

// NewJTI returns a random token identifier: 128 bits, base64url.
func NewJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
