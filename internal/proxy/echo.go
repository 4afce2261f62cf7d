package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// EchoRequest is what the dev-mode echo upstream answers: exactly what it received.
type EchoRequest struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`  // escaped, as received
	Query   string              `json:"query"` // the raw query string, as received
	Headers map[string][]string `json:"headers"`
}

// maxEchoBody bounds how much of a request body the echo reads (and throws away).
const maxEchoBody = 1 << 20

// EchoHandler is the built-in echo upstream of dev mode (DESIGN.md "Dev mode"): it answers 200 JSON
// {"method", "path", "query", "headers"} describing the request it received, headers included and
// nothing removed, so a walk-through shows the upstream got the injected key the app never had.
// It deliberately reflects request headers; it is for demos and must not front a real secret.
func EchoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxEchoBody))
		h := make(map[string][]string, len(r.Header)+1)
		for k, vs := range r.Header {
			h[k] = vs
		}
		if r.Host != "" {
			h["Host"] = []string{r.Host}
		}
		b, err := json.Marshal(EchoRequest{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Headers: h})
		if err != nil {
			http.Error(w, "echo: encode", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(b, '\n'))
	})
}

// EchoTransport serves requests with EchoHandler in process, so dev mode needs no second port:
// wire it as the echo upstream's transport (Deps.UpstreamTransports). The handler sees the
// outbound request exactly as keygate would send it.
func EchoTransport() http.RoundTripper { return handlerTransport{h: EchoHandler()} }

// handlerTransport is an http.RoundTripper answering from an http.Handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil {
		req.Body = http.NoBody
	}
	defer req.Body.Close()
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	// An empty User-Agent means "send none" to http.Transport; mirror the wire.
	if ua, ok := in.Header["User-Agent"]; ok && len(ua) == 1 && ua[0] == "" {
		delete(in.Header, "User-Agent")
	}
	rec := &recorder{header: make(http.Header)}
	t.h.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(rec.status) + " " + http.StatusText(rec.status),
		StatusCode:    rec.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}, nil
}

// recorder is the minimal http.ResponseWriter handlerTransport needs.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
