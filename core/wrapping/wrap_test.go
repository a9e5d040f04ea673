package wrapping

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/cubbyhole"
	"github.com/vigilsec/vigil/core/token"
)

// wrap wraps resp for a request by p on path with ttl.
func (e *env) wrap(p *holder, path string, ttl time.Duration, resp *core.Response) *core.Response {
	e.t.Helper()
	req := e.req(p, core.OpRead, path, nil)
	if p != nil {
		if _, err := e.authenticate(req); err != nil {
			e.t.Fatal(err)
		}
	}
	req.WrapTTL = ttl
	out, err := e.svc.Wrap(context.Background(), req, resp)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestWrapUnwrapOnce(t *testing.T) {
	e := mustEnv(t)
	alice, bob := e.newPerson("alice"), e.newPerson("bob")
	inner := &core.Response{Data: map[string]any{"password": "s3cr3t", "n": json.Number("7")}, Warnings: []string{"w"},
		Secret: &core.Secret{LeaseID: "database/creds/app/1", TTL: time.Hour, Renewable: true}}
	out := e.wrap(&alice, "database/creds/app", 5*time.Minute, inner)
	w := out.WrapInfo
	if w == nil || !strings.HasPrefix(w.Token, "hvs.") || w.Accessor == "" || w.TTL != 300 || w.CreationPath != "database/creds/app" || !w.CreationTime.Equal(e.clk.Now()) {
		t.Fatalf("wrap info %+v", w)
	}
	// The audit still sees the data (it HMACs it); the HTTP layer writes wrap_info only.
	if out.Data["password"] != "s3cr3t" || out.Secret.LeaseID != "database/creds/app/1" || !reflect.DeepEqual(out.Warnings, []string{"w"}) {
		t.Fatalf("wrapped response for the audit: %+v", out)
	}
	// The wrapping token: Vault's shape.
	ent, err := e.tokens.Lookup(context.Background(), w.Token)
	if err != nil || ent == nil || !ent.IsWrapping() || ent.NumUses != 1 || ent.Renewable || !ent.Orphan || ent.Path != "database/creds/app" ||
		ent.CreatorAccessor == "" || ent.TTL != 5*time.Minute {
		t.Fatalf("wrapping token entry %+v", ent)
	}

	// lookup: unauthenticated, by body or client token, does not spend it.
	for _, r := range []*core.Request{e.req(nil, core.OpUpdate, "sys/wrapping/lookup", map[string]any{"token": w.Token}),
		e.req(&holder{token: w.Token}, core.OpRead, "sys/wrapping/lookup", nil)} {
		resp, err := e.serve(r)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Data["creation_path"] != "database/creds/app" || resp.Data["creation_ttl"] != int64(300) ||
			resp.Data["creation_time"] != e.clk.Now().Format(time.RFC3339Nano) {
			t.Fatalf("lookup %+v", resp.Data)
		}
	}

	// Bob unwraps it (third party): the response, and who wrapped what.
	r := e.req(&bob, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": w.Token})
	resp, err := e.serve(r)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Restored || resp.Data["password"] != "s3cr3t" || resp.Data["n"] != json.Number("7") || resp.Secret.LeaseID != "database/creds/app/1" ||
		resp.Secret.TTL != time.Hour || !resp.Secret.Renewable || !reflect.DeepEqual(resp.Warnings, []string{"w"}) {
		t.Fatalf("unwrapped %+v %+v", resp, resp.Secret)
	}
	want := map[string]string{core.LabelWrapCreationPath: "database/creds/app", core.LabelWrappedBy: "alice", core.LabelWrappedByEntityID: "entity-alice"}
	for k, v := range want {
		if r.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, r.Labels[k], v)
		}
	}
	if r.Labels[core.LabelWrapRequestID] == "" {
		t.Error("no wrap_request_id label")
	}

	// Single use: the token and its cubbyhole are gone.
	_, err = e.serve(e.req(&bob, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": w.Token}))
	wantCode(t, err, core.CodeInvalid, "wrapping token is not valid or does not exist")
	_, err = e.serve(e.req(nil, core.OpUpdate, "sys/wrapping/lookup", map[string]any{"token": w.Token}))
	wantCode(t, err, core.CodeInvalid, "not valid")
	if b, _ := e.cubby.Get(context.Background(), token.Hash(w.Token), cubbyhole.ResponseKey); b != nil {
		t.Fatal("the wrapped response outlived its token")
	}
}

func TestUnwrapSelfAndAuth(t *testing.T) {
	e := mustEnv(t)
	alice := e.newPerson("alice")
	inner := &core.Response{Auth: &core.Auth{ClientToken: "hvs.child", Accessor: "acc-child", Policies: []string{"default"}, TTL: time.Hour, TokenType: "service", Renewable: true}}
	out := e.wrap(&alice, "auth/token/create", time.Minute, inner)
	if out.WrapInfo.WrappedAccessor != "acc-child" {
		t.Fatalf("wrapped_accessor %q", out.WrapInfo.WrappedAccessor)
	}
	// The wrapping token as the client token (vault unwrap without an
	// argument, vault-agent): its use is deferred to the handler.
	wrapper := holder{token: out.WrapInfo.Token}
	resp, err := e.serve(e.req(&wrapper, core.OpUpdate, "sys/wrapping/unwrap", nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Auth == nil || resp.Auth.ClientToken != "hvs.child" || resp.Auth.TTL != time.Hour || resp.Data != nil {
		t.Fatalf("unwrapped auth %+v", resp.Auth)
	}
	if _, err := e.serve(e.req(&wrapper, core.OpUpdate, "sys/wrapping/unwrap", nil)); core.CodeOf(err) != core.CodePermissionDenied {
		t.Fatalf("second self-unwrap: %v", err)
	}

	// Any other use of a wrapping token spends it (Vault: num_uses 1).
	out = e.wrap(&alice, "secret/data/x", time.Minute, &core.Response{Data: map[string]any{"a": "b"}})
	other := e.req(&holder{token: out.WrapInfo.Token}, core.OpRead, "auth/token/lookup-self", nil)
	if _, err := e.authenticate(other); err != nil {
		t.Fatal(err)
	}
	_, err = e.serve(e.req(&alice, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": out.WrapInfo.Token}))
	wantCode(t, err, core.CodeInvalid, "not valid")
}

func TestUnwrapRefusesOtherTokens(t *testing.T) {
	e := mustEnv(t)
	alice, bob := e.newPerson("alice"), e.newPerson("bob")
	// Naming an ordinary token neither unwraps nor revokes it.
	_, err := e.serve(e.req(&alice, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": bob.token}))
	wantCode(t, err, core.CodeInvalid, "not valid")
	if ent, _ := e.tokens.Lookup(context.Background(), bob.token); ent == nil {
		t.Fatal("unwrap revoked an ordinary token")
	}
	// Alice's own token as the wrapping token: refused, and used once.
	_, err = e.serve(e.req(&alice, core.OpUpdate, "sys/wrapping/unwrap", nil))
	wantCode(t, err, core.CodeInvalid, "not valid")
	_, err = e.serve(e.req(&alice, core.OpUpdate, "sys/wrapping/rewrap", map[string]any{"token": "hvs.nope"}))
	wantCode(t, err, core.CodeInvalid, "not valid")
	_, err = e.serve(e.req(nil, core.OpUpdate, "sys/wrapping/lookup", nil))
	wantCode(t, err, core.CodeInvalid, "missing")
}

func TestWrapEndpoint(t *testing.T) {
	e := mustEnv(t)
	alice := e.newPerson("alice")
	r := e.req(&alice, core.OpUpdate, "sys/wrapping/wrap", map[string]any{"a": "b"})
	_, err := e.serve(r)
	wantCode(t, err, core.CodeInvalid, "requires response wrapping")
	r = e.req(&alice, core.OpUpdate, "sys/wrapping/wrap", map[string]any{"a": "b"})
	r.WrapTTL = time.Minute
	resp, err := e.serve(r)
	if err != nil || resp.Data["a"] != "b" {
		t.Fatalf("wrap: %+v %v", resp, err)
	}
}

func TestRewrap(t *testing.T) {
	e := mustEnv(t)
	alice, bob := e.newPerson("alice"), e.newPerson("bob")
	old := e.wrap(&alice, "sys/wrapping/wrap", 90*time.Second, &core.Response{Data: map[string]any{"k": "v"}})
	e.clk.Advance(30 * time.Second)
	resp, err := e.serve(e.req(&bob, core.OpUpdate, "sys/wrapping/rewrap", map[string]any{"token": old.WrapInfo.Token}))
	if err != nil {
		t.Fatal(err)
	}
	nw := resp.WrapInfo
	if nw == nil || nw.Token == old.WrapInfo.Token || nw.TTL != 90 || nw.CreationPath != "sys/wrapping/wrap" || !nw.CreationTime.Equal(e.clk.Now()) || !resp.Restored {
		t.Fatalf("rewrapped %+v", nw)
	}
	_, err = e.serve(e.req(&bob, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": old.WrapInfo.Token}))
	wantCode(t, err, core.CodeInvalid, "not valid")
	got, err := e.serve(e.req(&bob, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": nw.Token}))
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("unwrap after rewrap: %+v %v", got, err)
	}
}

func TestWrapExpiryAndLimits(t *testing.T) {
	e := mustEnv(t)
	alice := e.newPerson("alice")
	out := e.wrap(&alice, "secret/data/x", time.Minute, &core.Response{Data: map[string]any{"a": "b"}})
	e.clk.Advance(time.Minute)
	_, err := e.serve(e.req(&alice, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": out.WrapInfo.Token}))
	wantCode(t, err, core.CodeInvalid, "not valid")
	// Tidy revokes the expired token, and its cubbyhole with it.
	if n, err := e.tokens.Tidy(context.Background()); err != nil || n != 1 {
		t.Fatalf("tidy: %d %v", n, err)
	}
	if b, _ := e.cubby.Get(context.Background(), token.Hash(out.WrapInfo.Token), cubbyhole.ResponseKey); b != nil {
		t.Fatal("an expired wrapping token's cubbyhole survived tidy")
	}

	// Above the token store's maximum, capped with a warning.
	out = e.wrap(&alice, "secret/data/x", 9999*time.Hour, &core.Response{Data: map[string]any{"a": "b"}})
	if _, max := e.tokens.Limits(); out.WrapInfo.TTL != int(max/time.Second) || len(out.Warnings) != 1 {
		t.Fatalf("capped wrap: %+v %v", out.WrapInfo, out.Warnings)
	}
	// Nothing to wrap, or something that cannot be.
	if r, _ := e.svc.Wrap(context.Background(), e.req(&alice, core.OpRead, "x", nil), nil); r != nil {
		t.Fatal("a 204 was wrapped")
	}
	req := e.req(&alice, core.OpRead, "pki/crl", nil)
	req.WrapTTL = time.Minute
	_, err = e.svc.Wrap(context.Background(), req, &core.Response{Raw: &core.RawBody{Body: []byte("x")}})
	wantCode(t, err, core.CodeInvalid, "cannot be wrapped")
	req.WrapTTL = 500 * time.Millisecond
	_, err = e.svc.Wrap(context.Background(), req, &core.Response{Data: map[string]any{"a": 1}})
	wantCode(t, err, core.CodeInvalid, "at least one second")
}

func TestWrappedSecretIDAccessor(t *testing.T) {
	e := mustEnv(t)
	alice := e.newPerson("alice")
	req := e.req(&alice, core.OpUpdate, "auth/approle/role/app/secret-id", nil)
	req.Mount = &core.MountInfo{Path: "auth/approle/", Type: "approle", Class: "auth"}
	req.WrapTTL = time.Minute
	out, err := e.svc.Wrap(context.Background(), req, &core.Response{Data: map[string]any{"secret_id": "s", "secret_id_accessor": "sa"}})
	if err != nil || out.WrapInfo.WrappedAccessor != "sa" || out.WrapInfo.CreationPath != "auth/approle/role/app/secret-id" {
		t.Fatalf("%+v %v", out, err)
	}
}

// TestSingleUseUnderConcurrency: many clients racing to unwrap, rewrap or
// use one wrapping token — exactly one of them gets the response.
func TestSingleUseUnderConcurrency(t *testing.T) {
	e := mustEnv(t)
	alice, bob := e.newPerson("alice"), e.newPerson("bob")
	for round := 0; round < 20; round++ {
		w := e.wrap(&alice, "secret/data/app", time.Minute, &core.Response{Data: map[string]any{"password": "s3cr3t"}}).WrapInfo
		reqs := []*core.Request{
			e.req(&bob, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": w.Token}),
			e.req(&bob, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": w.Token}),
			e.req(&holder{token: w.Token}, core.OpUpdate, "sys/wrapping/unwrap", nil),
			e.req(&holder{token: w.Token}, core.OpUpdate, "sys/wrapping/unwrap", nil),
			e.req(&bob, core.OpUpdate, "sys/wrapping/rewrap", map[string]any{"token": w.Token}),
		}
		type result struct {
			resp *core.Response
			err  error
		}
		results := make(chan result, len(reqs))
		var wg sync.WaitGroup
		for _, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := e.serve(r)
				results <- result{resp, err}
			}()
		}
		wg.Wait()
		close(results)
		won := 0
		for res := range results {
			if res.err == nil {
				won++
				if res.resp.WrapInfo == nil && res.resp.Data["password"] != "s3cr3t" {
					t.Fatalf("round %d: the winner got %+v", round, res.resp)
				}
				continue
			}
			if c := core.CodeOf(res.err); c != core.CodeInvalid && c != core.CodePermissionDenied {
				t.Fatalf("round %d: a loser got %v", round, res.err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of %d racing requests got the wrapped response", round, won, len(reqs))
		}
	}
}
