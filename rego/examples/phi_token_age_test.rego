package vigil.custom.phi_token_age_test

import data.vigil.custom.phi_token_age

t0 := time.parse_rfc3339_ns("2024-06-05T10:00:00Z")

req(op, tags, age_s) := {
	"token": {"issue_time_ns": t0},
	"request": {"operation": op, "time_ns": t0 + (age_s * 1000000000), "path": "phi/data/patient"},
	"mount": {"path": "phi/", "tags": tags},
}

test_allow_write_with_young_token if {
	count(phi_token_age.deny) == 0 with input as req("update", {"phi": "true"}, 600)
}

test_allow_read_with_old_token if {
	count(phi_token_age.deny) == 0 with input as req("read", {"phi": "true"}, 7200)
}

test_allow_untagged_mount if {
	count(phi_token_age.deny) == 0 with input as req("create", {}, 7200)
}

test_deny_write_with_old_token if {
	some msg in phi_token_age.deny with input as req("create", {"phi": "true"}, 3601)
	contains(msg, "phi/")
}

test_deny_delete_with_old_token if {
	count(phi_token_age.deny) == 1 with input as req("delete", {"phi": "true"}, 86400)
}
