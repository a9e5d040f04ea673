package main

import (
	"encoding/json"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/reports/query"
)

// TestAuditQueryActorAcrossAuthMethods: Carol logs in with userpass and,
// as a batch job, with AppRole — two entities until an operator merges
// them and names the result "carol". `vigil audit query --actor carol`
// then lists her requests through both methods, those made before the
// merge included.
func TestAuditQueryActorAcrossAuthMethods(t *testing.T) {
	s, _ := mustQueryCLIServer(t)
	c := s.Client
	if err := c.Sys().PutPolicy("app", `path "secret/data/app/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"userpass", "approle"} {
		if err := c.Sys().EnableAuthWithOptions(m, &vaultapi.EnableAuthOptions{Type: m}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Logical().Write("secret/data/app/db", map[string]any{"data": map[string]any{"password": "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/userpass/users/carol", map[string]any{"password": "pw", "token_policies": "app"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/approle/role/carol-batch", map[string]any{"token_policies": "app"}); err != nil {
		t.Fatal(err)
	}
	rid, err := c.Logical().Read("auth/approle/role/carol-batch/role-id")
	if err != nil {
		t.Fatal(err)
	}
	approleLogin := func() *vaultapi.SecretAuth {
		sid, err := c.Logical().Write("auth/approle/role/carol-batch/secret-id", nil)
		if err != nil {
			t.Fatal(err)
		}
		sec, err := s.NewClient("").Logical().Write("auth/approle/login", map[string]any{"role_id": rid.Data["role_id"], "secret_id": sid.Data["secret_id"]})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.NewClient(sec.Auth.ClientToken).Logical().Read("secret/data/app/db"); err != nil {
			t.Fatal(err)
		}
		return sec.Auth
	}
	up, err := s.NewClient("").Logical().Write("auth/userpass/login/carol", map[string]any{"password": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewClient(up.Auth.ClientToken).Logical().Read("secret/data/app/db"); err != nil {
		t.Fatal(err)
	}
	batch := approleLogin()
	if batch.EntityID == "" || batch.EntityID == up.Auth.EntityID {
		t.Fatalf("entities before the merge: userpass %q approle %q", up.Auth.EntityID, batch.EntityID)
	}
	// Someone else, to be left out.
	if _, err := c.Logical().Write("auth/userpass/users/dave", map[string]any{"password": "pw", "token_policies": "app"}); err != nil {
		t.Fatal(err)
	}
	dave, err := s.NewClient("").Logical().Write("auth/userpass/login/dave", map[string]any{"password": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewClient(dave.Auth.ClientToken).Logical().Read("secret/data/app/db"); err != nil {
		t.Fatal(err)
	}

	// One person: merge the AppRole entity into the userpass one and name it.
	mustOK(t, "write", "identity/entity/merge", "from_entity_ids="+batch.EntityID, "to_entity_id="+up.Auth.EntityID)
	mustOK(t, "write", "identity/entity/id/"+up.Auth.EntityID, "name=carol")
	after := approleLogin()
	if after.EntityID != up.Auth.EntityID {
		t.Fatalf("approle login after the merge: entity %q, want %q", after.EntityID, up.Auth.EntityID)
	}

	out := mustOK(t, "audit", "query", "--actor", "carol", "--since", "1h", "--format", "json")
	var res query.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	logins := map[string]int{}
	reads := map[string]int{} // by entity id recorded
	for _, r := range res.Records {
		switch {
		case r.EntityID == dave.Auth.EntityID:
			t.Fatalf("dave's record in carol's: %+v", r)
		case r.Path == "auth/userpass/login/carol" || r.Path == "auth/approle/login":
			logins[r.MountType]++
		case r.Path == "secret/data/app/db" && r.Operation == "read":
			reads[r.EntityID]++
		}
	}
	if logins["userpass"] != 1 || logins["approle"] != 2 {
		t.Fatalf("logins found by --actor carol: %v\n%s", logins, out)
	}
	if reads[up.Auth.EntityID] != 2 || reads[batch.EntityID] != 1 {
		t.Fatalf("reads found by --actor carol: %v (userpass entity %s, merged approle entity %s)\n%s", reads, up.Auth.EntityID, batch.EntityID, out)
	}
	// Requests made after the naming carry the name; earlier ones the
	// alias they came through.
	names := map[string]bool{}
	for _, r := range res.Records {
		names[r.Actor] = true
	}
	if !names["carol"] || !names["userpass/carol"] {
		t.Fatalf("actor names %v", names)
	}
	// The table shows the person.
	if tab := mustOK(t, "audit", "query", "--actor", "carol", "--since", "1h", "--path", "secret/"); !strings.Contains(tab, " carol ") {
		t.Fatalf("table:\n%s", tab)
	}
}
