package authz

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// testNow is the fixed clock of unit tests: Wednesday 2024-06-05 10:00 UTC.
var testNow = time.Date(2024, 6, 5, 10, 0, 0, 0, time.UTC)

// MustAuthz returns a loaded Authz over fresh memory storage with the given
// ACL policies (name → HCL) stored.
func MustAuthz(tb testing.TB, policies map[string]string, opts ...func(*Config)) *Authz {
	tb.Helper()
	// A generous deadline: tests run under -race on loaded machines, and
	// only TestEvaluationTimeoutDenies is about the deadline.
	cfg := Config{Storage: storage.NewMemory(), Now: func() time.Time { return testNow },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), EvalTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()
	for n, src := range policies {
		if _, err := ParseACL(n, src); err != nil {
			tb.Fatalf("policy %s: %v", n, err)
		}
		if err := storage.PutJSON(ctx, cfg.Storage, aclPrefix+n, storedACL{Name: n, Policy: src}); err != nil {
			tb.Fatal(err)
		}
	}
	a := New(cfg)
	if err := a.Load(ctx); err != nil {
		tb.Fatalf("load: %v", err)
	}
	if a.cur.Load().broken != "" {
		tb.Fatalf("load: %s", a.cur.Load().broken)
	}
	return a
}

// treq builds a request for a token holding policies.
func treq(path string, op core.Operation, policies ...string) *core.Request {
	root := false
	for _, p := range policies {
		root = root || p == RootPolicy
	}
	return &core.Request{
		ID: "req-1", Path: path, Operation: op, Time: testNow, RemoteAddr: "127.0.0.1", Headers: http.Header{},
		Principal: &core.Principal{Accessor: "acc1", Policies: policies, TokenPolicies: policies, Root: root,
			IssueTime: testNow.Add(-10 * time.Minute), TTL: time.Hour, TokenType: "service"},
		Mount: &core.MountInfo{Path: "secret/", Type: "kv", Tags: map[string]string{}},
	}
}

// mustDecide authorizes req and fails tb on a malformed answer.
func mustDecide(tb testing.TB, a *Authz, req *core.Request) *core.Decision {
	tb.Helper()
	d, err := a.Authorize(context.Background(), req)
	if err != nil || d == nil {
		tb.Fatalf("authorize %s %s: %v, %v", req.Operation, req.Path, d, err)
	}
	return d
}
