package ratelimit

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

var trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ff::/48")}

func TestClientIP(t *testing.T) {
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer ignores xff", "192.0.2.1:1234", []string{"198.51.100.1"}, "192.0.2.1"},
		{"trusted peer, no xff", "10.1.1.1:1234", nil, "10.1.1.1"},
		{"trusted peer, client in xff", "10.1.1.1:1234", []string{"198.51.100.1"}, "198.51.100.1"},
		{"spoofed left part is not believed", "10.1.1.1:1234", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops skipped", "10.1.1.1:1234", []string{"6.6.6.6, 198.51.100.1, 10.2.2.2, 10.3.3.3"}, "198.51.100.1"},
		{"several headers in order", "10.1.1.1:1234", []string{"6.6.6.6, 198.51.100.1", "10.2.2.2"}, "198.51.100.1"},
		{"all trusted: leftmost", "10.1.1.1:1234", []string{"10.9.9.9, 10.2.2.2"}, "10.9.9.9"},
		{"garbage stops the walk", "10.1.1.1:1234", []string{"198.51.100.1, nonsense, 10.2.2.2"}, "10.2.2.2"},
		{"garbage at the right: the peer", "10.1.1.1:1234", []string{"198.51.100.1, nonsense"}, "10.1.1.1"},
		{"empty entries skipped", "10.1.1.1:1234", []string{"198.51.100.1,, ,"}, "198.51.100.1"},
		{"entry with port", "10.1.1.1:1234", []string{"198.51.100.1:5678"}, "198.51.100.1"},
		{"ipv6 peer", "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"ipv6 trusted peer", "[2001:db8:ff::1]:443", []string{"2001:db8::7"}, "2001:db8::7"},
		{"bracketed ipv6 entry", "10.1.1.1:1", []string{"[2001:db8::7]:99"}, "2001:db8::7"},
		{"mapped ipv4 peer unmapped and trusted", "[::ffff:10.1.1.1]:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"zone dropped", "[fe80::1%eth0]:1", nil, "fe80::1"},
		{"peer without port", "192.0.2.1", nil, "192.0.2.1"},
		{"unparsable peer returned as is", "@pipe", []string{"198.51.100.1"}, "@pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, trusted); got != tt.want {
				t.Errorf("ClientIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClientIPHopLimit(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:1"
	r.Header.Set("X-Forwarded-For", "198.51.100.1,"+strings.Repeat("10.0.0.2,", 100)+"10.0.0.3")
	if got := ClientIP(r, trusted); got != "10.0.0.2" {
		t.Errorf("ClientIP over the hop limit = %q, want the last trusted hop examined", got)
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.1.1.1:1234", "6.6.6.6, 198.51.100.1, 10.2.2.2")
	f.Add("192.0.2.1:1", "198.51.100.1")
	f.Add("[2001:db8:ff::1]:443", "[2001:db8::7]:99, fe80::1%eth0")
	f.Add("10.0.0.1", ",,, ,")
	f.Add("not an address", "1.2.3.4")
	f.Add("10.0.0.1:1", "::ffff:10.0.0.2, 300.1.1.1, 1.2.3.4:99999")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header["X-Forwarded-For"] = strings.Split(xff, "\n")
		got := ClientIP(r, trusted)
		if got == remote {
			return
		}
		ip, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("ClientIP(%q, %q) = %q: neither an IP nor RemoteAddr", remote, xff, got)
		}
		if ip.Zone() != "" || ip.Is4In6() {
			t.Fatalf("ClientIP = %q: not canonical", got)
		}
	})
}

// The header formatter must produce an RFC 9651 sf-string whatever the
// limit name holds.
func FuzzPolicyItem(f *testing.F) {
	f.Add("per-user", int64(20), int64(1))
	f.Add(`a"b\c`, int64(0), int64(-5))
	f.Add("ünïcode\x00\n", int64(1<<62), int64(3))
	f.Fuzz(func(t *testing.T, name string, q, w int64) {
		for _, s := range []string{policyItem(name, q, w), stateItem(name, q, w)} {
			if !strings.HasPrefix(s, `"`) {
				t.Fatalf("%q does not start with a string", s)
			}
			// Scan the sf-string (RFC 9651 §4.2.5).
			i := 1
			for ; i < len(s); i++ {
				c := s[i]
				if c == '\\' {
					i++
					if i >= len(s) || (s[i] != '"' && s[i] != '\\') {
						t.Fatalf("%q: bad escape", s)
					}
					continue
				}
				if c == '"' {
					break
				}
				if c < 0x20 || c > 0x7e {
					t.Fatalf("%q: byte %#x not allowed in an sf-string", s, c)
				}
			}
			if i >= len(s) {
				t.Fatalf("%q: unterminated string", s)
			}
			params := s[i+1:]
			if !strings.HasPrefix(params, ";q=") && !strings.HasPrefix(params, ";r=") {
				t.Fatalf("%q: parameters %q", s, params)
			}
			if strings.ContainsAny(params, "\" ,\\") {
				t.Fatalf("%q: parameters %q", s, params)
			}
		}
	})
}
