package ocsf

import (
	"encoding/json"
	"strings"
	"testing"
)

// denial is a response entry denying a read of phi/data/patients/1 with a
// mandatory rule's reason.
const denial = `{"time":"2026-03-01T12:00:00Z","type":"response","auth":{"display_name":"userpass-eve","policies":["default"],"policy_results":{"allowed":false},"entity_id":"ent-eve"},` +
	`"request":{"id":"r1","operation":"read","mount_type":"kv","mount_point":"phi/","path":"phi/data/patients/1","remote_address":"10.0.0.9"},"response":{},"error":"permission denied",` +
	`"vigil":{"deny_reasons":["phi/ is closed outside business hours"],"status":403,"error_code":"permission_denied"},` +
	`"seq":9,"node_id":"n1","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"1111111111111111111111111111111111111111111111111111111111111111"}`

// TestSeverityAndDenyReasons: a denial on a regulated mount is High; on
// another mount Medium; the deny reason is a denied authorization and the
// status detail, not only in unmapped.
func TestSeverityAndDenyReasons(t *testing.T) {
	phi := func(m string) bool { return m == "phi/" }
	for _, c := range []struct {
		reg  func(string) bool
		want int
	}{{phi, 4}, {nil, 3}, {func(string) bool { return false }, 3}} {
		b, err := Format([]byte(denial), Options{Regulated: c.reg})
		if err != nil {
			t.Fatal(err)
		}
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.SeverityID != c.want {
			t.Errorf("severity %d (%s), want %d", ev.SeverityID, ev.Severity, c.want)
		}
		if ev.StatusDetail != "phi/ is closed outside business hours" {
			t.Errorf("status_detail %q", ev.StatusDetail)
		}
		found := false
		for _, a := range ev.Actor.Authorizations {
			found = found || a.Decision == "denied" && a.Policy.Desc == "phi/ is closed outside business hours" && a.Policy.Type == "rego"
		}
		if !found || ev.Actor.User == nil || ev.Actor.User.UID != "ent-eve" || ev.Actor.User.Name != "userpass-eve" {
			t.Errorf("actor %+v", ev.Actor)
		}
	}
	// Root-token use is Medium.
	root := strings.Replace(strings.Replace(denial, `"allowed":false`, `"allowed":true`, 1), `"policies":["default"]`, `"policies":["root"]`, 1)
	root = strings.Replace(root, `"error":"permission denied",`, "", 1)
	root = strings.Replace(root, `"deny_reasons":["phi/ is closed outside business hours"],"status":403,"error_code":"permission_denied"`, `"status":200`, 1)
	b, err := Format([]byte(root), Options{Regulated: phi})
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.SeverityID != 3 {
		t.Errorf("root use: severity %d", ev.SeverityID)
	}
}
