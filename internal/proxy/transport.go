package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Transport tuning. Each upstream gets its own *http.Transport (so that its timeout can be the
// transport's ResponseHeaderTimeout and its connection pool is its own), cloned from these values.
const (
	maxIdleConns          = 512
	maxIdleConnsPerHost   = 256
	idleConnTimeout       = 90 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	expectContinueTimeout = 1 * time.Second
	dialTimeout           = 10 * time.Second
	dialKeepAlive         = 30 * time.Second
	maxResponseHeaderSize = 1 << 20

	// streamIdleTimeout cuts a response body that has not produced a byte for this long
	// (DESIGN.md "Proxy behaviour").
	streamIdleTimeout = 60 * time.Second
)

// newTransport returns the transport of one upstream. Compression is left to the two ends:
// DisableCompression keeps the transport from asking for gzip itself and from decoding, so the
// client's Accept-Encoding and the upstream's Content-Encoding pass through untouched.
// HTTP_PROXY/HTTPS_PROXY from the environment are honoured, for egress through a corporate proxy.
func newTransport(headerTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: dialKeepAlive}
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ExpectContinueTimeout:  expectContinueTimeout,
		ResponseHeaderTimeout:  headerTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderSize,
		DisableCompression:     true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// bufferPool lends the ReverseProxy its 32 KiB copy buffers, which it would otherwise allocate
// per request.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (bp *bufferPool) Get() []byte  { return *bp.p.Get().(*[]byte) }
func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }

// idleBody closes an upstream response body that produces no byte for idle, so that a stalled
// stream does not hold a connection and a goroutine forever. It also counts the bytes.
// At EOF it also redacts the credential from the response trailers, which the transport fills in
// only then.
type idleBody struct {
	rc       io.ReadCloser
	idle     time.Duration
	t        *time.Timer
	n        int64
	timedOut atomic.Bool
	res      *http.Response
	cred     *credential
}

func newIdleBody(res *http.Response, cred *credential, idle time.Duration) *idleBody {
	rc := res.Body
	b := &idleBody{rc: rc, idle: idle, res: res, cred: cred}
	b.t = time.AfterFunc(idle, func() {
		b.timedOut.Store(true)
		_ = rc.Close()
	})
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.t.Reset(b.idle)
		b.n += int64(n)
	}
	if err == io.EOF && len(b.res.Trailer) > 0 {
		b.cred.redactHeaders(b.res.Trailer)
	}
	if err != nil && err != io.EOF && b.timedOut.Load() {
		err = errStreamIdle
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.t.Stop()
	return b.rc.Close()
}

// limitBody caps a request body of unknown length (chunked) at max bytes and counts what was read.
// It is read by the transport's goroutine, hence the atomics.
type limitBody struct {
	rc       io.ReadCloser
	max      int64
	n        atomic.Int64
	tooLarge atomic.Bool
}

func (b *limitBody) Read(p []byte) (int, error) {
	left := b.max - b.n.Load()
	if left < 0 {
		b.tooLarge.Store(true)
		return 0, &http.MaxBytesError{Limit: b.max}
	}
	// Read one byte more than allowed, to tell "exactly max" from "more".
	if int64(len(p)) > left+1 {
		p = p[:left+1]
	}
	n, err := b.rc.Read(p)
	if b.n.Add(int64(n)) > b.max {
		b.tooLarge.Store(true)
		return 0, &http.MaxBytesError{Limit: b.max}
	}
	return n, err
}

func (b *limitBody) Close() error { return b.rc.Close() }
