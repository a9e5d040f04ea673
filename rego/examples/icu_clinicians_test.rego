package vigil.custom.icu_clinicians_test

import data.vigil.custom.icu_clinicians

req(path, groups, actor) := {
	"request": {"path": path, "operation": "read"},
	"identity": {"actor": actor, "groups": groups},
	"token": {"display_name": "token"},
}

test_allow_member if {
	count(icu_clinicians.deny) == 0 with input as req("secret/data/icu/ventilators", ["clinicians", "icu-clinicians"], "carol")
}

test_allow_other_paths_for_anyone if {
	count(icu_clinicians.deny) == 0 with input as req("secret/data/billing/db", [], "")
}

test_deny_non_member if {
	some msg in icu_clinicians.deny with input as req("secret/data/icu/ventilators", ["clinicians"], "dave")
	contains(msg, "icu-clinicians")
	contains(msg, "\"dave\"")
}

test_deny_token_without_entity if {
	some msg in icu_clinicians.deny with input as req("secret/data/icu/x", [], "")
	contains(msg, "\"token\"")
}
