# Unit tests of package vigil.acl. Entries have the shape core/authz builds
# (core/authz/compile.go: one entry per pattern of the token's policy set,
# already merged); cases follow Vault's documentation (docs/concepts/policies)
# and vault/acl.go. Merging across policies is tested in Go (core/authz).
package vigil.acl_test

import data.vigil.acl

vault_order := ["sudo", "read", "list", "update", "delete", "create", "patch"]

kind_of(p) := "segment" if {
	segment_pattern(p)
} else := "prefix" if {
	endswith(p, "*")
} else := "exact"

segment_pattern(p) if p == "+"

segment_pattern(p) if contains(p, "/+")

segment_pattern(p) if startswith(p, "+/")

# entry(policies, pattern, capabilities) builds one merged entry.
entry(pols, pattern, caps) := {
	"pattern": pattern,
	"kind": k,
	"prefix": pre,
	"segments": segs,
	"is_prefix": isp,
	"priority": [fw, np, 0 - wc, count(pre), pre],
	"caps": {c: true | some c in caps},
	"capabilities": [c | some c in vault_order; c in caps],
	"granting": {c: pols | some c in caps},
	"policies": pols,
	"constrained": false,
	"required_parameters": [],
	"allowed_parameters": {},
	"denied_parameters": {},
	"wrapping": false,
	"min_wrapping_ttl": 0,
	"max_wrapping_ttl": 0,
} if {
	k := kind_of(pattern)
	pre := prefix_of(k, pattern)
	segs := segments_of(k, pre)
	isp := endswith(pattern, "*")
	np := 1 - to_number(isp)
	fw := first_wc(k, pattern, pre)
	wc := count([s | some s in segs; s == "+"])
}

prefix_of("exact", p) := p

prefix_of(k, p) := trim_suffix(p, "*") if k != "exact"

segments_of("segment", pre) := split(pre, "/")

segments_of(k, _) := [] if k != "segment"

first_wc("segment", p, _) := indexof(p, "+")

first_wc(k, _, pre) := count(pre) if k != "segment"

deny_entry(pols, pattern) := object.union(entry(pols, pattern, ["deny"]), {"granting": {}, "capabilities": ["deny"]})

with_params(e, extra) := object.union(object.union(e, extra), {"constrained": true, "wrapping": true})

req(entries, path, op) := req_full(entries, path, op, {}, false)

req_full(entries, path, op, params, sudo) := {
	"token": {"policies": ["p"]},
	"request": {"path": path, "operation": op, "parameters": [k | some k, _ in params], "sudo_required": sudo},
	"acl": {"entries": entries, "values": params},
}

allows(entries, path, op) if acl.allowed with input as req(entries, path, op)

caps_of(entries, path) := c if {
	c := acl.capabilities with input as req(entries, path, "list")
}

# --- exact and glob (docs: "Policy syntax") ---

test_exact_only_matches_itself if {
	es := [entry(["p"], "secret/foo", ["read"])]
	allows(es, "secret/foo", "read")
	not allows(es, "secret/food", "read")
	not allows(es, "secret/foo/bar", "read")
}

test_glob_matches_prefix if {
	es := [entry(["p"], "secret/bar/*", ["read"]), entry(["p"], "secret/zip-*", ["read"])]
	allows(es, "secret/bar/zip", "read")
	allows(es, "secret/bar/zip/zap", "read")
	not allows(es, "secret/bars/zip", "read")
	allows(es, "secret/zip-zap", "read")
	allows(es, "secret/zip-zap/zong", "read")
	not allows(es, "secret/zip/zap", "read")
}

test_plus_matches_one_segment if {
	es := [entry(["p"], "secret/+/teamb", ["read"]), entry(["q"], "secret/+/+/teamb", ["read"])]
	allows(es, "secret/foo/teamb", "read")
	allows(es, "secret/foo/bar/teamb", "read")
	not allows(es, "secret/teamb", "read")
	not allows(es, "secret/foo/teamb/x", "read")
}

test_segment_with_trailing_glob if {
	es := [entry(["p"], "secret/+/foo*", ["read"])]
	allows(es, "secret/x/foo", "read")
	allows(es, "secret/x/food/y", "read")
	not allows(es, "secret/x/fo", "read")
}

# --- priority matching (docs: the five numbered rules) ---

