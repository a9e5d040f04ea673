package authz

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

func TestAuthorizeBasics(t *testing.T) {
	a := MustAuthz(t, map[string]string{
		"dev": `path "secret/*" { capabilities = ["read", "list"] }
path "secret/super-secret" { capabilities = ["deny"] }`,
	})
	cases := []struct {
		path string
		op   core.Operation
		pols []string
		want bool
	}{
		{"secret/foo", core.OpRead, []string{"default", "dev"}, true},
		{"secret/foo", core.OpUpdate, []string{"default", "dev"}, false},
		{"secret/super-secret", core.OpRead, []string{"default", "dev"}, false},
		{"auth/token/lookup-self", core.OpRead, []string{"default"}, true},
		{"auth/token/lookup-self", core.OpRead, []string{"dev"}, false},
		{"sys/anything", core.OpUpdate, []string{"root"}, true},
	}
	for _, c := range cases {
		d := mustDecide(t, a, treq(c.path, c.op, c.pols...))
		if d.Allowed != c.want {
			t.Errorf("%s %s %v: allowed=%v want %v; %v %v", c.op, c.path, c.pols, d.Allowed, c.want, d.DenyReasons, d.Explanation)
		}
		if d.Allowed && len(d.GrantingPolicies) == 0 {
			t.Errorf("%s %s: allowed without granting policies", c.op, c.path)
		}
	}
}

func TestMergeAcrossPolicies(t *testing.T) {
	// vault/acl.go NewACL: the same pattern in several policies is merged.
	a := MustAuthz(t, map[string]string{
		"r":    `path "secret/m/*" { capabilities = ["read"] }`,
		"u":    `path "secret/m/*" { capabilities = ["update", "sudo"] }`,
		"d":    `path "secret/m/*" { capabilities = ["deny"] }`,
		"pa":   "path \"secret/p\" {\n  capabilities = [\"create\"]\n  allowed_parameters = { \"x\" = [\"1\"] }\n}",
		"pb":   "path \"secret/p\" {\n  capabilities = [\"update\"]\n  allowed_parameters = { \"x\" = [\"2\"], \"y\" = [] }\n}",
		"wa":   "path \"secret/w\" {\n  capabilities = [\"create\"]\n  max_wrapping_ttl = 60\n}",
		"wb":   "path \"secret/w\" {\n  capabilities = [\"update\"]\n  max_wrapping_ttl = 30\n}",
		"star": "path \"secret/p\" {\n  capabilities = [\"create\"]\n  allowed_parameters = { \"x\" = [] }\n}",
	})
	ok := func(pols []string, op core.Operation, path string, data map[string]any) bool {
		r := treq(path, op, pols...)
		r.Data = data
		return mustDecide(t, a, r).Allowed
	}
	if !ok([]string{"r", "u"}, core.OpRead, "secret/m/a", nil) || !ok([]string{"r", "u"}, core.OpUpdate, "secret/m/a", nil) {
		t.Error("capabilities not united")
	}
	if ok([]string{"r", "u", "d"}, core.OpRead, "secret/m/a", nil) || ok([]string{"d", "r"}, core.OpRead, "secret/m/a", nil) {
		t.Error("deny in one policy did not override")
	}
	d := mustDecide(t, a, treq("secret/m/a", core.OpUpdate, "r", "u"))
	if len(d.GrantingPolicies) != 1 || d.GrantingPolicies[0] != (core.PolicyRef{Name: "u", Type: "acl"}) {
		t.Errorf("granting policies for update: %+v", d.GrantingPolicies)
	}
	// Allowed values are concatenated; an empty list (any value) wins.
	if !ok([]string{"pa", "pb"}, core.OpCreate, "secret/p", map[string]any{"x": "2"}) || ok([]string{"pa", "pb"}, core.OpCreate, "secret/p", map[string]any{"x": "3"}) {
		t.Error("allowed values not concatenated")
	}
	if !ok([]string{"pa", "star"}, core.OpCreate, "secret/p", map[string]any{"x": "3"}) {
		t.Error("empty value list did not win")
	}
	// Wrapping: the lowest max applies; the request is not wrapped, so denied.
	if ok([]string{"wa", "wb"}, core.OpCreate, "secret/w", nil) {
		t.Error("unwrapped request allowed despite max_wrapping_ttl")
	}
	r := treq("secret/w", core.OpCreate, "wa", "wb")
	r.Headers.Set("X-Vault-Wrap-TTL", "45")
	if mustDecide(t, a, r).Allowed {
		t.Error("wrap TTL 45s allowed although the merged max is 30s")
	}
	r.Headers.Set("X-Vault-Wrap-TTL", "20")
	if !mustDecide(t, a, r).Allowed {
		t.Error("wrap TTL 20s denied")
	}
}

