# METADATA
# title: Vault ACL evaluation
# description: |
#   Evaluates Vault HCL ACL policies. Go parses each policy into rule
#   documents (data.vigil_policies.acl[<policy>].rules) and, for each token
#   policy set, merges the rules of the same pattern into one entry as
#   Vault's NewACL does (capability union, deny wins, parameter maps merged,
#   the lowest wrapping TTLs, granting policies per capability). Go keeps the
#   entries indexed by their literal path prefix and passes those that may
#   match the request in input.acl.entries. This package decides: which entry
#   wins (exact match, list fallbacks, Vault's priority matching for globs and
#   "+" segments), then capabilities, sudo, wrapping TTLs and parameters,
#   exactly as Vault's ACL.AllowOperation does.
#
#   Outputs: result (the ACL part of the decision document: allowed, denial
#   code, matched pattern and kind, policies holding it, needed capability,
#   granting policies, merged capabilities, and the control group an allowed
#   request must wait for) and capabilities (Vault's
#   sys/capabilities list for the path).
package vigil.acl

# Capability needed by each operation (Vault maps revoke/renew to update).
op_capability := {
	"read": "read",
	"list": "list",
	"update": "update",
	"create": "create",
	"delete": "delete",
	"patch": "patch",
	"revoke": "update",
	"renew": "update",
}

# Operations whose parameters are checked (Vault: read, update, create, patch).
param_ops := {"read", "update", "create", "patch"}

path := input.request.path

op := input.request.operation

is_list if op == "list"

trimmed := trim_suffix(path, "/")

entries := input.acl.entries

# The winning entry, following ACL.AllowOperation: an exact match on the
# path, then (list only) an exact match without the trailing slash, then
# (list only) the best glob/segment match of the path without its trailing
# slash, then the best glob/segment match of the path. winner_index is its
# position in input.acl.entries.
winner_index := i if {
	some i, e in entries
	e.kind == "exact"
	e.prefix == path
} else := i if {
	is_list
	some i, e in entries
	e.kind == "exact"
	e.prefix == trimmed
} else := i if {
	is_list
	endswith(path, "/")
	i := best_of(trimmed)
} else := best_of(path)

winner := entries[winner_index]

# best_of returns the position of the glob/segment entry matching p with the
# highest priority. Each entry's priority is
# [first_wc, not_prefix, -wildcards, wc_len, prefix], which orders entries
# exactly as Vault documents ("Priority matching", docs/concepts/policies): a
# later first wildcard wins, a non-glob beats a glob, fewer "+" segments win,
# longer wins, then the lexicographically larger wins.
best_of(p) := m[1] if {
	scored := array.concat(
		[[e.priority, i] | some i, e in entries; e.kind == "prefix"; startswith(p, e.prefix)],
		[[e.priority, i] | some i, e in entries; e.kind == "segment"; segment_match(e, p)],
	)
	count(scored) > 0
	m := max(scored)
}

# A segment-wildcard entry ("secret/+/foo", "secret/+/foo*") matches segment
# by segment; "+" matches one whole segment and a trailing "*" makes the last
# segment a prefix and allows more segments after it.
segment_match(e, p) if {
	parts := split(p, "/")
	segment_count_ok(e, count(parts))
	n := count(e.segments)
	every i, s in e.segments {
		segment_ok(s, parts[i], e.is_prefix, i == n - 1)
	}
}

segment_count_ok(e, n) if {
	e.is_prefix
	n >= count(e.segments)
}

segment_count_ok(e, n) if {
	not e.is_prefix
	n == count(e.segments)
}

segment_ok("+", _, _, _)

segment_ok(s, part, _, _) if s == part

segment_ok(s, part, true, true) if startswith(part, s)

# "deny" in any policy holding the winning pattern overrides every other
# capability (the merge leaves caps = {"deny": true}).
denied if winner.caps.deny

default needed := ""

needed := op_capability[op]

capability_ok if {
	not denied
	winner.caps[needed]
}

sudo_ok if not input.request.sudo_required

sudo_ok if {
	not denied
	winner.caps.sudo
}

default granting := []

granting := winner.granting[needed] if capability_ok

# ---- response-wrapping TTLs (merged: the lowest value of each) ----

wrap_ttl := object.get(input.request, "wrap_ttl", 0)

wrap_ok if not winner.wrapping

wrap_ok if {
	winner.min_wrapping_ttl == 0
	winner.max_wrapping_ttl == 0
}

wrap_ok if {
	winner.wrapping
	wrap_ttl > 0
	wrap_max_ok
	wrap_min_ok
	wrap_consistent
}

wrap_max_ok if winner.max_wrapping_ttl == 0

wrap_max_ok if wrap_ttl <= winner.max_wrapping_ttl

wrap_min_ok if winner.min_wrapping_ttl == 0

wrap_min_ok if wrap_ttl >= winner.min_wrapping_ttl

wrap_consistent if winner.min_wrapping_ttl == 0

wrap_consistent if winner.max_wrapping_ttl == 0

wrap_consistent if winner.max_wrapping_ttl >= winner.min_wrapping_ttl

# ---- parameter constraints (merged allowed/denied maps: an empty list for a
# key means "any value") ----

names := {n | some n in input.request.parameters}

# Vault looks the lower-cased required name up among the request's keys.
missing_required contains p if {
	some p in winner.required_parameters
	not lower(p) in names
}

allowed_params := winner.allowed_parameters

denied_params := winner.denied_parameters

constrained if winner.constrained

params_ok if not constrained

params_ok if not op in param_ops

params_ok if {
	op in param_ops
	count(missing_required) == 0
	count(names) == 0
}

params_ok if {
	op in param_ops
	count(missing_required) == 0
	count(names) > 0
	not denied_param
	allowed_by_params
}

