package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// TagHeader names the run and phase of every request the harness sends.
const TagHeader = "X-Vigil-Bench-Run"

// newTransport returns a keep-alive HTTP/1.1 transport whose idle pool
// holds conns connections, so a closed loop of conns workers reuses its
// connections instead of dialing.
func newTransport(conns int, insecure bool) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               nil, // a benchmark never goes through a proxy
		DialContext:         d.DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		// A non-nil empty map disables HTTP/2 over TLS too.
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in for self-signed test servers
	}
	return tr
}

// API is a small Vault-API client for setup, cleanup and metrics: JSON in,
// JSON out, errors carrying the server's messages. It is safe for
// concurrent use.
type API struct {
	Base  string // http://127.0.0.1:8200 (no trailing slash)
	Token string
	Tag   string // sent as X-Vigil-Bench-Run
	HTTP  *http.Client
}

// APIError is a non-2xx answer.
type APIError struct {
	Method, Path string
	Status       int
	Errors       []string
}

func (e *APIError) Error() string {
	msg := strings.Join(e.Errors, "; ")
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s /v1/%s: HTTP %d: %s", e.Method, e.Path, e.Status, msg)
}

// StatusOf returns the HTTP status of an *APIError (0 otherwise).
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// WithTag returns a copy of a that sends tag.
func (a *API) WithTag(tag string) *API {
	c := *a
	c.Tag = tag
	return &c
}

// Do sends method /v1/path with body (JSON-encoded unless nil or []byte)
// and decodes a JSON answer into a map (nil for an empty body). A status
// outside 2xx is an *APIError.
func (a *API) Do(ctx context.Context, method, path string, body any) (map[string]any, error) {
	raw, status, err := a.raw(ctx, method, path, body, true)
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return nil, apiError(method, path, status, raw)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s /v1/%s: decode answer: %w", method, path, err)
	}
	return m, nil
}

// DoNoToken is Do without the token header (logins, health).
func (a *API) DoNoToken(ctx context.Context, method, path string, body any) (map[string]any, error) {
	raw, status, err := a.raw(ctx, method, path, body, false)
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return nil, apiError(method, path, status, raw)
	}
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s /v1/%s: decode answer: %w", method, path, err)
		}
	}
	return m, nil
}

// Raw sends a request and returns the body and status whatever the status.
func (a *API) Raw(ctx context.Context, method, path string, body any) ([]byte, int, error) {
	return a.raw(ctx, method, path, body, true)
}

func (a *API) raw(ctx context.Context, method, path string, body any, withToken bool) ([]byte, int, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, 0, err
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+"/v1/"+path, rd)
	if err != nil {
		return nil, 0, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if withToken && a.Token != "" {
		req.Header.Set("X-Vault-Token", a.Token)
	}
	if a.Tag != "" {
		req.Header.Set(TagHeader, a.Tag)
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s /v1/%s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s /v1/%s: read answer: %w", method, path, err)
	}
	return raw, resp.StatusCode, nil
}

func apiError(method, path string, status int, raw []byte) error {
	e := &APIError{Method: method, Path: path, Status: status}
	var body struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(raw, &body) == nil && len(body.Errors) > 0 {
		e.Errors = body.Errors
	} else if s := strings.TrimSpace(string(raw)); s != "" {
		e.Errors = []string{truncate(s, 300)}
	}
	return e
}

// data returns m["data"] as a map (Vault wraps most answers in "data").
func data(m map[string]any) map[string]any {
	d, _ := m["data"].(map[string]any)
	return d
}

// Request is one load request a scenario produces: method, path under
// /v1/ and a JSON body (nil for none).
type Request struct {
	Method  string
	Path    string
	Body    []byte
	NoToken bool // logins: send no X-Vault-Token
}

// loadOp turns a scenario's request generator into an Op against base,
// tagging every request with tag. The answer body is read to the end so
// the connection returns to the pool; for a status outside 2xx the
// server's message becomes the Outcome's Err.
func loadOp(hc *http.Client, base, token, tag string, next func(w *Worker) Request) Op {
	return func(ctx context.Context, w *Worker) Outcome {
		r := next(w)
		var body io.Reader
		if r.Body != nil {
			body = bytes.NewReader(r.Body)
		}
		req, err := http.NewRequestWithContext(ctx, r.Method, base+"/v1/"+r.Path, body)
		if err != nil {
			return Outcome{Err: err}
		}
		if r.Body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if !r.NoToken {
			req.Header.Set("X-Vault-Token", token)
		}
		req.Header.Set(TagHeader, tag)
		resp, err := hc.Do(req)
		if err != nil {
			return Outcome{Err: err}
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			_, err = io.Copy(io.Discard, resp.Body)
			if err != nil {
				return Outcome{Err: fmt.Errorf("read answer: %w", err)}
			}
			return Outcome{Status: resp.StatusCode}
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_, _ = io.Copy(io.Discard, resp.Body)
		return Outcome{Status: resp.StatusCode, Err: apiError(r.Method, r.Path, resp.StatusCode, raw)}
	}
}
