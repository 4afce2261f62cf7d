package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/ratelimit"
	"github.com/keygate/keygate/internal/store"
)

// Request and answer bounds.
const (
	maxBodyBytes      = 64 << 10
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// Revoke kinds of POST /admin/v1/revoke: exactly one is given.
const (
	RevokeSubject = "subject"
	RevokeFamily  = "family"
	RevokeClient  = "client"
	RevokeToken   = "token" // a raw refresh, capability or access token
)

// RevokeResult is the answer of POST /admin/v1/revoke.
type RevokeResult struct {
	Revoked   string `json:"revoked"`              // the kind given
	TokenKind string `json:"token_kind,omitempty"` // refresh | capability | access, for a token
	Families  int    `json:"families"`             // refresh families revoked
}

// ErrNoSuchToken is returned by Backend.Revoke for a raw token that is not
// a live keygate token; the API answers 404.
var ErrNoSuchToken = errors.New("no such live token")

// ErrUnsupported is returned by a Backend function for something this
// build cannot do; the API answers 501.
var ErrUnsupported = errors.New("not supported")

// Backend is what the admin routes act on. Every field is required; errors
// wrapping store.ErrNotFound answer 404.
type Backend struct {
	Families   func(ctx context.Context, subject string) ([]store.RefreshFamily, error)
	Revoke     func(ctx context.Context, kind, value string) (RevokeResult, error)
	Blocks     func(ctx context.Context) ([]store.Block, error)
	Unblock    func(ctx context.Context, key string) error
	Quotas     func(ctx context.Context, key string) ([]ratelimit.QuotaUsage, error)
	ResetQuota func(ctx context.Context, name, key string) error
	Audit      func(ctx context.Context, since time.Time, limit int) ([]store.AuditRecord, error)
	Secrets    func(ctx context.Context) ([]store.SecretInfo, error)
}

// Routes returns the admin API routes of DESIGN.md "Admin listener".
// Answers are JSON objects with one list member (families, blocks, quotas,
// records, secrets), so fields can be added later.
func Routes(b Backend) []Route {
	routes := []Route{
		{"GET /admin/v1/families", b.families},
		{"POST /admin/v1/revoke", b.revoke},
		{"GET /admin/v1/blocks", b.blocks},
		{"DELETE /admin/v1/blocks/{key...}", b.unblock},
		{"GET /admin/v1/quotas", b.quotas},
		{"DELETE /admin/v1/quotas/{name}/{key...}", b.resetQuota},
		{"GET /admin/v1/audit", b.audit},
		{"GET /admin/v1/secrets", b.secrets},
	}
	for i := range routes {
		routes[i].Handler = mapErrors(routes[i].Handler)
	}
	return routes
}

// family is a refresh family as the API shows it: no token hashes (the
// store keeps those per token, not here) and nothing secret.
type family struct {
	ID           string     `json:"id"`
	ClientID     string     `json:"client_id"`
	Subject      string     `json:"subject"`
	Scope        string     `json:"scope"`
	DPoPJKT      string     `json:"dpop_jkt,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    time.Time  `json:"expires_at"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
}

func (b Backend) families(w http.ResponseWriter, r *http.Request) error {
	subject := r.URL.Query().Get("subject")
	if subject == "" {
		return httpapi.BadRequest("query parameter subject is required")
	}
	list, err := b.Families(r.Context(), subject)
	if err != nil {
		return err
	}
	out := make([]family, 0, len(list))
	for _, f := range list {
		v := family{ID: f.ID, ClientID: f.ClientID, Subject: f.Subject, Scope: f.Scope, DPoPJKT: f.DPoPJKT,
			CreatedAt: f.CreatedAt, ExpiresAt: f.ExpiresAt, RevokeReason: f.RevokeReason}
		if !f.RevokedAt.IsZero() {
			t := f.RevokedAt
			v.RevokedAt = &t
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"families": out})
	return nil
}

func (b Backend) revoke(w http.ResponseWriter, r *http.Request) error {
	body, err := readJSON(w, r)
	if err != nil {
		return err
	}
	kind, value, err := parseRevokeBody(body)
	if err != nil {
		return err
	}
	res, err := b.Revoke(r.Context(), kind, value)
	switch {
	case errors.Is(err, ErrNoSuchToken):
		return httpapi.NotFound("the token is not a live keygate token")
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (b Backend) blocks(w http.ResponseWriter, r *http.Request) error {
	list, err := b.Blocks(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []store.Block{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"blocks": list})
	return nil
}

func (b Backend) unblock(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("key")
	if key == "" {
		return httpapi.BadRequest("a block key (subject or ip) is required")
	}
	if err := b.Unblock(r.Context(), key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (b Backend) quotas(w http.ResponseWriter, r *http.Request) error {
	key := r.URL.Query().Get("key")
	if key == "" {
		return httpapi.BadRequest("query parameter key is required")
	}
	list, err := b.Quotas(r.Context(), key)
	if err != nil {
		return err
	}
	if list == nil {
		list = []ratelimit.QuotaUsage{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"quotas": list})
	return nil
}

func (b Backend) resetQuota(w http.ResponseWriter, r *http.Request) error {
	name, key := r.PathValue("name"), r.PathValue("key")
	if name == "" || key == "" {
		return httpapi.BadRequest("a quota name and key are required")
	}
	if err := b.ResetQuota(r.Context(), name, key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (b Backend) audit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return httpapi.BadRequest("since must be an RFC 3339 time, e.g. 2025-01-02T15:04:05Z")
		}
		since = t
	}
	limit := DefaultAuditLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return httpapi.BadRequest("limit must be a positive integer")
		}
		limit = min(n, MaxAuditLimit)
	}
	recs, err := b.Audit(r.Context(), since, limit)
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []store.AuditRecord{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs})
	return nil
}

// secretInfo is a vault secret's name and versions, never its value.
type secretInfo struct {
	Name      string    `json:"name"`
	Versions  int       `json:"versions"`
	Latest    int       `json:"latest"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (b Backend) secrets(w http.ResponseWriter, r *http.Request) error {
	list, err := b.Secrets(r.Context())
	if err != nil {
		return err
	}
	out := make([]secretInfo, 0, len(list))
	for _, s := range list {
		out = append(out, secretInfo{Name: s.Name, Versions: s.Versions, Latest: s.Latest, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"secrets": out})
	return nil
}

// readJSON reads a body of at most maxBodyBytes, refusing a content type
// other than JSON.
func readJSON(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !mediaTypeIs(ct, "application/json") {
		return nil, &httpapi.Problem{Status: http.StatusUnsupportedMediaType, Type: httpapi.ProblemTypeBase + "unsupported-media-type",
			Title: "Unsupported Media Type", Detail: "the body must be application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &httpapi.Problem{Status: http.StatusRequestEntityTooLarge, Type: httpapi.ProblemTypeBase + "body-too-large",
				Title: "Content Too Large", Detail: fmt.Sprintf("the body exceeds %d bytes", maxBodyBytes)}
		}
		return nil, httpapi.BadRequest("the body could not be read")
	}
	return body, nil
}

// maxRevokeValue bounds the value of a revoke selector, like the longest
// token keygate accepts anywhere (DESIGN.md "Tokens").
const maxRevokeValue = 8 << 10

// parseRevokeBody parses the body of POST /admin/v1/revoke: one JSON
// object with exactly one member, named subject, family, client or token,
// whose value is a non-empty string of at most 8 KiB. It reads the object
// member by member rather than into a map, so that a repeated name
// ({"subject":"a","subject":"b"}), which a map would silently resolve to
// the last value, is refused as ambiguous. Trailing data after the object
// is refused. Every error is a 400 *httpapi.Problem.
func parseRevokeBody(body []byte) (kind, value string, err error) {
	const one = `the body must hold exactly one of "subject", "family", "client", "token"`
	badJSON := httpapi.BadRequest("the body is not valid JSON of the expected shape")
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", "", badJSON
	}
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", "", badJSON
		}
		k, _ := tok.(string) // inside an object the decoder returns names as strings
		var v *string
		if err := dec.Decode(&v); err != nil || v == nil {
			return "", "", badJSON
		}
		if n++; n > 1 {
			return "", "", httpapi.BadRequest(one)
		}
		kind, value = k, *v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return "", "", badJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", "", httpapi.BadRequest("the body holds more than one JSON value")
	}
	switch {
	case n == 0:
		return "", "", httpapi.BadRequest(one)
	case kind != RevokeSubject && kind != RevokeFamily && kind != RevokeClient && kind != RevokeToken:
		return "", "", httpapi.BadRequest(`unknown key; give exactly one of "subject", "family", "client", "token"`)
	case value == "" || len(value) > maxRevokeValue:
		return "", "", httpapi.BadRequest(kind + " must be a non-empty string of at most 8 KiB")
	}
	return kind, value, nil
}

func mediaTypeIs(ct, want string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == want
}

// mapErrors turns the Backend's not-found and unsupported errors into
// problems; anything else is the boundary's 500.
func mapErrors(h httpapi.HandlerFunc) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		err := h(w, r)
		if err == nil {
			return nil
		}
		if _, ok := errors.AsType[*httpapi.Problem](err); ok {
			return err
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			p := httpapi.NotFound("no such " + notFoundWhat(r))
			p.Cause = err
			return p
		case errors.Is(err, ErrUnsupported):
			return &httpapi.Problem{Status: http.StatusNotImplemented, Type: httpapi.ProblemTypeBase + "not-implemented",
				Title: "Not Implemented", Detail: "this build cannot do that", Cause: err}
		}
		return err
	}
}

func notFoundWhat(r *http.Request) string {
	switch {
	case r.PathValue("name") != "":
		return "quota"
	case r.PathValue("key") != "":
		return "block"
	}
	return "item"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, status, v)
}
