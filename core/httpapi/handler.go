// Package httpapi translates HTTP to core.Request and core.Response to HTTP
// in Vault's shapes: paths under /v1/, X-Vault-Token or Authorization:
// Bearer, the LIST method, JSON envelopes and {"errors":[...]} bodies.
//
// It depends on package core only: every request goes through
// core.Dispatcher.Handle. It never imports the router or an engine.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
)

// Handler is what the HTTP layer needs from the core.
type Handler interface {
	Handle(ctx context.Context, req *core.Request) (*core.Response, error)
}

// Options configure the HTTP handler.
type Options struct {
	// MaxRequestSize caps JSON request bodies (default 32 MiB).
	MaxRequestSize int64
	// MaxRawSize caps raw bodies such as snapshot uploads (default 4 GiB).
	MaxRawSize int64
	// RawPaths are request paths (relative to /v1/) whose body is passed raw.
	RawPaths []string
	// UI, when set, serves the web UI under /ui/.
	UI     http.Handler
	Now    func() time.Time
	Logger *slog.Logger
	// ResponseHeaders are added to every response (e.g. audit degradation).
	ResponseHeaders func(h http.Header)
	// CORS returns the cross-origin configuration (nil: CORS off).
	CORS func(ctx context.Context) CORS
}

// defaultRawPaths are Vault's raw-body endpoints.
var defaultRawPaths = []string{"sys/storage/raft/snapshot", "sys/storage/raft/snapshot-force"}

