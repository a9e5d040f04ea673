package authz

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	vrego "github.com/vigilsec/vigil/rego"
)

// benchPolicies returns n policies of 10 rules each, mixing exact, glob,
// segment-wildcard, parameter-constrained and deny rules, with one pattern
// shared by every policy (so merging happens).
func benchPolicies(n int) map[string]string {
	out := map[string]string{}
	for i := 0; i < n; i++ {
		out[fmt.Sprintf("team%d", i)] = fmt.Sprintf(`
path "secret/data/team%[1]d/*" { capabilities = ["create", "read", "update", "delete"] }
path "secret/metadata/team%[1]d/*" { capabilities = ["list", "read"] }
path "secret/data/team%[1]d/prod/*" { capabilities = ["read"] }
path "secret/data/team%[1]d/prod/root" { capabilities = ["deny"] }
path "kv/+/team%[1]d/config" { capabilities = ["read"] }
path "transit/encrypt/key%[1]d" { capabilities = ["update"] }
path "database/creds/role%[1]d" { capabilities = ["read"] }
path "pki/issue/role%[1]d" {
  capabilities = ["update"]
  allowed_parameters = { "common_name" = ["*.team%[1]d.example.com"], "ttl" = [] }
}
path "sys/leases/lookup/team%[1]d/*" { capabilities = ["list", "sudo"] }
path "secret/data/shared/*" { capabilities = ["read"] }
`, i)
	}
	return out
}

var benchTokenPolicies = []string{"default", "team3", "team17", "team29", "team41"}

func benchRequests() []*core.Request {
	var reqs []*core.Request
	for i, p := range []string{"secret/data/team17/app/config", "secret/data/shared/x", "kv/v1/team29/config", "secret/data/team41/prod/db", "transit/encrypt/key3", "secret/data/other/x"} {
		r := treq(p, core.OpRead, benchTokenPolicies...)
		if i == 4 {
			r.Operation = core.OpUpdate
		}
		reqs = append(reqs, r)
	}
	return reqs
}

func reportPercentiles(b *testing.B, durs []time.Duration) {
	if len(durs) == 0 {
		return
	}
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkAuthorizeCacheHit: 50 policies x 10 rules, token with 5 policies,
// decisions already cached. Goal: p50 <= 5 µs.
func BenchmarkAuthorizeCacheHit(b *testing.B) {
	a := MustAuthz(b, benchPolicies(50), func(c *Config) { c.EvalTimeout = time.Second })
	reqs := benchRequests()
	for _, r := range reqs {
		mustDecide(b, a, r)
	}
	durs := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := reqs[i%len(reqs)]
		t0 := time.Now()
		d, _ := a.Authorize(b.Context(), r)
		durs = append(durs, time.Since(t0))
		if d == nil || d.Error != "" {
			b.Fatal("bad decision")
		}
	}
	b.StopTimer()
	reportPercentiles(b, durs)
}

// BenchmarkAuthorizeCacheMiss: same policies with the cache disabled, so
// every request is indexed and evaluated by Rego. Goal: p50 <= 50 µs.
func BenchmarkAuthorizeCacheMiss(b *testing.B) {
	// The deadline is raised: a benchmark measures speed, and a loaded
	// machine must not turn a slow evaluation into a failed run.
	a := MustAuthz(b, benchPolicies(50), func(c *Config) { c.CacheSize = -1; c.EvalTimeout = time.Second })
	reqs := benchRequests()
	durs := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := reqs[i%len(reqs)]
		t0 := time.Now()
		d, _ := a.Authorize(b.Context(), r)
		durs = append(durs, time.Since(t0))
		if d == nil || d.Error != "" {
			b.Fatalf("bad decision: %+v", d)
		}
	}
	b.StopTimer()
	reportPercentiles(b, durs)
}

// BenchmarkAuthorizeCacheMissWithModule: the miss path with the
// cidr_allowlist example loaded as a mandatory module (full input document,
// one custom module evaluated).
func BenchmarkAuthorizeCacheMissWithModule(b *testing.B) {
	a := MustAuthz(b, benchPolicies(50), func(c *Config) { c.CacheSize = -1; c.EvalTimeout = time.Second })
	if err := a.PutModule(b.Context(), Module{Name: "cidr_allowlist", Source: vrego.Examples()["cidr_allowlist"], Level: LevelMandatory}); err != nil {
		b.Fatal(err)
	}
	reqs := benchRequests()
	durs := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := reqs[i%len(reqs)]
		t0 := time.Now()
		d, _ := a.Authorize(b.Context(), r)
		durs = append(durs, time.Since(t0))
		if d == nil || d.Error != "" {
			b.Fatalf("bad decision: %+v", d)
		}
	}
	b.StopTimer()
	reportPercentiles(b, durs)
}
