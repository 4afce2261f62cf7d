package httpsig

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

var (
	errDigestMissing  = invalid("Content-Digest missing")
	errDigestSyntax   = invalid("malformed Content-Digest")
	errDigestNoAlg    = invalid("Content-Digest has no sha-256 or sha-512 digest")
	errDigestMismatch = invalid("Content-Digest does not match the content")
)

// ErrBodyTooLarge is returned by ReadBody for content over the limit; the
// proxy answers 413.
var ErrBodyTooLarge = errors.New("request body too large")

// VerifyContentDigest checks the Content-Digest field lines (RFC 9530 §2)
// against body. Each sha-256 and sha-512 digest present must match, and at
// least one must be present; digests with other algorithms are ignored
// (§2: "A recipient MAY ignore any or all digests"), which leaves the
// insecure ones of §5 (md5, sha, unixsum, unixcksum, adler, crc32c) with no
// effect.
func VerifyContentDigest(fieldLines []string, body []byte) error {
	if len(fieldLines) == 0 {
		return errDigestMissing
	}
	raw := strings.Join(fieldLines, ", ")
	if len(raw) > MaxHeaderSize {
		return errTooLarge
	}
	ms, err := parseDictionary(raw)
	if err != nil {
		return errDigestSyntax
	}
	checked := false
	for _, m := range ms {
		if m.isList || m.item.val.kind != kindBytes || len(m.item.params) > 0 {
			return errDigestSyntax
		}
		var sum []byte
		switch m.key {
		case "sha-256":
			s := sha256.Sum256(body)
			sum = s[:]
		case "sha-512":
			s := sha512.Sum512(body)
			sum = s[:]
		default:
			continue
		}
		if subtle.ConstantTimeCompare(sum, m.item.val.b) != 1 {
			return errDigestMismatch
		}
		checked = true
	}
	if !checked {
		return errDigestNoAlg
	}
	return nil
}

// ReadBody reads r's content, at most limit bytes (the upstream's
// max_request_body), and puts an identical, re-readable body back on r so
// that the bytes whose digest was checked are the bytes forwarded. More
// than limit bytes is ErrBodyTooLarge.
func ReadBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, ErrBodyTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, ErrBodyTooLarge
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	return body, nil
}
