package cef

import (
	"testing"
)

const flagged = `{"time":"2026-03-01T02:00:00Z","type":"response","auth":{"display_name":"token-oncall","policies":["default"],"policy_results":{"allowed":true,"granting_policies":[{"name":"break_glass","namespace_id":"root","type":"rego"}]}},` +
	`"request":{"id":"r2","operation":"read","mount_type":"kv","mount_point":"phi/","path":"phi/data/patients/1"},"response":{},` +
	`"vigil":{"flags":{"break_glass":"true","break_glass_reason":"ER, EHR down","break_glass_ticket":"INC-1"},"status":200},` +
	`"seq":10,"node_id":"n1","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"1111111111111111111111111111111111111111111111111111111111111111"}`

// TestDecisionFields: flags, granting policies (with their type) and the
// severity rule are in their documented cs* / flexString fields, and a
// break-glass request is severity 8.
func TestDecisionFields(t *testing.T) {
	b, err := Format([]byte(flagged), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ext := Extension(string(b))
	want := map[string]string{
		"cs4Label": "grantingPolicies", "cs4": "break_glass:rego",
		"cs6Label": "flags", "cs6": "break_glass=true;break_glass_reason=ER, EHR down;break_glass_ticket=INC-1",
		"flexString2": "break_glass",
	}
	for k, v := range want {
		if ext[k] != v {
			t.Errorf("%s = %q, want %q", k, ext[k], v)
		}
	}
	if got := string(b); got[:len("CEF:0|Vigil|Vigil||response:read|kv read phi/data/patients/1|8|")] != "CEF:0|Vigil|Vigil||response:read|kv read phi/data/patients/1|8|" {
		t.Errorf("header: %s", got)
	}
}