// New returns the HTTP handler serving /v1/ (and /ui/ when configured).
func New(h Handler, opts Options) http.Handler {
	if opts.MaxRequestSize == 0 {
		opts.MaxRequestSize = 32 << 20
	}
	if opts.MaxRawSize == 0 {
		opts.MaxRawSize = 4 << 30
	}
	if opts.RawPaths == nil {
		opts.RawPaths = defaultRawPaths
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &server{h: h, o: opts}
	mux := http.NewServeMux()
	mux.Handle("/v1/", s)
	if opts.UI != nil {
		mux.Handle("/ui/", opts.UI)
		mux.Handle("/ui", http.RedirectHandler("/ui/", http.StatusTemporaryRedirect))
		mux.Handle("/{$}", http.RedirectHandler("/ui/", http.StatusTemporaryRedirect))
	}
	return noCleanPath(mux, s)
}

// noCleanPath stops ServeMux from redirecting unclean paths (/v1/a/../b):
// such paths must be rejected, not silently rewritten.
func noCleanPath(mux *http.ServeMux, s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/v1" {
			s.ServeHTTP(w, r)
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/") {
			// "*" (OPTIONS *) or an absolute-form target ServeMux would
			// answer with an empty 400.
			w.Header().Set("Content-Type", "application/json")
			writeError(w, core.Invalid("invalid request target %q: the API is served under /v1/", truncate(r.RequestURI, 64)))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// truncate cuts s to n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

type server struct {
	h Handler
	o Options
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := uuid.NewString()
	if f, ok := core.ForwardedFrom(r.Context()); ok && f.RequestID != "" {
		// Forwarded by a standby, which recorded this id: both nodes'
		// audit chains name the request the same way.
		reqID = f.RequestID
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", reqID)
	if s.o.ResponseHeaders != nil {
		s.o.ResponseHeaders(w.Header())
	}
	// A CORS preflight is answered here, as Vault does: it is the
	// browser's question, not a request, and changes nothing.
	preflight, refused := s.applyCORS(w, r)
	if preflight {
		return
	}
	// Every request reaches the Dispatcher, including those that cannot be
	// parsed or come from an origin CORS does not allow: probes are exactly
	// what an auditor must see.
	req := s.parse(r, reqID)
	if refused != nil && req.Malformed == nil {
		req.Malformed = refused
		req.Data, req.RawBody, req.ClientToken = nil, nil, ""
	}
	resp, err := s.h.Handle(r.Context(), req)
	if err != nil {
		if resp != nil && resp.StatusCode != 0 {
			// Errors that carry data (e.g. sys/health while sealed).
			writeResponse(w, req, resp)
			return
		}
		writeError(w, err)
		return
	}
	if r.Method == http.MethodHead {
		status := http.StatusOK
		if resp != nil && resp.StatusCode != 0 {
			status = resp.StatusCode
		}
		w.WriteHeader(status)
		return
	}
	writeResponse(w, req, resp)
}

// ValidatePath rejects traversal and ambiguous paths. p is relative to /v1/.
func ValidatePath(p string) error {
	if p == "" {
		return core.Invalid("missing request path")
	}
	if strings.Contains(p, "//") {
		return core.Invalid("invalid request path %q: empty path segment", p)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if seg == "." || seg == ".." {
			return core.Invalid("invalid request path %q: relative path segments are not allowed", p)
		}
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return core.Invalid("invalid request path: control characters are not allowed")
		}
	}
	return nil
}

// MaxRecordedPath bounds the path recorded for a malformed request: the
// escaped raw path is cut to this many bytes (and marked as cut).
const MaxRecordedPath = 256

// recordedPath is the escaped form of the request's raw path (relative to
// /v1/ when it has that prefix), truncated to MaxRecordedPath. Escaping keeps
// control characters and encoded slashes visible without writing them raw.
func recordedPath(r *http.Request) string {
	p := strings.TrimPrefix(r.URL.EscapedPath(), "/v1/")
	if len(p) > MaxRecordedPath {
		p = p[:MaxRecordedPath] + "...(truncated)"
	}
	return p
}

// operationOf maps an HTTP method to an operation; ok is false for a
// method the API does not support.
func operationOf(method string) (core.Operation, bool) {
	switch method {
	case http.MethodGet, http.MethodHead:
		return core.OpRead, true
	case "LIST":
		return core.OpList, true
	case http.MethodPost, http.MethodPut:
		return core.OpUpdate, true
	case http.MethodPatch:
		return core.OpPatch, true
	case http.MethodDelete:
		return core.OpDelete, true
	}
	return "", false
}

// parse turns r into a request. A request it cannot understand comes back
// with Malformed set (see core.Request.Malformed): no token, no data, the
// escaped raw path, and the operation named after the method.
func (s *server) parse(r *http.Request, reqID string) *core.Request {
	req := &core.Request{ID: reqID, Headers: r.Header.Clone(), Time: s.o.Now(), Path: recordedPath(r)}
	req.Headers.Del("X-Vault-Token")
	req.Headers.Del("Authorization")
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		req.PeerCertificates = r.TLS.PeerCertificates
	}
	host, port, err := net.SplitHostPort(r.RemoteAddr)
	if err == nil {
		req.RemoteAddr = host
		req.RemotePort, _ = strconv.Atoi(port)
	} else {
		req.RemoteAddr = r.RemoteAddr
	}
	op, ok := operationOf(r.Method)
	if !ok {
		m := r.Method
		if len(m) > 32 {
			m = m[:32]
		}
		op = core.Operation(strings.ToLower(m))
	}
	req.Operation = op
	if err := s.fill(r, req, ok); err != nil {
		req.Malformed = err
		req.Data, req.RawBody, req.ClientToken = nil, nil, ""
		if len(req.Path) > MaxRecordedPath {
			req.Path = req.Path[:MaxRecordedPath] + "...(truncated)"
		}
	}
	return req
}

// fill completes req from r: path, token, operation, query and body. An
// error names what could not be understood.
func (s *server) fill(r *http.Request, req *core.Request, knownMethod bool) error {
	raw := r.URL.EscapedPath()
	if i := strings.Index(raw, "/ocsp/"); i >= 0 && r.Method == http.MethodGet {
		raw = raw[:i]
	}
	if strings.Contains(strings.ToLower(raw), "%2f") || strings.Contains(strings.ToLower(raw), "%5c") {
		return core.Invalid("invalid request path: encoded slashes are not allowed")
	}
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		return core.Errorf(core.CodeNotFound, "unsupported path")
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	if i := strings.Index(path, "/ocsp/"); i >= 0 && r.Method == http.MethodGet {
		// An OCSP GET request carries base64 (which may contain "/" or an
		// encoded "%2F") after ocsp/: validate only the part before it.
		if err := ValidatePath(path[:i+len("/ocsp")]); err != nil {
			return err
		}
		path = path[:i+len("/ocsp/")] + strings.TrimPrefix(r.URL.EscapedPath(), "/v1/"+path[:i+len("/ocsp/")])
	} else if err := ValidatePath(path); err != nil {
		return err
	}
	req.Path = path
	wrapTTL, err := WrapTTL(r.Header)
	if err != nil {
		return err
	}
	req.WrapTTL = wrapTTL
	if !knownMethod {
		return &core.Error{Code: core.CodeUnsupported, Msg: "unsupported operation: method " + string(req.Operation)}
	}
	req.ClientToken = r.Header.Get("X-Vault-Token")
	if req.ClientToken == "" {
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			req.ClientToken = strings.TrimSpace(a[7:])
		}
	}

	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if lv := q.Get("list"); lv != "" {
			if b, _ := strconv.ParseBool(lv); b {
				req.Operation = core.OpList
			}
			q.Del("list")
		}
	case http.MethodPatch:
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/merge-patch+json") {
			return core.Errorf(core.CodeUnsupportedMedia, "PATCH requires Content-Type application/merge-patch+json, got %q", ct)
		}
	}
	if req.Operation == core.OpList && !strings.HasSuffix(req.Path, "/") {
		req.Path += "/"
	}
	if req.Operation == core.OpRead || req.Operation == core.OpList || req.Operation == core.OpDelete {
		if len(q) > 0 {
			req.Data = map[string]any{}
			for k, v := range q {
				if len(v) == 1 {
					req.Data[k] = v[0]
				} else {
					vals := make([]any, len(v))
					for i := range v {
						vals[i] = v[i]
					}
					req.Data[k] = vals
				}
			}
		}
	}
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == "LIST" {
		return nil
	}
	if s.isRaw(r, path) {
		b, err := readCapped(r.Body, s.o.MaxRawSize)
		if err != nil {
			return err
		}
		req.RawBody = b
		return nil
	}
	b, err := readCapped(r.Body, s.o.MaxRequestSize)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	data, err := DecodeJSONObject(b)
	if err != nil {
		return err
	}
	if req.Data != nil {
		for k, v := range data {
			req.Data[k] = v
		}
	} else {
		req.Data = data
	}
	return nil
}

