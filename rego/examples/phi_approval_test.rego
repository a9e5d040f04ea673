package vigil.custom.phi_approval_test

import data.vigil.custom.phi_approval

# 2024-06-05 is a Wednesday.
wed_10 := time.parse_rfc3339_ns("2024-06-05T10:00:00Z")

wed_22 := time.parse_rfc3339_ns("2024-06-05T22:00:00Z")

sat_10 := time.parse_rfc3339_ns("2024-06-08T10:00:00Z")

req(op, ns, tags) := {
	"request": {"path": "phi/data/patients/1", "operation": op, "time_ns": ns},
	"mount": {"tags": tags},
}

test_allow_in_business_hours_without_approval if {
	not phi_approval.require_approval with input as req("read", wed_10, {"phi": "true"})
}

test_hold_for_approval_at_night if {
	a := phi_approval.require_approval with input as req("read", wed_22, {"phi": "true"})
	a.factors[0].group_names == ["clinical-leads"]
	a.max_ttl == "2h"
}

test_hold_for_approval_on_weekends if {
	phi_approval.require_approval with input as req("update", sat_10, {"phi": "true"})
}

test_allow_outside_phi_without_approval if {
	not phi_approval.require_approval with input as req("read", wed_22, {})
}

test_allow_lists_without_approval if {
	not phi_approval.require_approval with input as req("list", wed_22, {"phi": "true"})
}