test_exact_beats_glob if {
	es := [entry(["a"], "secret/*", ["read", "update"]), entry(["b"], "secret/foo", ["update"])]
	not allows(es, "secret/foo", "read")
	allows(es, "secret/foo", "update")
	allows(es, "secret/other", "read")
}

test_longest_glob_wins if {
	es := [entry(["a"], "secret/*", ["read"]), deny_entry(["b"], "secret/foo/*")]
	not allows(es, "secret/foo/bar", "read")
	allows(es, "secret/foobar", "read")
}

# Rule 1: the first wildcard later in the path has priority.
test_rule1_first_wildcard_position if {
	es := [entry(["a"], "secret/+/x", ["read"]), entry(["b"], "secret/a*", ["update"])]
	allows(es, "secret/a/x", "update")
	not allows(es, "secret/a/x", "read")
}

# Rule 2: a pattern ending in * loses to one that does not.
test_rule2_glob_loses if {
	es := [entry(["a"], "secret/+/foo*", ["read"]), entry(["b"], "secret/+/foo", ["update"])]
	allows(es, "secret/x/foo", "update")
	not allows(es, "secret/x/foo", "read")
	allows(es, "secret/x/foobar", "read")
}

# Rule 3: more + segments lose (docs: "secret/*" beats "secret/+/+/foo/*").
test_rule3_more_wildcards_lose if {
	es := [entry(["a"], "secret/*", ["read"]), deny_entry(["b"], "secret/+/+/foo/*")]
	allows(es, "secret/a/b/foo/c", "read")
}

# Rule 4: shorter loses.
test_rule4_shorter_loses if {
	es := [entry(["a"], "secret/+/b*", ["read"]), entry(["b"], "secret/+/ba*", ["update"])]
	allows(es, "secret/x/bar", "update")
	not allows(es, "secret/x/bar", "read")
	allows(es, "secret/x/bo", "read")
}

test_deny_on_other_pattern_does_not_apply if {
	# Only the highest-priority pattern applies.
	es := [deny_entry(["a"], "secret/*"), entry(["b"], "secret/ok", ["read"])]
	allows(es, "secret/ok", "read")
	not allows(es, "secret/other", "read")
}

test_granting_policies_per_capability if {
	e := object.union(entry(["a", "b"], "secret/*", ["read", "update"]), {"granting": {"read": ["a"], "update": ["b"]}})
	g := acl.granting with input as req([e], "secret/x", "update")
	g == ["b"]
}

# --- list vs read, trailing slash ---

test_list_needs_list if {
	es := [entry(["a"], "secret/*", ["read"])]
	not allows(es, "secret/foo/", "list")
	allows(es, "secret/foo", "read")
}

test_list_trailing_slash_exact if {
	es := [entry(["a"], "secret/foo", ["list"])]
	allows(es, "secret/foo/", "list")
	not allows(es, "secret/foo/", "read")
}

test_list_wildcard_without_slash if {
	es := [entry(["a"], "+/sys/policies/acl", ["list"])]
	allows(es, "ns/sys/policies/acl/", "list")
}

# --- sudo ---

test_sudo_required if {
	es := [entry(["a"], "sys/audit/x", ["update"]), entry(["b"], "sys/mounts/x", ["update", "sudo"])]
	not acl.allowed with input as req_full(es, "sys/audit/x", "update", {}, true)
	acl.allowed with input as req_full(es, "sys/mounts/x", "update", {}, true)
	acl.allowed with input as req_full(es, "sys/audit/x", "update", {}, false)
}

# --- parameters (docs: "Parameter constraints") ---

foo(extra) := [with_params(entry(["a"], "secret/foo", ["create", "read", "delete"]), extra)]

ok(params, es) if acl.allowed with input as req_full(es, "secret/foo", "create", params, false)

test_required_parameters if {
	es := foo({"required_parameters": ["bar", "baz"]})
	ok({"bar": 1, "baz": 2}, es)
	not ok({"bar": 1}, es)
}

test_allowed_parameters if {
	es := foo({"allowed_parameters": {"foo": [], "bar": ["zip", "zap"]}})
	ok({"foo": "anything", "bar": "zip"}, es)
	not ok({"bar": "zop"}, es)
	not ok({"other": "x"}, es)
	ok({}, es)
}

