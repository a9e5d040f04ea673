package vigil.custom.break_glass_test

import data.vigil.custom.break_glass

req(meta, headers, path) := {
	"token": {"policies": ["default"], "metadata": meta},
	"request": {"path": path, "operation": "read", "headers": headers},
}

test_allow_with_reason_and_flags if {
	i := req({"break_glass": "true"}, {"X-Vigil-Reason": "INC-42 database down", "X-Vigil-Ticket": "INC-42"}, "secret/data/prod/db")
	break_glass.allow with input as i
	count(break_glass.deny) == 0 with input as i
	f := break_glass.flags with input as i
	f == {"break_glass": "true", "break_glass_reason": "INC-42 database down", "break_glass_ticket": "INC-42"}
}

test_deny_without_reason if {
	i := req({"break_glass": "true"}, {}, "secret/data/prod/db")
	not break_glass.allow with input as i
	count(break_glass.deny) == 1 with input as i
}

test_deny_blank_reason if {
	i := req({"break_glass": "true"}, {"X-Vigil-Reason": "   "}, "secret/data/prod/db")
	not break_glass.allow with input as i
	count(break_glass.deny) == 1 with input as i
}

test_deny_sys_paths_not_granted if {
	not break_glass.allow with input as req({"break_glass": "true"}, {"X-Vigil-Reason": "x"}, "sys/policies/acl/x")
}

test_allow_ordinary_tokens_unaffected if {
	i := req({}, {}, "secret/data/prod/db")
	count(break_glass.deny) == 0 with input as i
	not break_glass.allow with input as i
	count(break_glass.flags) == 0 with input as i
}
