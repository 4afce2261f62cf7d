package oauth

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/keygate/keygate/internal/httpapi"
)

// maxFormBytes caps request bodies of the OAuth endpoints. A larger body is
// answered 413 with an RFC 6749 invalid_request body (DESIGN.md: "413 body
// too large"), before any of it is parsed.
const maxFormBytes = 64 << 10

var b64 = base64.RawURLEncoding

// credentialParams must never arrive in the URL, where they end up in logs
// and browser history (RFC 6749 §2.3.1: "The parameters can only be
// transmitted in the request-body and MUST NOT be included in the request
// URI"; RFC 9700 §4.3).
var credentialParams = []string{"client_secret", "client_assertion", "refresh_token",
	"subject_token", "actor_token", "token", "password", "code", "code_verifier"}

// form holds the parameters of one request body.
type form struct {
	one   map[string]string
	multi map[string][]string
}

// get returns a single-valued parameter, "" when absent or empty.
func (f form) get(name string) string { return f.one[name] }

// all returns the values of a parameter that may repeat.
func (f form) all(name string) []string { return f.multi[name] }

// parseForm reads the body of an OAuth endpoint request. Parameters named
// in multi may repeat (RFC 8693 resource and audience); any other repeated
// parameter is an error.
func parseForm(w http.ResponseWriter, r *http.Request, multi ...string) (form, error) {
	ct := r.Header.Get("Content-Type")
	if err := checkContentType(ct); err != nil {
		return form{}, err
	}
	if err := checkQuery(r.URL.RawQuery); err != nil {
		return form{}, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return form{}, &httpapi.OAuthError{Status: http.StatusRequestEntityTooLarge,
				Code: "invalid_request", Description: "request body is too large"}
		}
		return form{}, invalidRequest("cannot read request body")
	}
	return parseBody(body, multi...)
}

func checkContentType(ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		// RFC 6749 §3.2: the client sends parameters "using the
		// application/x-www-form-urlencoded format".
		return invalidRequest("content type must be application/x-www-form-urlencoded")
	}
	return nil
}

// checkQuery refuses credentials in the URL. Other query parameters are
// ignored: RFC 6749 §3.2 lets the endpoint URI carry a query component.
func checkQuery(raw string) error {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return invalidRequest("malformed query string")
	}
	for _, p := range credentialParams {
		if _, ok := q[p]; ok {
			return invalidRequest(p + " must be sent in the request body, not the URL")
		}
	}
	return nil
}

func parseBody(body []byte, multi ...string) (form, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return form{}, invalidRequest("malformed form body")
	}
	f := form{one: make(map[string]string, len(vals))}
	for name, vs := range vals {
		repeatable := false
		for _, m := range multi {
			repeatable = repeatable || name == m
		}
		if repeatable {
			for _, v := range vs {
				if v != "" {
					if f.multi == nil {
						f.multi = map[string][]string{}
					}
					f.multi[name] = append(f.multi[name], v)
				}
			}
			continue
		}
		// RFC 6749 §3.2: "Request and response parameters MUST NOT be
		// included more than once."
		if len(vs) > 1 {
			return form{}, invalidRequest("parameter " + safeName(name) + " is repeated")
		}
		// RFC 6749 §3.1: "Parameters sent without a value MUST be treated
		// as if they were omitted from the request."
		if vs[0] != "" {
			f.one[name] = vs[0]
		}
	}
	return f, nil
}

// safeName keeps an attacker-chosen parameter name short and printable
// before it goes into an error description.
func safeName(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}
