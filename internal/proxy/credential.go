package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/keygate/keygate/internal/config"
)

const redactedText = "[redacted]"

// credential is an upstream's credential derived from one secret version: the header or query
// value to send, and every form in which the secret could come back in a response or a log.
type credential struct {
	entry *secretEntry

	headerKey string   // canonical header name; "" for query auth
	headerVal []string // shared, cap 1: set into each outbound header map, never appended to in place
	queryKey  string   // escaped parameter name, for query auth
	queryVal  string   // escaped value, for query auth

	needles    []string // forms of the secret to redact, longest first
	needleB    [][]byte
	maxNeedle  int
	headerAuth bool
}

func newCredential(a *config.UpstreamAuth, e *secretEntry) *credential {
	secret := string(e.value.Reveal())
	c := &credential{entry: e}
	var extra []string
	switch a.Type {
	case config.UpstreamAuthBearer:
		c.headerKey, c.headerVal = "Authorization", []string{"Bearer " + secret}
	case config.UpstreamAuthHeader:
		c.headerKey = textproto.CanonicalMIMEHeaderKey(a.Name)
		c.headerVal = []string{strings.ReplaceAll(a.Template, config.SecretPlaceholder, secret)}
	case config.UpstreamAuthBasic:
		b64 := base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + secret))
		c.headerKey, c.headerVal = "Authorization", []string{"Basic " + b64}
		extra = append(extra, b64)
	case config.UpstreamAuthQuery:
		c.queryKey, c.queryVal = url.QueryEscape(a.Param), url.QueryEscape(secret)
	}
	c.headerAuth = c.headerKey != ""
	// The secret as sent, and as an echoing upstream might write it back: JSON-escaped, or
	// percent-encoded (a query credential inside a reflected URL).
	forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret)}
	if j, err := json.Marshal(secret); err == nil {
		forms = append(forms, string(j[1:len(j)-1]))
	}
	forms = append(forms, extra...)
	for _, f := range forms {
		if f == "" || containsString(c.needles, f) {
			continue
		}
		c.needles = append(c.needles, f)
	}
	// Longest first, so that a form containing another is replaced whole.
	for i := 1; i < len(c.needles); i++ {
		for j := i; j > 0 && len(c.needles[j]) > len(c.needles[j-1]); j-- {
			c.needles[j], c.needles[j-1] = c.needles[j-1], c.needles[j]
		}
	}
	for _, n := range c.needles {
		c.needleB = append(c.needleB, []byte(n))
		c.maxNeedle = max(c.maxNeedle, len(n))
	}
	return c
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// inject adds the credential to the outbound request, replacing whatever the client sent under
// the same header or query parameter name.
func (c *credential) inject(out *http.Request) {
	if c.headerAuth {
		out.Header[c.headerKey] = c.headerVal
		return
	}
	out.URL.RawQuery = setQueryParam(out.URL.RawQuery, c.queryKey, c.queryVal)
}

// setQueryParam drops every occurrence of key from rawQuery (also percent-encoded spellings of it)
// and appends key=val. The other parameters keep their order and the client's escaping.
func setQueryParam(rawQuery, key, val string) string {
	var b strings.Builder
	b.Grow(len(rawQuery) + len(key) + len(val) + 2)
	plain, _ := url.QueryUnescape(key)
	for rawQuery != "" {
		var kv string
		kv, rawQuery, _ = strings.Cut(rawQuery, "&")
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if k == key || strings.ContainsAny(k, "%+") && unescapeQuery(k) == plain {
			continue
		}
		b.WriteString(kv)
		b.WriteByte('&')
	}
	b.WriteString(key)
	b.WriteByte('=')
	b.WriteString(val)
	return b.String()
}

// unescapeQuery unescapes a query key; a key that does not unescape is returned as is
// (the ReverseProxy has already dropped unparsable parameters).
func unescapeQuery(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// redactString replaces every form of the secret in s.
func (c *credential) redactString(s string) string {
	for _, n := range c.needles {
		if strings.Contains(s, n) {
			s = strings.ReplaceAll(s, n, redactedText)
		}
	}
	return s
}

// redactHeaders replaces the secret in every response header value.
func (c *credential) redactHeaders(h http.Header) {
	for _, vs := range h {
		for i, v := range vs {
			for _, n := range c.needles {
				if strings.Contains(v, n) {
					vs[i] = c.redactString(v)
					break
				}
			}
		}
	}
}

// redactReader streams src with every form of the secret replaced. It holds back the last
// maxNeedle-1 bytes until more data (or EOF) shows whether they start a match.
type redactReader struct {
	src  io.ReadCloser
	c    *credential
	in   []byte // read, not yet redacted
	out  []byte // redacted, not yet returned
	eof  bool
	err  error
	read []byte
}

func newRedactReader(src io.ReadCloser, c *credential) *redactReader {
	return &redactReader{src: src, c: c, read: make([]byte, 8<<10)}
}

func (r *redactReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.eof {
			if len(r.in) > 0 {
				r.process(true)
				continue
			}
			if r.err != nil {
				return 0, r.err
			}
			return 0, io.EOF
		}
		n, err := r.src.Read(r.read)
		r.in = append(r.in, r.read[:n]...)
		if err != nil {
			r.eof = true
			if err != io.EOF {
				r.err = err
			}
		}
		r.process(r.eof)
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

func (r *redactReader) Close() error { return r.src.Close() }

// process moves r.in to r.out, redacting. Unless final, a tail that may be the start of a match
// stays in r.in: a match starting before limit lies wholly inside r.in.
func (r *redactReader) process(final bool) {
	b := r.in
	limit := len(b) - (r.c.maxNeedle - 1)
	if final {
		limit = len(b)
	}
	if limit <= 0 {
		return
	}
	done, pos := 0, 0
	var out []byte
	for pos < limit {
		best, bestLen := -1, 0
		for _, n := range r.c.needleB {
			if j := bytes.Index(b[pos:], n); j >= 0 && (best < 0 || pos+j < best) {
				best, bestLen = pos+j, len(n)
			}
		}
		if best < 0 || best >= limit {
			break
		}
		out = append(out, b[done:best]...)
		out = append(out, redactedText...)
		pos = best + bestLen
		done = pos
	}
	end := max(limit, done)
	out = append(out, b[done:end]...)
	r.out = out
	r.in = append(b[:0], b[end:]...)
}

// redactBytes returns b with every form of the secret replaced.
func (c *credential) redactBytes(b []byte) []byte {
	for _, n := range c.needleB {
		if bytes.Contains(b, n) {
			b = bytes.ReplaceAll(b, n, []byte(redactedText))
		}
	}
	return b
}
