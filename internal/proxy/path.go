package proxy

import "strings"

// Path hygiene. keygate matches routes on the decoded path but forwards the client's escaped path,
// so the two must name the same resource for every upstream, whatever its path normalisation does.
// Rather than normalise (and guess how the upstream would), keygate refuses anything ambiguous:
//
//   - dot segments "." and "..", also percent-encoded ("%2e%2e", "%2E.") and with a ";param"
//     suffix ("..;" is ".." to Tomcat and friends);
//   - encoded "/" and "\" ("%2f", "%5c"), which a decoding upstream would split differently;
//   - double encodings of those ("%252e", "%252f", "%255c"), for upstreams that decode twice;
//   - a literal "\" (a separator on Windows servers and to some URL parsers);
//   - NUL and other control bytes, encoded or not;
//   - empty segments ("//"), except a trailing slash.
//
// These checks are byte scans over strings the server has already parsed: no allocation.

// checkPath reports why the request path is refused, or "" when it is clean. escaped is
// r.URL.EscapedPath(), decoded is r.URL.Path.
func checkPath(escaped, decoded string) string {
	if escaped == "" || escaped[0] != '/' || decoded == "" || decoded[0] != '/' {
		return "the path must start with /"
	}
	for i := 0; i < len(escaped); i++ {
		if escaped[i] != '%' || i+2 >= len(escaped) {
			continue
		}
		if h, l := escaped[i+1], escaped[i+2]|0x20; (h == '2' && l == 'f') || (h == '5' && l == 'c') {
			return "encoded / or \\ in the path"
		}
	}
	segStart := 1
	for i := 1; i <= len(decoded); i++ {
		if i < len(decoded) {
			c := decoded[i]
			switch {
			case c < 0x20 || c == 0x7f:
				return "control character in the path"
			case c == '\\':
				return "backslash in the path"
			case c == '%':
				if i+2 < len(decoded) {
					if h, l := decoded[i+1], decoded[i+2]|0x20; h == '2' && (l == 'e' || l == 'f') || h == '5' && l == 'c' {
						return "double-encoded character in the path"
					}
				}
			}
			if c != '/' {
				continue
			}
		}
		seg := decoded[segStart:i]
		if seg == "" && i < len(decoded) {
			return "empty segment in the path"
		}
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			seg = seg[:j]
		}
		if seg == "." || seg == ".." {
			return "dot segment in the path"
		}
		segStart = i + 1
	}
	return ""
}

// splitUpstream splits "/name/rest" into "name" and "/rest" ("" when the path is just "/name").
func splitUpstream(p string) (name, rest string) {
	p = p[1:]
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}
