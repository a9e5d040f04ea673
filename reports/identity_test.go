package reports

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/reports/query"
)

// TestActorsGroupedByEntity: one person is one row of the identity table,
// whichever auth method and name their records carry; the row is shown
// under the latest name and its check selects the entity's records.
func TestActorsGroupedByEntity(t *testing.T) {
	at := func(h int) time.Time { return t0.Add(24*time.Hour + time.Duration(h)*time.Hour) }
	rec := func(h int, actor, entity string) query.Record {
		return query.Record{Time: at(h), Actor: actor, DisplayName: "d-" + actor, EntityID: entity, Operation: "read",
			Path: "phi/data/patients/1", MountPoint: "phi/", MountType: "kv", Allowed: true, Policies: []string{"clinical"}}
	}
	recs := []query.Record{
		rec(1, "userpass/carol", "ent-carol"), // before her entity was named
		rec(2, "carol", "ent-carol"),          // through AppRole, after the merge and naming
		rec(3, "carol", "ent-carol"),
		rec(4, "root", ""),
	}
	r, err := Generate(context.Background(), Source{Backend: newMemBackend(recs), Env: synthEnv(t)},
		Params{Kind: KindHIPAA, From: t0, To: tEnd, GeneratedAt: tGen})
	if err != nil {
		t.Fatal(err)
	}
	var tab *Table
	for _, s := range r.Sections {
		for i := range s.Tables {
			if s.Tables[i].ID == "accesses-by-identity" {
				tab = &s.Tables[i]
			}
		}
	}
	if tab == nil {
		t.Fatal("no accesses-by-identity table")
	}
	if len(tab.Rows) != 2 || tab.Rows[0][0] != "carol" || tab.Rows[0][1] != "3" || tab.Rows[1][0] != "root" {
		t.Fatalf("rows %v", tab.Rows)
	}
	if len(tab.RowChecks[0].Queries) != 1 || !strings.Contains(tab.RowChecks[0].Queries[0], "entity=ent-carol") || tab.RowChecks[1].Match != "actor_is:root" {
		t.Fatalf("checks %+v %+v", tab.RowChecks[0], tab.RowChecks[1])
	}
	f, err := FilterFromQuery(tab.RowChecks[0].Queries[0])
	if err != nil {
		t.Fatal(err)
	}
	res, err := newMemBackend(recs).Query(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Records); n != 3 {
		t.Fatalf("the row's check selects %d records", n)
	}
}
