# Unit tests of package vigil.authz: root, composition of the ACL result with
# custom modules (mandatory/advisory), flags and granting policies.
package vigil.authz_test

import data.vigil.authz

entry(pattern, prefix, caps) := {
	"pattern": pattern, "kind": "prefix", "prefix": prefix, "segments": [], "is_prefix": true,
	"priority": [count(prefix), 0, 0, count(prefix), prefix],
	"caps": {c: true | some c in caps}, "capabilities": caps, "granting": {c: ["dev"] | some c in caps},
	"policies": ["dev"], "constrained": false, "required_parameters": [], "allowed_parameters": {},
	"denied_parameters": {}, "wrapping": false, "min_wrapping_ttl": 0, "max_wrapping_ttl": 0,
}

entries := [entry("secret/*", "secret/", ["read"]), object.union(entry("secret/locked/*", "secret/locked/", ["deny"]), {"granting": {}})]

inp(path, op, headers) := {
	"token": {"policies": ["default", "dev"], "metadata": {}},
	"request": {"path": path, "operation": op, "parameters": [], "headers": headers, "sudo_required": false},
	"mount": {"path": "secret/", "type": "kv", "tags": {}},
	"acl": {"entries": entries, "values": {}},
}

decide(path, op, headers, level) := d if {
	d := authz.decision with input as inp(path, op, headers)
		with data.vigil_policies as {"acl": {}, "rego": {"fixture": {"level": level}}}
}

test_root_allowed_everything if {
	d := authz.decision with input as {"token": {"policies": ["root"]}, "request": {"path": "sys/audit/x", "operation": "update", "sudo_required": true}}
		with data.vigil_policies as {"acl": {}, "rego": {"fixture": {"level": "mandatory"}}}
	d == {"allowed": true, "root": true}
	c := authz.capabilities with input as {"token": {"policies": ["root"]}, "request": {"path": "x", "operation": "list"}}
	c == ["root"]
}

test_acl_allows if {
	d := decide("secret/a", "read", {}, "mandatory")
	d.allowed
	d.acl.granting == ["dev"]
	d.deny_reasons == []
}

test_acl_denies_with_reason if {
	d := decide("secret/a", "update", {}, "mandatory")
	not d.allowed
	d.deny_reasons == []
	d.acl.denial == "capability"
	d.acl.needed == "update"
}

test_mandatory_deny_overrides_acl if {
	d := decide("secret/a", "read", {"X-Test-Deny": "nope"}, "mandatory")
	not d.allowed
	d.deny_reasons == ["rego fixture: test deny: nope"]
}

test_advisory_deny_is_recorded_only if {
	d := decide("secret/a", "read", {"X-Test-Deny": "nope"}, "advisory")
	d.allowed
	d.advisories == ["rego fixture (advisory): test deny: nope"]
	d.deny_reasons == []
}

test_custom_allow_grants if {
	d := decide("other/path", "read", {"X-Test-Allow": "yes"}, "mandatory")
	d.allowed
	d.custom_allowers == ["fixture"]
	not d.acl.allowed
}

test_advisory_allow_does_not_grant if {
	d := decide("other/path", "read", {"X-Test-Allow": "yes"}, "advisory")
	not d.allowed
}

test_custom_allow_cannot_override_explicit_deny if {
	d := decide("secret/locked/x", "read", {"X-Test-Allow": "yes"}, "mandatory")
	not d.allowed
}

test_custom_allow_cannot_grant_sudo if {
	i := json.patch(inp("other/path", "read", {"X-Test-Allow": "yes"}), [{"op": "replace", "path": "/request/sudo_required", "value": true}])
	d := authz.decision with input as i with data.vigil_policies as {"acl": {}, "rego": {"fixture": {"level": "mandatory"}}}
	not d.allowed
}

test_flags_are_collected if {
	d := decide("secret/a", "read", {"X-Test-Flag": "on"}, "advisory")
	d.flags == {"fixture": "on"}
}

test_decision_names_rule if {
	d := decide("secret/a", "read", {}, "mandatory")
	d.acl.winner == 0
	d.modules.fixture == {"level": "mandatory", "deny": [], "allow": false, "flags": {}, "require_approval": null}
}

test_decision_without_modules if {
	d := authz.decision with input as inp("secret/a", "read", {}) with data.vigil_policies as {"acl": {}, "rego": {}}
	d.allowed
	d.root == false
	d.acl.granting == ["dev"]
	not d.modules
}
