package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/httpapi"
)

// recordingAuditor keeps every audit event.
type recordingAuditor struct {
	mu     sync.Mutex
	events []*core.AuditEvent
}

func (a *recordingAuditor) LogRequest(_ context.Context, ev *core.AuditEvent) error { return a.add(ev) }
func (a *recordingAuditor) LogResponse(_ context.Context, ev *core.AuditEvent) error {
	return a.add(ev)
}
func (a *recordingAuditor) add(ev *core.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
	return nil
}

type okResolver struct{}

func (okResolver) Resolve(context.Context, *core.Request) (*core.Target, error) {
	return &core.Target{Found: true, Unauthenticated: true, Serve: func(context.Context, *core.Request) (*core.Response, error) {
		return &core.Response{Data: map[string]any{"ok": true}}, nil
	}}, nil
}

type noAuthn struct{}

func (noAuthn) Authenticate(context.Context, *core.Request) (*core.Principal, error) {
	return nil, core.ErrPermissionDenied
}

type allowAll struct{}

func (allowAll) Authorize(context.Context, *core.Request) (*core.Decision, error) {
	return &core.Decision{Allowed: true}, nil
}

type open struct{}

func (open) Sealed() bool { return false }

// mustHandler is the HTTP handler over a real Dispatcher whose auditor
// records events.
func mustHandler(t *testing.T, opts httpapi.Options) (http.Handler, *recordingAuditor) {
	t.Helper()
	a := &recordingAuditor{}
	d, err := core.NewDispatcher(core.DispatcherConfig{Resolver: okResolver{}, Authenticator: noAuthn{}, Authorizer: allowAll{}, Auditor: a, Seal: open{}})
	if err != nil {
		t.Fatal(err)
	}
	return httpapi.New(d, opts), a
}

const probeToken = "hvs.probe-token-value"

// Requests Vigil cannot understand — traversal, encoded slashes, control
// characters, bad JSON, oversize bodies, unknown methods, wrapping — still
// reach the Dispatcher and are recorded as rejected requests: a request and
// a response entry with the error, the escaped raw path (cut when long), and
// never the token.
func TestMalformedRequestsAreAudited(t *testing.T) {
	long := "/v1/" + strings.Repeat("a", 400) + "/../x"
	cases := []struct {
		name, method, target, body string
		header                     map[string]string
		status                     int
		path                       string
	}{
		{"dot-dot segment", "GET", "/v1/secret/../sys/raw", "", nil, 400, "secret/../sys/raw"},
		{"encoded slash", "GET", "/v1/secret%2Fdata", "", nil, 400, "secret%2Fdata"},
		{"control character", "GET", "/v1/secret/a%0Ab", "", nil, 400, "secret/a%0Ab"},
		{"not under /v1/", "GET", "/v1", "", nil, 404, "/v1"},
		{"unparsable JSON", "POST", "/v1/secret/data/x", `{"data":`, nil, 400, "secret/data/x"},
		{"JSON array", "POST", "/v1/secret/data/x", `[1,2]`, nil, 400, "secret/data/x"},
		{"oversize body", "POST", "/v1/secret/data/x", `{"data":"` + strings.Repeat("x", 200) + `"}`, nil, 413, "secret/data/x"},
		{"unsupported method", "TRACE", "/v1/secret/data/x", "", nil, 405, "secret/data/x"},
		{"wrap TTL", "GET", "/v1/secret/data/x", "", map[string]string{"X-Vault-Wrap-TTL": "abc"}, 400, "secret/data/x"},
		{"PATCH content type", "PATCH", "/v1/secret/data/x", `{}`, map[string]string{"Content-Type": "application/json"}, 415, "secret/data/x"},
		{"long path is cut", "GET", long, "", nil, 400, strings.Repeat("a", httpapi.MaxRecordedPath) + "...(truncated)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, a := mustHandler(t, httpapi.Options{MaxRequestSize: 100})
			r := httptest.NewRequest(tc.method, "http://vigil.test/", strings.NewReader(tc.body))
			r.RequestURI = tc.target
			u, err := url.Parse(tc.target) // unresolved: ".." stays
			if err != nil {
				t.Fatal(err)
			}
			r.URL = u
			r.Header.Set("X-Vault-Token", probeToken)
			r.Header.Set("Authorization", "Bearer "+probeToken)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if len(a.events) != 2 || a.events[0].Type != "request" || a.events[1].Type != "response" {
				t.Fatalf("%d audit events, want a request and a response entry", len(a.events))
			}
			for _, ev := range a.events {
				req := ev.Request
				if req.Malformed == nil || ev.Err == nil || core.HTTPStatus(core.CodeOf(ev.Err)) != tc.status {
					t.Fatalf("%s entry: malformed %v, err %v", ev.Type, req.Malformed, ev.Err)
				}
				if req.Path != tc.path {
					t.Fatalf("recorded path %q, want %q", req.Path, tc.path)
				}
				if req.ClientToken != "" || req.Principal != nil || req.Data != nil || req.RawBody != nil {
					t.Fatalf("a malformed request kept its token or body: %+v", req)
				}
				for k, vs := range req.Headers {
					for _, v := range vs {
						if strings.Contains(v, probeToken) {
							t.Fatalf("header %s carries the token", k)
						}
					}
				}
				if req.RemoteAddr == "" {
					t.Fatal("no client address recorded")
				}
			}
		})
	}
}

// A well-formed request is not marked malformed.
func TestWellFormedRequestIsNotMalformed(t *testing.T) {
	h, a := mustHandler(t, httpapi.Options{})
	r := httptest.NewRequest("GET", "/v1/sys/health", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || len(a.events) != 2 || a.events[0].Request.Malformed != nil || a.events[0].Request.Path != "sys/health" {
		t.Fatalf("status %d, events %d", w.Code, len(a.events))
	}
}

// A request from an origin CORS does not allow is refused with 403 and, like
// a malformed one, recorded as a rejected request without its token or data;
// a preflight from an allowed origin is answered by the HTTP layer.
func TestRefusedOriginIsAudited(t *testing.T) {
	h, a := mustHandler(t, httpapi.Options{CORS: func(context.Context) httpapi.CORS {
		return httpapi.CORS{Enabled: true, AllowedOrigins: []string{"https://ok.example"}}
	}})
	r := httptest.NewRequest("POST", "/v1/secret/data/x", strings.NewReader(`{"data":{"k":"v"}}`))
	r.Header.Set("Origin", "https://evil.example")
	r.Header.Set("X-Vault-Token", probeToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || len(a.events) != 2 {
		t.Fatalf("status %d, events %d", w.Code, len(a.events))
	}
	for _, ev := range a.events {
		req := ev.Request
		if req.Malformed == nil || core.CodeOf(ev.Err) != core.CodePermissionDenied || req.ClientToken != "" || req.Data != nil || req.Path != "secret/data/x" {
			t.Fatalf("%s entry: malformed %v, err %v, token %q, data %v, path %q", ev.Type, req.Malformed, ev.Err, req.ClientToken, req.Data, req.Path)
		}
	}

	pre := httptest.NewRequest("OPTIONS", "/v1/secret/data/x", nil)
	pre.Header.Set("Origin", "https://ok.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, pre)
	if w.Code != http.StatusOK || w.Header().Get("Access-Control-Allow-Origin") != "https://ok.example" || len(a.events) != 2 {
		t.Fatalf("preflight: status %d, headers %v, events %d", w.Code, w.Header(), len(a.events))
	}
}
