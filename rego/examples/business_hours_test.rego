package vigil.custom.business_hours_test

import data.vigil.custom.business_hours

# 2024-06-05 is a Wednesday; 2024-06-08 a Saturday.
wednesday_10h := time.parse_rfc3339_ns("2024-06-05T10:00:00Z")

wednesday_20h := time.parse_rfc3339_ns("2024-06-05T20:00:00Z")

saturday_10h := time.parse_rfc3339_ns("2024-06-08T10:00:00Z")

req(path, ns) := {"request": {"path": path, "operation": "read", "time_ns": ns}, "token": {"policies": ["dev"]}}

test_allow_prod_during_business_hours if {
	count(business_hours.deny) == 0 with input as req("secret/data/prod/db", wednesday_10h)
}

test_allow_non_prod_at_night if {
	count(business_hours.deny) == 0 with input as req("secret/data/dev/db", wednesday_20h)
}

test_deny_prod_at_night if {
	count(business_hours.deny) == 1 with input as req("secret/data/prod/db", wednesday_20h)
}

test_deny_prod_on_saturday if {
	some msg in business_hours.deny with input as req("secret/data/prod/db", saturday_10h)
	contains(msg, "Monday-Friday")
}

# Through the decision: a mandatory module denies even though the ACL allows.
test_deny_through_decision if {
	e := {
		"pattern": "secret/*", "kind": "prefix", "prefix": "secret/", "segments": [], "is_prefix": true,
		"priority": [7, 0, 0, 7, "secret/"], "caps": {"read": true}, "capabilities": ["read"],
		"granting": {"read": ["dev"]}, "policies": ["dev"], "constrained": false, "required_parameters": [],
		"allowed_parameters": {}, "denied_parameters": {}, "wrapping": false, "min_wrapping_ttl": 0, "max_wrapping_ttl": 0,
	}
	i := object.union(req("secret/data/prod/db", saturday_10h), {"acl": {"entries": [e], "values": {}}})
	d := data.vigil.authz.decision with input as i
		with data.vigil_policies as {"acl": {}, "rego": {"business_hours": {"level": "mandatory"}}}
	not d.allowed
	startswith(d.deny_reasons[0], "rego business_hours: ")
	d.acl.allowed
	d2 := data.vigil.authz.decision with input as object.union(req("secret/data/prod/db", wednesday_10h), {"acl": {"entries": [e], "values": {}}})
		with data.vigil_policies as {"acl": {}, "rego": {"business_hours": {"level": "mandatory"}}}
	d2.allowed
}
