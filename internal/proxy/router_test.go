package proxy

import (
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/config"
)

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern string
		path    string
		want    bool
	}{
		{"/v1/chat/completions", "/v1/chat/completions", true},
		{"/v1/chat/completions", "/v1/chat/completions/", false},
		{"/v1/chat/completions", "/v1/chat", false},
		{"/v1/chat/completions", "/v1/chat/completionsX", false},
		{"/v1/models/**", "/v1/models", true},
		{"/v1/models/**", "/v1/models/", true},
		{"/v1/models/**", "/v1/models/x", true},
		{"/v1/models/**", "/v1/models/x/y", true},
		{"/v1/models/**", "/v1/modelsx", false},
		{"/v1/models/**", "/v1/models/../admin", false},
		{"/v1/models/**", "/v1/models/x/./y", false},
		{"/v1/*/x", "/v1/a/x", true},
		{"/v1/*/x", "/v1//x", false},
		{"/v1/*/x", "/v1/../x", false},
		{"/v1/*/x", "/v1/./x", false},
		{"/v1/*/x", "/v1/a/b/x", false},
		{"/v1/*", "/v1/a", true},
		{"/v1/*", "/v1/a/", false},
		{"/v1/*", "/v1", false},
		{"/a/", "/a/", true},
		{"/a/", "/a", false},
		{"/", "/", true},
		{"/", "/a", false},
		{"/**", "/", true},
		{"/**", "/anything/at/all", true},
		{"/**", "/..", false},
		{"/geocode", "/geocode", true},
		{"/geocode", "geocode", false},
		{"/geocode", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.path, func(t *testing.T) {
			pt, err := compilePattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := pt.match(tt.path); got != tt.want {
				t.Errorf("match(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestCompilePatternRejects(t *testing.T) {
	for _, p := range []string{"", "a", "/a//b", "/a/../b", "/./a", "/**/a", "/a*", "/a/b**", "/a?x", "/a%2f", "/a b", "/a\\b"} {
		if _, err := compilePattern(p); err == nil {
			t.Errorf("compilePattern(%q) = nil error, want one", p)
		}
	}
}

func TestRouterLookup(t *testing.T) {
	rt, err := newRouter([]config.Route{
		{Methods: []string{"GET"}, Path: "/v1/**", Scope: "read"},
		{Methods: []string{"POST"}, Path: "/v1/admin/*", Scope: "admin"},
		{Methods: []string{"GET"}, Path: "/v1/admin/*", Scope: "admin-read"},
		{Methods: []string{"POST"}, Path: "/v1/chat/completions", Scope: "chat"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		wantScope          string // "" for no route
		wantPathMatched    bool
	}{
		{"literal", "POST", "/v1/chat/completions", "chat", true},
		{"rest", "GET", "/v1/chat/completions", "read", true},
		{"star beats rest", "GET", "/v1/admin/x", "admin-read", true},
		{"star post", "POST", "/v1/admin/x", "admin", true},
		{"head follows get", "HEAD", "/v1/anything", "read", true},
		{"405", "DELETE", "/v1/admin/x", "", true},
		{"404", "GET", "/v2/x", "", false},
		{"empty rest is /", "GET", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, matched := rt.lookup(tt.method, tt.path)
			got := ""
			if r != nil {
				got = r.scope
			}
			if got != tt.wantScope || matched != tt.wantPathMatched {
				t.Errorf("lookup(%s %s) = %q, %v; want %q, %v", tt.method, tt.path, got, matched, tt.wantScope, tt.wantPathMatched)
			}
		})
	}
	if got, want := rt.allowed("/v1/admin/x"), []string{"POST", "GET", "HEAD"}; !slices.Equal(got, want) {
		t.Errorf("allowed = %v, want %v", got, want)
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		escaped, decoded string
		ok               bool
	}{
		{"/echo/x", "/echo/x", true},
		{"/echo/", "/echo/", true},
		{"/echo", "/echo", true},
		{"/echo/a%20b", "/echo/a b", true},
		{"/echo/v1.2/x", "/echo/v1.2/x", true},
		{"/echo/..x/...", "/echo/..x/...", true},
		{"/echo/../admin", "/echo/../admin", false},
		{"/echo/..", "/echo/..", false},
		{"/echo/./x", "/echo/./x", false},
		{"/echo/%2e%2e/x", "/echo/../x", false},
		{"/echo/%2E./x", "/echo/../x", false},
		{"/echo/..;/x", "/echo/..;/x", false},
		{"/echo/a%2fb", "/echo/a/b", false},
		{"/echo/a%2Fb", "/echo/a/b", false},
		{"/echo/a%5cb", "/echo/a\\b", false},
		{"/echo/a\\b", "/echo/a\\b", false},
		{"/echo//x", "/echo//x", false},
		{"//echo/x", "//echo/x", false},
		{"/echo/a%00b", "/echo/a\x00b", false},
		{"/echo/a%0ab", "/echo/a\nb", false},
		{"/echo/%252e%252e/x", "/echo/%2e%2e/x", false},
		{"/echo/%252f", "/echo/%2f", false},
		{"echo", "echo", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.escaped, func(t *testing.T) {
			msg := checkPath(tt.escaped, tt.decoded)
			if got := msg == ""; got != tt.ok {
				t.Errorf("checkPath(%q) = %q, want ok=%v", tt.escaped, msg, tt.ok)
			}
		})
	}
}

// FuzzMatch: any pattern and path, no panic; a match never lets a dot segment through; a path
// that passes checkPath splits into an upstream name without "/".
func FuzzMatch(f *testing.F) {
	seeds := [][2]string{
		{"/v1/models/**", "/v1/models/x/y"},
		{"/v1/*/x", "/v1/../x"},
		{"/**", "/a/./b"},
		{"/a/", "/a/"},
		{"/", ""},
		{"/*", "/.."},
		{"/a/*/b/**", "/a/x/b/../../etc/passwd"},
		{"/**", "/%2e%2e/x"},
		{"/x", "/x\\..\\y"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, path string) {
		msg := checkPath(path, path)
		if msg == "" {
			name, rest := splitUpstream(path)
			if strings.Contains(name, "/") || (rest != "" && rest[0] != '/') {
				t.Fatalf("splitUpstream(%q) = %q, %q", path, name, rest)
			}
			if hasDotSegment(path) {
				t.Fatalf("checkPath(%q) passed a dot segment", path)
			}
		}
		pt, err := compilePattern(pat)
		if err != nil {
			return
		}
		if pt.match(path) && hasDotSegment(path) {
			t.Fatalf("pattern %q matched %q, which has a dot segment", pat, path)
		}
		rt := &router{routes: []route{{pattern: pt, methods: []string{"GET"}}}}
		rt.lookup("GET", path)
		rt.allowed(path)
	})
}
