// Package capability implements keygate's limited-use capability tokens
// (kgc_, DESIGN.md "Capability tokens"): the Twilio/Stripe pattern, where a
// confidential backend mints a token for one of its users that an app may
// present to the proxy a fixed number of times.
//
// A token is "kgc_" + 43 characters of base64url (256 random bits). Only
// its SHA-256 hash is stored (store.CapabilityStore), beside the minting
// client, subject, scope, optional upstream restriction, max_uses, uses and
// expiry.
//
// Use counting. Each forwarded request spends exactly one use, in the
// database, with one conditional statement
//
//	UPDATE capabilities SET uses = uses + 1
//	WHERE id = ? AND uses < max_uses AND revoked_at = 0 AND expires_at > ?
//	RETURNING uses
//
// run as the last pre-forward check (Service.Consume), after signatures and
// limits, so a request refused for any other reason never spends a use.
// Because the counter lives only in the database and is never cached, the
// count is exact under any concurrency, across nodes and across restarts.
// A use is spent when keygate decides to forward: a request the upstream
// then fails (5xx, timeout, a client that goes away) is not refunded,
// because a refund on upstream failure would let anyone able to make the
// upstream fail retry without limit.
//
// DPoP binding (dpop_jkt) is stored at minting; presenting a bound
// capability requires a proof check the app wires as Options.ProofCheck.
// Without it, bound capabilities are refused with 401 invalid_token.
//
// Written by hand: no library models capability tokens.
package capability

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/oauth"
	"github.com/keygate/keygate/internal/proxy"
	"github.com/keygate/keygate/internal/store"
)

// Prefix starts every capability token, so secret scanners can find them.
const Prefix = oauth.CapabilityTokenPrefix

// tokenChars is the length of a token after the prefix: 32 random bytes in
// unpadded base64url.
const tokenChars = 43

var b64 = base64.RawURLEncoding

// ProofCheck verifies that r carries a valid DPoP proof (RFC 9449 §4.3) for
// the key with thumbprint jkt, over the capability token raw (ath), and
// consumes the proof's jti. An error that is an *httpapi.OAuthError is sent
// as is; any other is 401 invalid_token.
type ProofCheck func(r *http.Request, raw, jkt string) error

// Options are the Service's optional collaborators.
type Options struct {
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
	// ProofCheck, when set, lets DPoP-bound capabilities be used; nil
	// refuses them.
	ProofCheck ProofCheck
}

// Service mints, authenticates, counts and revokes capability tokens. It
// implements proxy.Authenticator, oauth.CapabilityMinter,
// oauth.CapabilityRevoker and oauth.CapabilityIntrospector, and offers the admin API an operator-level
// revocation (RevokeCapabilityByOperator).
type Service struct {
	st    store.Store
	now   func() time.Time
	rand  io.Reader
	log   *slog.Logger
	proof ProofCheck
}

var (
	_ proxy.Authenticator     = (*Service)(nil)
	_ oauth.CapabilityMinter  = (*Service)(nil)
	_ oauth.CapabilityRevoker = (*Service)(nil)

	_ oauth.CapabilityIntrospector = (*Service)(nil)
)

// New returns a Service over st.
func New(st store.Store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, now: opts.Now, rand: opts.Rand, log: opts.Logger, proof: opts.ProofCheck}
}

// MintCapability creates a capability token for a request the token
// service has validated and returns the token, which is never stored.
func (s *Service) MintCapability(ctx context.Context, req oauth.CapabilityRequest) (string, error) {
	return s.MintCapabilityTx(ctx, s.st, req)
}

// MintCapabilityTx is MintCapability through tx (oauth.CapabilityMinter),
// so the caller can record the minting in the same transaction.
func (s *Service) MintCapabilityTx(ctx context.Context, tx store.Tx, req oauth.CapabilityRequest) (string, error) {
	switch {
	case req.ClientID == "" || req.Subject == "" || req.Scope == "":
		return "", errors.New("mint capability: empty client, subject or scope")
	case req.MaxUses < 1:
		return "", errors.New("mint capability: max uses must be positive")
	case req.ExpiresIn <= 0:
		return "", errors.New("mint capability: lifetime must be positive")
	}
	buf := make([]byte, 32+16)
	if _, err := io.ReadFull(s.rand, buf); err != nil {
		return "", fmt.Errorf("mint capability: read random: %w", err)
	}
	raw := Prefix + b64.EncodeToString(buf[:32])
	now := s.now()
	c := store.Capability{
		ID:        b64.EncodeToString(buf[32:]),
		Hash:      hash(raw),
		ClientID:  req.ClientID,
		Subject:   req.Subject,
		Scope:     req.Scope,
		Upstream:  req.Upstream,
		MaxUses:   req.MaxUses,
		DPoPJKT:   req.DPoPJKT,
		CreatedAt: now,
		ExpiresAt: now.Add(req.ExpiresIn),
	}
	if err := tx.CreateCapability(ctx, c); err != nil {
		return "", fmt.Errorf("mint capability: %w", err)
	}
	s.log.InfoContext(ctx, "capability minted", "capability", c.ID, "client_id", c.ClientID,
		"subject", c.Subject, "scope", c.Scope, "upstream", c.Upstream, "max_uses", c.MaxUses,
		"expires_at", c.ExpiresAt)
	return raw, nil
}

