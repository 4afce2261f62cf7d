package dpop

import (
	"errors"
	"strconv"
	"strings"
)

var errURI = errors.New("not a valid http(s) URI")

// normalizeURI returns the syntax-based normal form (RFC 3986 §6.2.2) and
// scheme-based normal form (§6.2.3) of an absolute http or https URI,
// without its query and fragment: RFC 9449 §4.3 check 9 compares htu
// "ignoring any query and fragment parts".
//
//   - scheme and host lowercased (§6.2.2.1);
//   - hex digits of percent-encodings uppercased (§6.2.2.1) and encoded
//     unreserved characters decoded (§6.2.2.2);
//   - dot segments removed (§6.2.2.3, algorithm of §5.2.4);
//   - the default port, or an empty port, removed and an empty path made
//     "/" (§6.2.3).
//
// Userinfo, non-ASCII and characters outside the RFC 3986 grammar are
// refused rather than repaired.
func normalizeURI(s string) (string, error) {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	colon := strings.Index(s, "://")
	if colon <= 0 {
		return "", errURI
	}
	scheme := strings.ToLower(s[:colon])
	var defaultPort string
	switch scheme {
	case "http":
		defaultPort = "80"
	case "https":
		defaultPort = "443"
	default:
		return "", errURI
	}
	rest := s[colon+3:]
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	host, port, err := splitAuthority(authority)
	if err != nil {
		return "", err
	}
	if port == defaultPort {
		port = ""
	}
	path, err = normalizePath(path)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(host) + 1 + len(port) + len(path))
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(path)
	return b.String(), nil
}

// splitAuthority returns the lowercased host and the port in canonical
// decimal ("" when absent or empty).
func splitAuthority(a string) (host, port string, err error) {
	if a == "" || strings.IndexByte(a, '@') >= 0 {
		return "", "", errURI // no host, or userinfo (RFC 9110 §4.2.4)
	}
	if a[0] == '[' { // IP-literal
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "", errURI
		}
		host, port = a[:end+1], a[end+1:]
		for i := 1; i < end; i++ {
			c := a[i]
			if !(isHex(c) || c == ':' || c == '.' || c == 'v' || c == 'V') {
				return "", "", errURI
			}
		}
		if port != "" {
			if port[0] != ':' {
				return "", "", errURI
			}
			port = port[1:]
		}
	} else {
		host = a
		if i := strings.LastIndexByte(a, ':'); i >= 0 {
			host, port = a[:i], a[i+1:]
		}
		if host == "" {
			return "", "", errURI
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			// reg-name without pct-encoded: unreserved / sub-delims.
			if !(isAlnum(c) || strings.IndexByte("-._~!$&'()*+,;=", c) >= 0) {
				return "", "", errURI
			}
		}
	}
	if port != "" {
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return "", "", errURI
			}
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return "", "", errURI
		}
		port = strconv.FormatUint(n, 10)
	}
	return strings.ToLower(host), port, nil
}

// normalizePath normalises percent-encodings and removes dot segments.
func normalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	clean := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			clean = false
		case c == '.':
			clean = false
		case isAlnum(c) || strings.IndexByte("-_~!$&'()*+,;=:@/", c) >= 0:
		default:
			return "", errURI
		}
	}
	if clean {
		return p, nil
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", errURI
		}
		d := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isAlnum(d) || d == '-' || d == '.' || d == '_' || d == '~' {
			b.WriteByte(d)
		} else {
			const upper = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(upper[d>>4])
			b.WriteByte(upper[d&0xf])
		}
		i += 2
	}
	return removeDotSegments(b.String()), nil
}

// removeDotSegments is RFC 3986 §5.2.4 for an absolute path.
func removeDotSegments(p string) string {
	if !strings.Contains(p, "/.") {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