test_allowed_star_allows_others if {
	es := foo({"allowed_parameters": {"bar": ["zip"], "*": []}})
	ok({"bar": "zip", "other": "x"}, es)
	not ok({"bar": "zop", "other": "x"}, es)
}

test_allowed_globbed_values if {
	es := foo({"allowed_parameters": {"bar": ["foo-*", "*-end", "*mid*"]}})
	ok({"bar": "foo-1"}, es)
	ok({"bar": "x-end"}, es)
	ok({"bar": "amidb"}, es)
	not ok({"bar": "nope"}, es)

	# Lists and comma-separated strings: every element must be allowed.
	ok({"bar": ["foo-1", "a-end"]}, es)
	not ok({"bar": ["foo-1", "no"]}, es)
	ok({"bar": "foo-1, z-end"}, es)
}

test_denied_parameters if {
	es := foo({"denied_parameters": {"bar": ["zip", "zap"], "baz": []}})
	ok({"bar": "zop"}, es)
	not ok({"bar": "zip"}, es)
	not ok({"baz": "x"}, es)
	not ok({"bar": ["zop", "zap"]}, es)
}

test_denied_star_denies_all if {
	es := foo({"denied_parameters": {"*": []}})
	ok({}, es)
	not ok({"x": 1}, es)
}

test_denied_beats_allowed if {
	es := foo({"allowed_parameters": {"bar": []}, "denied_parameters": {"bar": ["zip"]}})
	ok({"bar": "zap"}, es)
	not ok({"bar": "zip"}, es)
}

test_parameters_checked_for_read_not_delete if {
	es := foo({"required_parameters": ["x"]})
	not acl.allowed with input as req_full(es, "secret/foo", "read", {}, false)
	acl.allowed with input as req_full(es, "secret/foo", "delete", {}, false)
}

# --- response wrapping ---

test_wrapping_required if {
	es := foo({"min_wrapping_ttl": 1, "max_wrapping_ttl": 90})
	not allows(es, "secret/foo", "read")
	i := req(es, "secret/foo", "read")
	w := json.patch(i, [{"op": "add", "path": "/request/wrap_ttl", "value": 60}])
	acl.allowed with input as w
	w2 := json.patch(i, [{"op": "add", "path": "/request/wrap_ttl", "value": 120}])
	not acl.allowed with input as w2
}

# --- capabilities answers and results ---

test_capabilities_none_is_deny if {
	caps_of([entry(["a"], "secret/x", ["read"])], "secret/y") == ["deny"]
	caps_of([deny_entry(["a"], "secret/*")], "secret/y") == ["deny"]
	caps_of([entry(["a"], "secret/*", ["update", "read"])], "secret/y") == ["read", "update"]
}

test_result_explains_denial if {
	es := [entry(["dev"], "secret/*", ["read"])]
	r := acl.result with input as req(es, "secret/x", "update")
	r.denial == "capability"
	r.winner == 0
	r.needed == "update"
	r.granting == []
}

test_result_denial_codes if {
	es := [
		entry(["a"], "secret/*", ["read"]),
		deny_entry(["a"], "secret/no"),
		with_params(entry(["a"], "secret/req", ["create"]), {"required_parameters": ["x"]}),
		entry(["a"], "sys/rotate", ["update"]),
	]
	denial(es, "other/x", "read", false) == "no_match"
	denial(es, "secret/no", "read", false) == "explicit_deny"
	denial(es, "secret/x", "delete", false) == "capability"
	denial(es, "secret/req", "create", false) == "required_parameters"
	denial(es, "sys/rotate", "update", true) == "sudo"
	denial(es, "secret/x", "read", false) == ""
}

denial(es, path, op, sudo) := d if {
	d := acl.result.denial with input as req_full(es, path, op, {}, sudo)
}

# The fast path of result agrees with the general rules.
test_result_fast_path_matches_general_rules if {
	es := [entry(["a"], "secret/*", ["read", "sudo"]), entry(["b"], "sys/x", ["update"])]
	every c in [
		["secret/x", "read", false], ["secret/x", "read", true], ["secret/x", "update", false],
		["sys/x", "update", true], ["sys/x", "update", false], ["other", "read", false],
	] {
		i := req_full(es, c[0], c[1], {}, c[2])
		r := acl.result with input as i
		a := acl.allowed with input as i
		r.allowed == a
	}
}