// Authenticate implements proxy.Authenticator for "Authorization: Bearer
// kgc_..." (RFC 6750 §2.1). It refuses, with 401 invalid_token, unknown,
// revoked, expired and spent capabilities, and with 403 insufficient_scope
// a capability restricted to another upstream than the one the request
// path names. It spends nothing: Consume does, last.
func (s *Service) Authenticate(r *http.Request) (*proxy.Caller, error) {
	raw, err := proxy.BearerToken(r)
	if err != nil {
		return nil, err
	}
	c, err := s.lookup(r.Context(), raw)
	if err != nil {
		return nil, err
	}
	if err := checkUpstream(c, r); err != nil {
		return nil, err
	}
	if c.DPoPJKT != "" {
		if s.proof == nil {
			// Like RFC 9449 §7.1's refusal of a bound token without its
			// proof: keygate cannot check the proof, so it cannot accept
			// the token.
			return nil, invalidToken("DPoP-bound capability tokens are not supported by this server", nil)
		}
		if err := s.proof(r, raw, c.DPoPJKT); err != nil {
			if _, ok := errors.AsType[*httpapi.OAuthError](err); ok {
				return nil, err
			}
			return nil, invalidToken("the DPoP proof is invalid", err)
		}
	}
	return callerOf(c), nil
}

// AuthenticateBound is Authenticate for a capability whose DPoP proof the
// caller has already verified, for a key with thumbprint jkt (RFC 9449
// §7): the capability must be bound to exactly that key. It is the hook
// for a DPoP authenticator that routes kgc_ tokens here.
func (s *Service) AuthenticateBound(r *http.Request, raw, jkt string) (*proxy.Caller, error) {
	c, err := s.lookup(r.Context(), raw)
	if err != nil {
		return nil, err
	}
	if c.DPoPJKT == "" || jkt == "" || c.DPoPJKT != jkt {
		return nil, invalidToken("the capability token is not bound to the proof's key", nil)
	}
	if err := checkUpstream(c, r); err != nil {
		return nil, err
	}
	return callerOf(c), nil
}

// lookup finds the capability raw, refusing with 401 invalid_token one
// that is malformed (without a query), unknown, revoked, expired or spent.
func (s *Service) lookup(ctx context.Context, raw string) (store.Capability, error) {
	if !wellFormed(raw) {
		return store.Capability{}, invalidToken("the capability token is invalid", nil)
	}
	c, err := s.st.CapabilityByHash(ctx, hash(raw))
	if errors.Is(err, store.ErrNotFound) {
		return store.Capability{}, invalidToken("the capability token is invalid", nil)
	}
	if err != nil {
		return store.Capability{}, fmt.Errorf("capability lookup: %w", err)
	}
	if err := usable(c, s.now()); err != nil {
		return store.Capability{}, err
	}
	return c, nil
}

// checkUpstream refuses, with 403 insufficient_scope, a capability
// restricted to another upstream than the one the request path names.
func checkUpstream(c store.Capability, r *http.Request) error {
	if c.Upstream != "" && c.Upstream != upstreamOf(r.URL.Path) {
		return &httpapi.OAuthError{Status: http.StatusForbidden, Code: "insufficient_scope",
			Description: "the capability token is restricted to another upstream", Challenge: "Bearer"}
	}
	return nil
}

// Consume is the pre-forward check that spends one use of a capability
// caller; other callers pass. It must run after every other check. No use
// left (or revoked, or expired, meanwhile) is 401 invalid_token.
func (s *Service) Consume(r *http.Request, c *proxy.Caller, route *proxy.RouteMatch) error {
	if c == nil || c.Kind != proxy.KindCapability {
		return nil
	}
	uses, err := s.st.ConsumeCapability(r.Context(), c.TokenID, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return invalidToken("capability token spent or expired", nil)
	}
	if err != nil {
		return fmt.Errorf("consume capability: %w", err)
	}
	s.log.DebugContext(r.Context(), "capability use", "capability", c.TokenID, "uses", uses)
	return nil
}

// RevokeCapability revokes raw when clientID minted it, and otherwise
// does nothing (RFC 7009 §2.2: the answer is the same whether or not
// anything was revoked).
func (s *Service) RevokeCapability(ctx context.Context, clientID, raw string) error {
	_, _, err := s.RevokeCapabilityTx(ctx, s.st, clientID, raw)
	return err
}

