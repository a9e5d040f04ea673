package identity

import (
	"fmt"
	"testing"

	"github.com/vigilsec/vigil/core"
)

// BenchmarkResolve is the per-request cost identity adds: resolving a
// token's entity among 10,000, in two groups of 50 with a parent group.
func BenchmarkResolve(b *testing.B) {
	s, _ := mustStore(b)
	bk := NewBackend(s)
	var last *LoginResult
	var ids []any
	for i := 0; i < 10000; i++ {
		last = mustLogin(b, s, "auth_userpass_1", fmt.Sprintf("user%d", i))
		if i%200 == 0 {
			ids = append(ids, last.EntityID)
		}
	}
	child := mustCall(b, bk, core.OpUpdate, "group", map[string]any{"name": "child", "policies": "a", "member_entity_ids": append(ids, last.EntityID)})
	mustCall(b, bk, core.OpUpdate, "group", map[string]any{"name": "parent", "policies": "b", "member_group_ids": child["id"]})
	b.ReportAllocs()
	for b.Loop() {
		p := &core.Principal{EntityID: last.EntityID, AliasID: last.AliasID, Policies: []string{"default"}}
		if err := s.Resolve(p); err != nil || len(p.Policies) != 3 {
			b.Fatal(err, p.Policies)
		}
	}
}