// DecodeJSONObject parses b as one JSON object, keeping numbers as
// json.Number. Anything else is a CodeInvalid error.
func DecodeJSONObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, core.Invalid("failed to parse JSON input: %v", err)
	}
	if dec.More() {
		return nil, core.Invalid("failed to parse JSON input: unexpected data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, core.Invalid("failed to parse JSON input: unexpected data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return nil, nil
		}
		return nil, core.Invalid("failed to parse JSON input: the request body must be a JSON object")
	}
	return m, nil
}

func (s *server) isRaw(r *http.Request, path string) bool {
	// OCSP requests (RFC 6960) POST a DER body to <mount>/ocsp.
	if r.Method == http.MethodPost && (strings.HasSuffix(path, "/ocsp") || r.Header.Get("Content-Type") == "application/ocsp-request") {
		return true
	}
	for _, p := range s.o.RawPaths {
		if path == p {
			return true
		}
	}
	return false
}

func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, core.Invalid("failed to read request body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, core.Errorf(core.CodeTooLarge, "request body too large: the limit is %d bytes", limit)
	}
	return b, nil
}

// errorBody is Vault's error shape.
type errorBody struct {
	Errors []string `json:"errors"`
}

func writeError(w http.ResponseWriter, err error) {
	code := core.CodeOf(err)
	status := core.HTTPStatus(code)
	msgs := []string{}
	var ce *core.Error
	if errors.As(err, &ce) {
		if m := ce.Error(); m != "" && !(code == core.CodeNotFound && ce.Msg == "" && ce.Err == nil) {
			msgs = append(msgs, m)
		}
	} else {
		msgs = append(msgs, "internal error")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Errors: msgs})
}

func writeResponse(w http.ResponseWriter, req *core.Request, resp *core.Response) {
	resp = wrappedOnly(resp)
	if resp != nil {
		for k, vs := range resp.Headers {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
	}
	status := http.StatusOK
	if resp != nil && resp.StatusCode != 0 {
		status = resp.StatusCode
	}
	if resp != nil && resp.Raw != nil {
		if resp.Raw.ContentType != "" {
			w.Header().Set("Content-Type", resp.Raw.ContentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write(resp.Raw.Body)
		return
	}
	if resp.IsEmpty() {
		if status == http.StatusOK {
			status = http.StatusNoContent
		}
		w.WriteHeader(status)
		return
	}
	var body any
	switch {
	case resp.Bare:
		body = resp.Data
	case resp.Legacy:
		body = legacyBody(Envelope(req, resp), resp.Data)
	default:
		body = Envelope(req, resp)
	}
	b, err := json.Marshal(body)
	if err != nil {
		writeError(w, core.Errorf(core.CodeInternal, "failed to encode response: %v", err))
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
