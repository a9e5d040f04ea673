package reports

import (
	"context"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
)

// TestAccessReview: who can reach phi/ now — an entity through its group's
// policy, an entity through the token policies its auth method issued (as
// the log shows), a valid root token — not a disabled entity nor one
// without a granting policy; holders who made no in-scope request are
// recertification candidates; break-glass requests form one episode per
// initiator and ticket.
func TestAccessReview(t *testing.T) {
	env := synthEnv(t)
	env.Entities = []core.EntitySummary{
		{ID: "ent-userpass-alice", Name: "alice", Policies: []string{"clinical"}, Groups: []string{"icu-clinicians"}},
		{ID: "ent-userpass-bob", Name: "bob"},                          // clinical comes from his userpass user's token_policies
		{ID: "ent-dora", Name: "dora", Policies: []string{"clinical"}}, // can, never did
		{ID: "ent-eve", Name: "eve", Policies: []string{"clinical"}, Disabled: true},
		{ID: "ent-userpass-carol", Name: "carol", Policies: []string{"app"}},
	}
	r, err := Generate(context.Background(), Source{Backend: newMemBackend(synthLog()), Env: env}, Params{Kind: KindHIPAA, From: t0, To: tEnd, GeneratedAt: tGen})
	if err != nil {
		t.Fatal(err)
	}
	var sec *Section
	for i := range r.Sections {
		if r.Sections[i].ID == "hipaa-164.308(a)(4)(ii)(C)" {
			sec = &r.Sections[i]
		}
	}
	if sec == nil {
		t.Fatal("no access review section")
	}
	tables := map[string]Table{}
	for _, tb := range sec.Tables {
		tables[tb.ID] = tb
	}
	holders := map[string]string{}
	for _, row := range tables["entitlements"].Rows {
		holders[row[2]] = row[1] + " | " + row[3]
	}
	for _, want := range []string{"entity alice", "entity bob", "entity dora"} {
		if _, ok := holders[want]; !ok {
			t.Errorf("%s is not listed as a holder: %v", want, holders)
		}
	}
	if !strings.Contains(holders["entity bob"], "token policy clinical") || !strings.Contains(holders["entity alice"], "icu-clinicians") {
		t.Errorf("holders: %v", holders)
	}
	for h := range holders {
		if strings.Contains(h, "eve") || strings.Contains(h, "carol") {
			t.Errorf("%s listed: disabled, or no granting policy", h)
		}
	}
	rootToken := false
	for h := range holders {
		rootToken = rootToken || strings.HasPrefix(h, "token root")
	}
	if !rootToken {
		t.Errorf("the valid root token is not a holder: %v", holders)
	}
	var recert []string
	for _, row := range tables["recertification-candidates"].Rows {
		recert = append(recert, row[0])
	}
	if got := strings.Join(recert, ","); !strings.Contains(got, "entity dora") || strings.Contains(got, "entity alice") || strings.Contains(got, "entity bob") {
		t.Errorf("recertification candidates: %v", recert)
	}
	ep := tables["break-glass-episodes"]
	if len(ep.Rows) != 1 || ep.Rows[0][0] != "token-oncall" || ep.Rows[0][2] != "INC-4242" || ep.Rows[0][6] != "2" {
		t.Errorf("break-glass episodes: %v", ep.Rows)
	}
}
