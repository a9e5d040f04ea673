package identity

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// mounts is a fixed accessor → mount table.
type mounts map[string][2]string

func (m mounts) MountByAccessor(acc string) (string, string, bool) {
	v, ok := m[acc]
	return v[0], v[1], ok
}

var testMounts = mounts{
	"auth_userpass_1": {"auth/userpass/", "userpass"},
	"auth_approle_2":  {"auth/approle/", "approle"},
	"auth_oidc_3":     {"auth/oidc/", "oidc"},
}

// countingStorage counts writes (transactions count once).
type countingStorage struct {
	*storage.Memory
	writes atomic.Int64
}

func (c *countingStorage) Put(ctx context.Context, k string, v []byte) error {
	c.writes.Add(1)
	return c.Memory.Put(ctx, k, v)
}

func (c *countingStorage) Txn(ctx context.Context, ops []storage.TxnOp) error {
	c.writes.Add(1)
	return c.Memory.Txn(ctx, ops)
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// mustStore returns a loaded store over fresh counting storage.
func mustStore(tb testing.TB) (*Store, *countingStorage) {
	tb.Helper()
	st := &countingStorage{Memory: storage.NewMemory()}
	s := New(Config{Storage: st, Mounts: testMounts, Now: (&testClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}).Now})
	if err := s.Load(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s, st
}

// call runs one API request against the backend, as the router would.
func call(tb testing.TB, b *Backend, op core.Operation, path string, data map[string]any) (*core.Response, error) {
	tb.Helper()
	for _, r := range b.Routes() {
		caps, ok := r.Match(path)
		if !ok {
			continue
		}
		h := r.Operations[op]
		if h == nil {
			return nil, core.ErrUnsupportedOp
		}
		raw := map[string]any{}
		for k, v := range data {
			raw[k] = v
		}
		for k, v := range caps {
			raw[k] = v
		}
		d := framework.NewFieldData(raw, r.Fields)
		if err := d.Validate(); err != nil {
			return nil, err
		}
		return h(context.Background(), &core.Request{Operation: op, Path: path, Data: data}, d)
	}
	tb.Fatalf("no route for %s", path)
	return nil, nil
}

// mustCall is call that fails the test on error and returns the data.
func mustCall(tb testing.TB, b *Backend, op core.Operation, path string, data map[string]any) map[string]any {
	tb.Helper()
	resp, err := call(tb, b, op, path, data)
	if err != nil {
		tb.Fatalf("%s %s: %v", op, path, err)
	}
	if resp == nil {
		return nil
	}
	return resp.Data
}

func mustLogin(tb testing.TB, s *Store, acc, name string, groups ...string) *LoginResult {
	tb.Helper()
	var ga []*core.Alias
	for _, g := range groups {
		ga = append(ga, &core.Alias{Name: g})
	}
	r, err := s.Login(context.Background(), acc, &core.Alias{Name: name}, ga)
	if err != nil {
		tb.Fatalf("login %s on %s: %v", name, acc, err)
	}
	return r
}

// resolve resolves a principal with token policies tok for entity/alias.
func resolve(tb testing.TB, s *Store, entityID, aliasID string, tok ...string) (*core.Principal, error) {
	tb.Helper()
	p := &core.Principal{EntityID: entityID, AliasID: aliasID, Policies: tok, TokenPolicies: tok, DisplayName: "userpass-x"}
	err := s.Resolve(p)
	return p, err
}