// RevokeCapabilityTx is RevokeCapability through tx
// (oauth.CapabilityRevoker), reporting the capability and whether this
// call revoked it, so the caller can record the revocation in the same
// transaction.
func (s *Service) RevokeCapabilityTx(ctx context.Context, tx store.Tx, clientID, raw string) (store.Capability, bool, error) {
	if !wellFormed(raw) {
		return store.Capability{}, false, nil
	}
	c, err := tx.CapabilityByHash(ctx, hash(raw))
	if errors.Is(err, store.ErrNotFound) {
		return store.Capability{}, false, nil
	}
	if err != nil {
		return store.Capability{}, false, err
	}
	if c.ClientID != clientID {
		return store.Capability{}, false, nil
	}
	ok, err := tx.RevokeCapability(ctx, c.ID, s.now())
	if err != nil || !ok {
		return store.Capability{}, false, err
	}
	s.log.InfoContext(ctx, "capability revoked", "capability", c.ID, "client_id", clientID)
	return c, true, nil
}

// IntrospectCapability returns the capability raw and true while it could
// still be forwarded: known, not revoked, not expired, with a use left
// (oauth.CapabilityIntrospector). Anything else is false, saying nothing
// about why (RFC 7662 §2.2). Uses is read now; a racing Consume may spend
// the last use right after.
func (s *Service) IntrospectCapability(ctx context.Context, raw string) (store.Capability, bool, error) {
	if !wellFormed(raw) {
		return store.Capability{}, false, nil
	}
	c, err := s.st.CapabilityByHash(ctx, hash(raw))
	if errors.Is(err, store.ErrNotFound) {
		return store.Capability{}, false, nil
	}
	if err != nil {
		return store.Capability{}, false, fmt.Errorf("introspect capability: %w", err)
	}
	if usable(c, s.now()) != nil {
		return store.Capability{}, false, nil
	}
	return c, true, nil
}

// RevokeCapabilityByOperator revokes raw whatever client minted it, for
// the admin API (an operator, unlike a client at /oauth2/revoke, may
// revoke any capability token). found is false when raw is not a
// capability token keygate knows; a token that is already revoked, spent
// or expired is found, and revoking it again changes nothing.
func (s *Service) RevokeCapabilityByOperator(ctx context.Context, raw string) (found bool, err error) {
	if !wellFormed(raw) {
		return false, nil
	}
	c, err := s.st.CapabilityByHash(ctx, hash(raw))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("revoke capability: %w", err)
	}
	ok, err := s.st.RevokeCapability(ctx, c.ID, s.now())
	if err != nil {
		return false, fmt.Errorf("revoke capability: %w", err)
	}
	if ok {
		s.log.InfoContext(ctx, "capability revoked by operator", "capability", c.ID, "client_id", c.ClientID,
			"subject", c.Subject)
	}
	return true, nil
}

// Prune deletes capabilities that expired more than an hour before now,
// every interval until ctx ends. The hour keeps rows that nodes with a
// slow clock might still be asked about.
func (s *Service) Prune(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.st.PruneCapabilities(ctx, s.now().Add(-time.Hour))
		if err != nil {
			s.log.Warn("prune failed", "table", "capabilities", "error", err)
		} else if n > 0 {
			s.log.Info("pruned expired rows", "table", "capabilities", "rows", n)
		}
	}
}

// usable refuses what can never be forwarded again. Consume decides for
// good; this only spares a refused request the later checks.
func usable(c store.Capability, now time.Time) error {
	switch {
	case !c.RevokedAt.IsZero():
		return invalidToken("the capability token was revoked", nil)
	case !now.Before(c.ExpiresAt):
		return invalidToken("capability token spent or expired", nil)
	case c.Uses >= c.MaxUses:
		return invalidToken("capability token spent or expired", nil)
	}
	return nil
}

func callerOf(c store.Capability) *proxy.Caller {
	return &proxy.Caller{Subject: c.Subject, ClientID: c.ClientID, Scope: c.Scope, TokenID: c.ID,
		Kind: proxy.KindCapability}
}

// wellFormed reports whether raw has the shape of a capability token, so
// anything else is refused without a database query.
func wellFormed(raw string) bool {
	if len(raw) != len(Prefix)+tokenChars || !strings.HasPrefix(raw, Prefix) {
		return false
	}
	b, err := b64.DecodeString(raw[len(Prefix):])
	return err == nil && len(b) == 32
}

func hash(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// upstreamOf is the first segment of the request path, which is how the
// proxy picks the upstream (proxy.Wrap).
func upstreamOf(path string) string {
	path = strings.TrimPrefix(path, "/")
	name, _, _ := strings.Cut(path, "/")
	return name
}

func invalidToken(desc string, cause error) error {
	return &httpapi.OAuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: desc,
		Challenge: "Bearer", Cause: cause}
}