denied_param if "*" in object.keys(denied_params)

denied_param if {
	some n in names
	vals := denied_params[lower(n)]
	value_denied(n, vals)
}

value_denied(_, vals) if count(vals) == 0

value_denied(n, vals) if {
	count(vals) > 0
	v := input.acl.values[n]
	in_denied_list(v, vals)
}

allowed_by_params if count(allowed_params) == 0

allowed_by_params if {
	count(allowed_params) == 1
	"*" in object.keys(allowed_params)
}

allowed_by_params if {
	count(allowed_params) > 0
	not only_star
	every n in names {
		param_allowed(n)
	}
}

only_star if {
	count(allowed_params) == 1
	"*" in object.keys(allowed_params)
}

param_allowed(n) if {
	not lower(n) in object.keys(allowed_params)
	"*" in object.keys(allowed_params)
}

param_allowed(n) if {
	vals := allowed_params[lower(n)]
	count(vals) == 0
}

param_allowed(n) if {
	vals := allowed_params[lower(n)]
	count(vals) > 0
	v := input.acl.values[n]
	in_allowed_list(v, vals)
}

# valueInAllowedParameterList: the whole value, or every element of a list,
# or every element of a comma-separated string must be in the list.
in_allowed_list(v, list) if in_list(v, list)

in_allowed_list(v, list) if {
	is_array(v)
	every e in v {
		in_list(e, list)
	}
}

in_allowed_list(v, list) if {
	is_string(v)
	every e in comma_list(v) {
		in_list(e, list)
	}
}

# valueInDeniedParameterList: the whole value, or any element.
in_denied_list(v, list) if in_list(v, list)

in_denied_list(v, list) if {
	is_array(v)
	some e in v
	in_list(e, list)
}

in_denied_list(v, list) if {
	is_string(v)
	some e in comma_list(v)
	in_list(e, list)
}

comma_list("") := []

comma_list(s) := [trim_space(e) | some e in split(s, ",")] if s != ""

in_list(v, list) if {
	some el in list
	element_match(el, v)
}

element_match(el, v) if {
	is_string(el)
	is_string(v)
	globbed_match(el, v)
}

element_match(el, v) if {
	not is_string(el)
	el == v
}

# strutil.GlobbedStringsMatch: a leading and/or trailing "*" in the policy
# value matches any suffix/prefix/infix.
globbed_match(item, val) if {
	count(item) < 2
	val == item
}

globbed_match(item, val) if {
	count(item) >= 2
	startswith(item, "*")
	endswith(item, "*")
	contains(val, substring(item, 1, count(item) - 2))
}

globbed_match(item, val) if {
	count(item) >= 2
	startswith(item, "*")
	not endswith(item, "*")
	endswith(val, substring(item, 1, -1))
}

globbed_match(item, val) if {
	count(item) >= 2
	not startswith(item, "*")
	endswith(item, "*")
	startswith(val, substring(item, 0, count(item) - 1))
}

globbed_match(item, val) if {
	count(item) >= 2
	not startswith(item, "*")
	not endswith(item, "*")
	val == item
}

# ---- control groups (approvals before an allowed request runs) ----

# The factors of the winning entry's control group that apply to the
# capability the request needs: a factor with controlled_capabilities
# applies only to those.
cg_factors := [f |
	some f in winner.control_group.factors
	factor_applies(f)
]

factor_applies(f) if count(f.controlled_capabilities) == 0

factor_applies(f) if needed in f.controlled_capabilities

# What an allowed request must wait for (null: nothing).
default approval := null

approval := {
	"ttl": winner.control_group.ttl,
	"max_ttl": winner.control_group.max_ttl,
	"factors": cg_factors,
} if {
	allowed
	winner.gated
	count(cg_factors) > 0
}

# ---- result ----

default allowed := false

allowed if {
	capability_ok
	sudo_ok
	wrap_ok
	params_ok
}

# Vault's sys/capabilities answer for the path (Go lists the merged
# capabilities in Vault's order; "deny" when denied).
default capabilities := ["deny"]

capabilities := winner.capabilities

# Why the ACL denied (Go turns the code into the audit's deny reason):
# no_match, explicit_deny, capability, wrapping, required_parameters,
# parameters, sudo; "" when allowed.
default denial := ""

denial := code if {
	not allowed
	code := denial_code
}

denial_code := "no_match" if not winner

else := "explicit_deny" if denied

else := "capability" if not capability_ok

else := "wrapping" if not wrap_ok

else := "required_parameters" if count(missing_required) > 0

else := "parameters" if not params_ok

else := "sudo"

default missing := []

missing := sort(missing_required) if denial == "required_parameters"

default winner_position := -1

winner_position := winner_index

# The ACL part of the decision document. "winner" is the position of the
# deciding entry in input.acl.entries (-1: none matched); Go reads the
# pattern, policies and capabilities from that entry.
#
# The first body is the fast path for the common case (the winning entry
# grants the capability and sets no parameter, wrapping or control-group
# constraints); it
# decides exactly as the general rules below, with fewer evaluations.
# Booleans order false < true, so have_sudo >= sudo_required reads "sudo is
# granted or not needed".
result := {
	"allowed": true,
	"winner": i,
	"denial": "",
	"needed": n,
	"granting": e.granting[n],
	"missing_parameters": [],
	"approval": null,
} if {
	i := winner_index
	e := entries[i]
	not e.constrained
	not e.wrapping
	not e.gated
	not e.caps.deny
	n := op_capability[op]
	e.caps[n]
	object.get(e.caps, "sudo", false) >= input.request.sudo_required
} else := {
	"allowed": allowed,
	"winner": winner_position,
	"denial": denial,
	"needed": needed,
	"granting": granting,
	"missing_parameters": missing,
	"approval": approval,
}
