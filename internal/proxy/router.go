package proxy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keygate/keygate/internal/config"
)

// Path patterns (DESIGN.md "Grammar"): "*" matches exactly one non-empty segment; a final "**"
// matches the rest of the path: zero or more segments, so "/v1/models/**" matches "/v1/models",
// "/v1/models/", "/v1/models/x" and "/v1/models/x/y" (the Ant/Spring convention operators expect).
// Literal segments match exactly, case-sensitively, against the decoded path. A trailing slash is
// significant: "/a/" matches only "/a/" and "/a" only "/a". Neither wildcard ever matches a "." or
// ".." segment, whatever the path hygiene in front of the matcher did.
//
// Patterns are compiled once into segment lists and matched by walking the path string: no regexp
// and no allocation on the hot path.

type segKind uint8

// The order of the kinds is their specificity, most specific first; end of pattern sits between a
// literal and "*" so that "/a" wins over "/a/**" for the path "/a".
const (
	segLiteral segKind = iota
	segEnd
	segStar
	segRest
)

type segment struct {
	kind segKind
	lit  string
}

// pattern is a compiled route path pattern.
type pattern struct {
	raw  string
	segs []segment
}

var errBadPattern = errors.New("invalid path pattern")

// compilePattern parses a route path pattern. It accepts what config.Validate accepts.
func compilePattern(p string) (pattern, error) {
	if p == "" || p[0] != '/' {
		return pattern{}, fmt.Errorf("%w %q: must start with /", errBadPattern, p)
	}
	if strings.ContainsAny(p, "?#%\\") || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return pattern{}, fmt.Errorf("%w %q: must not contain ?, #, %%, \\, spaces or control characters", errBadPattern, p)
	}
	parts := strings.Split(p[1:], "/")
	segs := make([]segment, 0, len(parts))
	for i, s := range parts {
		last := i == len(parts)-1
		switch {
		case s == "" && !last:
			return pattern{}, fmt.Errorf("%w %q: empty segment", errBadPattern, p)
		case s == "." || s == "..":
			return pattern{}, fmt.Errorf("%w %q: . or .. segment", errBadPattern, p)
		case s == "**":
			if !last {
				return pattern{}, fmt.Errorf("%w %q: ** only as the last segment", errBadPattern, p)
			}
			segs = append(segs, segment{kind: segRest})
		case s == "*":
			segs = append(segs, segment{kind: segStar})
		case strings.Contains(s, "*"):
			return pattern{}, fmt.Errorf("%w %q: * and ** must be whole segments", errBadPattern, p)
		default:
			segs = append(segs, segment{kind: segLiteral, lit: s})
		}
	}
	return pattern{raw: p, segs: segs}, nil
}

// match reports whether the decoded path (starting with "/") matches.
func (pt *pattern) match(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	rest := path
	for _, sg := range pt.segs {
		if sg.kind == segRest {
			return !hasDotSegment(rest)
		}
		if rest == "" || rest[0] != '/' {
			return false
		}
		rest = rest[1:]
		seg := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		switch sg.kind {
		case segLiteral:
			if seg != sg.lit {
				return false
			}
		case segStar:
			if seg == "" || seg == "." || seg == ".." {
				return false
			}
		}
	}
	return rest == ""
}

// hasDotSegment reports whether a "/"-separated path holds a "." or ".." segment.
func hasDotSegment(p string) bool {
	for p != "" {
		i := strings.IndexByte(p, '/')
		seg := p
		if i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			p = ""
		}
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// moreSpecific orders patterns so that the first match is the most specific one: segment by
// segment, a literal beats the end of the pattern, which beats "*", which beats "**".
func moreSpecific(a, b *pattern) int {
	for i := 0; ; i++ {
		ka, kb := segEnd, segEnd
		if i < len(a.segs) {
			ka = a.segs[i].kind
		}
		if i < len(b.segs) {
			kb = b.segs[i].kind
		}
		if ka != kb {
			return cmp.Compare(ka, kb)
		}
		if i >= len(a.segs) || i >= len(b.segs) || ka == segRest {
			return 0
		}
	}
}

// route is one compiled config.Route.
type route struct {
	pattern
	methods          []string
	scope            string
	requireSignature bool
}

func (rt *route) allows(method string) bool {
	for _, m := range rt.methods {
		if m == method {
			return true
		}
	}
	// HEAD is GET without a body (RFC 9110 §9.3.2): a route open to GET is open to HEAD.
	if method == "HEAD" {
		return slices.Contains(rt.methods, "GET")
	}
	return false
}

// router holds one upstream's routes, most specific first.
type router struct {
	routes []route
}

func newRouter(routes []config.Route) (*router, error) {
	rt := &router{routes: make([]route, 0, len(routes))}
	for _, r := range routes {
		pt, err := compilePattern(r.Path)
		if err != nil {
			return nil, err
		}
		if len(r.Methods) == 0 {
			return nil, fmt.Errorf("route %s: no methods", r.Path)
		}
		rt.routes = append(rt.routes, route{pattern: pt, methods: slices.Clone(r.Methods), scope: r.Scope,
			requireSignature: r.RequireSignature})
	}
	slices.SortStableFunc(rt.routes, func(a, b route) int { return moreSpecific(&a.pattern, &b.pattern) })
	return rt, nil
}

// lookup finds the most specific route matching path that allows method. When some route matches
// the path but none allows the method, pathMatched is true (a 405, not a 404).
func (rt *router) lookup(method, path string) (r *route, pathMatched bool) {
	if path == "" {
		path = "/"
	}
	for i := range rt.routes {
		r := &rt.routes[i]
		if !r.match(path) {
			continue
		}
		if r.allows(method) {
			return r, true
		}
		pathMatched = true
	}
	return nil, pathMatched
}

// allowed lists the methods of every route matching path, for Allow and CORS preflights.
func (rt *router) allowed(path string) []string {
	if path == "" {
		path = "/"
	}
	var ms []string
	for i := range rt.routes {
		r := &rt.routes[i]
		if !r.match(path) {
			continue
		}
		for _, m := range r.methods {
			if !slices.Contains(ms, m) {
				ms = append(ms, m)
			}
		}
		if slices.Contains(r.methods, "GET") && !slices.Contains(ms, "HEAD") {
			ms = append(ms, "HEAD")
		}
	}
	return ms
}