func TestTemplatedRulesNeverMatch(t *testing.T) {
	a := MustAuthz(t, nil)
	if mustDecide(t, a, treq("identity/entity/id/{{identity.entity.id}}", core.OpRead, "default")).Allowed {
		t.Error("a templated path matched literally")
	}
}

func TestFailClosedWithoutPolicies(t *testing.T) {
	a := New(Config{Storage: storage.NewMemory()})
	d := mustDecide(t, a, treq("secret/x", core.OpRead, "root"))
	if d.Allowed || d.Error == "" {
		t.Errorf("decision before Load: %+v", d)
	}
	a = MustAuthz(t, nil)
	a.Clear()
	if d := mustDecide(t, a, treq("secret/x", core.OpRead, "root")); d.Allowed {
		t.Errorf("decision after Clear: %+v", d)
	}
	r := treq("secret/x", core.OpRead)
	r.Principal = nil
	a = MustAuthz(t, nil)
	if d := mustDecide(t, a, r); d.Allowed {
		t.Error("allowed without a principal")
	}
}

func TestEvaluationTimeoutDenies(t *testing.T) {
	a := MustAuthz(t, map[string]string{"dev": `path "secret/*" { capabilities = ["read"] }`}, func(c *Config) { c.EvalTimeout = 20 * time.Millisecond })
	slow := `package vigil.custom.slow

deny contains "never" if {
	every x in numbers.range(1, 4000) {
		every y in numbers.range(1, 4000) {
			x + y > 0
		}
	}
	false
}
`
	if err := a.PutModule(context.Background(), Module{Name: "slow", Source: slow, Level: LevelAdvisory}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d := mustDecide(t, a, treq("secret/x", core.OpRead, "dev"))
	if d.Allowed || !strings.Contains(d.Error, "timed out") {
		t.Errorf("slow module: %+v", d)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("evaluation was not stopped: took %v", el)
	}
}

func TestCrossNodeInvalidation(t *testing.T) {
	// Two authorizers over one storage stand for two cluster nodes.
	st := storage.NewMemory()
	quiet := func(c *Config) { c.Storage = st }
	a := MustAuthz(t, map[string]string{"dev": `path "secret/*" { capabilities = ["read"] }`}, quiet)
	b := MustAuthz(t, nil, quiet)
	r := treq("secret/x", core.OpRead, "dev")
	if !mustDecide(t, b, r).Allowed {
		t.Fatal("node b does not see the policy")
	}
	if err := a.PutACL(context.Background(), "dev", `path "secret/*" { capabilities = ["list"] }`); err != nil {
		t.Fatal(err)
	}
	if !mustDecide(t, b, r).Allowed {
		t.Fatal("expected node b to still serve its cached decision before it learns of the change")
	}
	// The revision poll picks the change up.
	if err := b.CheckRevision(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mustDecide(t, b, r).Allowed {
		t.Fatal("node b still allows after CheckRevision")
	}
	// The raft apply hook does too (asynchronously).
	if err := a.PutACL(context.Background(), "dev", `path "secret/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	b.Invalidate("unrelated/key")
	b.Invalidate("sys/policy/acl/dev")
	deadline := time.Now().Add(5 * time.Second)
	for !mustDecide(t, b, r).Allowed {
		if time.Now().After(deadline) {
			t.Fatal("Invalidate did not reload node b")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// And the batch form (raftstore's OnApply signature).
	if err := a.PutACL(context.Background(), "dev", `path "secret/*" { capabilities = ["list"] }`); err != nil {
		t.Fatal(err)
	}
	b.InvalidateKeys([]string{"core/mounts", "sys/policy/revision"})
	for mustDecide(t, b, r).Allowed {
		if time.Now().After(deadline) {
			t.Fatal("InvalidateKeys did not reload node b")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if a.Revision() != b.Revision() {
		t.Errorf("revisions differ: %d vs %d", a.Revision(), b.Revision())
	}
}

func TestCacheKeyFollowsModuleReads(t *testing.T) {
	a := MustAuthz(t, map[string]string{"dev": `path "secret/*" { capabilities = ["read"] }`})
	ctx := context.Background()
	cidr := "package vigil.custom.net\n\ndeny contains \"outside\" if not net.cidr_contains(\"10.0.0.0/8\", input.request.remote_addr)\n"
	if err := a.PutModule(ctx, Module{Name: "net", Source: cidr, Level: LevelMandatory}); err != nil {
		t.Fatal(err)
	}
	vol, keyed := a.ModuleCaching()
	if vol != "" || !reflect.DeepEqual(keyed, []string{"request.remote_addr"}) {
		t.Fatalf("module caching: %q %v", vol, keyed)
	}
	r := treq("secret/x", core.OpRead, "dev")
	r.RemoteAddr = "10.1.1.1"
	if !mustDecide(t, a, r).Allowed {
		t.Fatal("10.1.1.1 denied")
	}
	r2 := treq("secret/x", core.OpRead, "dev")
	r2.RemoteAddr = "192.0.2.1"
	if mustDecide(t, a, r2).Allowed {
		t.Fatal("a cached decision for another address was served")
	}
	// A module reading the request time makes decisions uncacheable.
	clockMod := "package vigil.custom.clock\n\ndeny contains \"late\" if time.clock([input.request.time_ns, \"UTC\"])[0] >= 17\n"
	if err := a.PutModule(ctx, Module{Name: "clock", Source: clockMod, Level: LevelMandatory}); err != nil {
		t.Fatal(err)
	}
	if vol, _ := a.ModuleCaching(); !strings.Contains(vol, "clock reads input.request.time_ns") {
		t.Fatalf("volatile reason: %q", vol)
	}
	h0, _ := a.Stats()
	mustDecide(t, a, r)
	mustDecide(t, a, r)
	if h1, _ := a.Stats(); h1 != h0 {
		t.Error("time-reading module's decision served from the cache")
	}
	late := treq("secret/x", core.OpRead, "dev")
	late.RemoteAddr = "10.1.1.1"
	late.Time = testNow.Add(8 * time.Hour)
	if mustDecide(t, a, late).Allowed {
		t.Error("18:00 request allowed")
	}
	// Non-deterministic builtins too.
	rnd := "package vigil.custom.rnd\n\ndeny contains \"coin\" if rand.intn(\"x\", 2) == 3\n"
	if err := a.PutModule(ctx, Module{Name: "rnd", Source: rnd, Level: LevelAdvisory}); err != nil {
		t.Fatal(err)
	}
	if vol, _ := a.ModuleCaching(); !strings.Contains(vol, "rnd calls rand.intn") {
		t.Errorf("volatile reason: %q", vol)
	}
}

func TestParameterNamesOnlyKeyWhenConstrained(t *testing.T) {
	a := MustAuthz(t, map[string]string{
		"dev": `path "secret/*" { capabilities = ["create", "update"] }`,
		"p":   "path \"secret/p\" {\n  capabilities = [\"create\"]\n  allowed_parameters = { \"a\" = [\"1\"] }\n}",
	})
	st := a.cur.Load()
	v, _ := st.view([]string{"dev"})
	r1, r2 := treq("secret/x", core.OpCreate, "dev"), treq("secret/x", core.OpCreate, "dev")
	r1.Data, r2.Data = map[string]any{"a": "1"}, map[string]any{"b": "2"}
	k1, _ := a.cacheKey(st, v, r1, testNow)
	k2, _ := a.cacheKey(st, v, r2, testNow)
	if k1 != k2 {
		t.Error("parameters joined the key of a policy set without parameter constraints")
	}
	vp, _ := st.view([]string{"p"})
	r1.Data, r2.Data = map[string]any{"a": "1"}, map[string]any{"a": "2"}
	k1, _ = a.cacheKey(st, vp, r1, testNow)
	k2, _ = a.cacheKey(st, vp, r2, testNow)
	if k1 == k2 {
		t.Error("constrained parameter values not in the key")
	}
	r1.Principal.Policies, r2.Principal.Policies = []string{"p"}, []string{"p"}
	r1.Path, r2.Path = "secret/p", "secret/p"
	if !mustDecide(t, a, r1).Allowed || mustDecide(t, a, r2).Allowed {
		t.Error("constrained values decided wrongly")
	}
}
