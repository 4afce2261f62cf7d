package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// WriteHeaders sets RateLimit-Policy and RateLimit from d and, when d
// refuses, Retry-After in whole seconds rounded up (at least 1), as RFC
// 9110 §10.2.3 delay-seconds.
func WriteHeaders(w http.ResponseWriter, d Decision) {
	h := w.Header()
	if d.Policy != "" {
		h.Set("RateLimit-Policy", d.Policy)
	}
	if d.State != "" {
		h.Set("RateLimit", d.State)
	}
	if !d.Allowed && d.Limit != "" {
		h.Set("Retry-After", strconv.FormatInt(RetryAfterSeconds(d.RetryAfter), 10))
	}
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1: a client that
// waits that long is admitted.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(ceilSeconds(d), 1)
}

// maxForwardedHops bounds the X-Forwarded-For entries examined.
const maxForwardedHops = 32

// ClientIP returns the address of the client of r. It is the peer address
// (RemoteAddr) unless the peer is inside a trusted prefix; then
// X-Forwarded-For is walked from the right, skipping trusted hops, and the
// first untrusted address is the client. An entry that is not an IP ends
// the walk at the last hop that was one. The result is a canonical IP (an
// IPv4-mapped IPv6 address is unmapped, a zone dropped), or RemoteAddr
// unchanged when it is not an address at all.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parseHost(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	client := peer
	hops := 0
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			var part string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				part, v = v[j+1:], v[:j]
			} else {
				part, v = v, ""
			}
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			hops++
			ip, ok := parseHost(part)
			if !ok || hops > maxForwardedHops {
				return client.String()
			}
			client = ip
			if !isTrusted(ip, trusted) {
				return client.String()
			}
		}
	}
	return client.String()
}

// parseHost parses "ip", "ip:port" or "[ipv6]:port". The zone of a
// link-local address is dropped: it names an interface of this host, not
// the client.
func parseHost(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		host, _, err := net.SplitHostPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		if ip, err = netip.ParseAddr(host); err != nil {
			return netip.Addr{}, false
		}
	}
	return ip.WithZone("").Unmap(), true
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
