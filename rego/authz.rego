# METADATA
# title: Vigil authorization decision
# description: |
#   The one decision of a request: root tokens are allowed everything (as in
#   Vault, custom modules do not apply to them); otherwise the Vault ACL result
#   (package vigil.acl) and the custom Rego modules stored under
#   sys/policies/rego (packages vigil.custom.<name>, enforcement levels in
#   data.vigil_policies.rego[<name>].level) are combined:
#
#   - a "deny" reason from a mandatory module denies the request; from an
#     advisory module it is only recorded (advisories);
#   - the request is allowed when the ACL allows it, or when a mandatory
#     module's "allow" is true and the ACL neither explicitly denies the path
#     nor is the path root-protected (sudo is only granted by ACL policies);
#   - "flags" objects of all modules are merged (values of the same key from
#     several modules are joined with ",") and end in the audit entry;
#   - a mandatory module's "require_approval" (factors of approvers, as in
#     an ACL control_group) makes an allowed request wait for approvals.
#
#   Custom modules see the input without its "acl" part (which holds the
#   parameter values that ACL parameter constraints need).
#
#   The decision document (decision) is structured: allowed, root, acl (the
#   ACL result), and with custom modules custom_allowers, deny_reasons,
#   advisories, flags and modules (each module's level, deny reasons, allow
#   and flags). core/authz turns it into core.Decision (granting policies,
#   deny reasons, explanation).
package vigil.authz

default root := false

root if "root" in input.token.policies

default allowed := false

allowed if root

allowed if {
	not root
	count(mandatory_denies) == 0
	data.vigil.acl.allowed
}

allowed if {
	not root
	count(mandatory_denies) == 0
	custom_grant
}

custom_grant if {
	not data.vigil.acl.denied
	not input.request.sudo_required
	count(custom_allowers) > 0
}

# ---- custom modules ----

custom_input := object.remove(input, ["acl"])

results[name] := r if {
	not root
	some name, cfg in data.vigil_policies.rego
	ci := custom_input
	r := module_result(name, cfg.level) with input as ci
}

# One "with" per module: each replacement of input costs an evaluation
# context of its own.
module_result(name, level) := {
	"level": level,
	"deny": sort(module_deny(name)),
	"allow": count(module_allow(name)) > 0,
	"flags": module_flags(name),
	"require_approval": module_approval(name),
}

module_deny(name) := {reason_text(m) | some m in data.vigil.custom[name].deny}

module_allow(name) := {true | data.vigil.custom[name].allow == true}

module_flags(name) := {k: sprintf("%v", [v]) | some k, v in data.vigil.custom[name].flags}

# require_approval: the approvals (control group) a module asks for before
# an allowed request runs; null when it asks for none.
module_approval(name) := a if {
	a := data.vigil.custom[name].require_approval
} else := null

reason_text(m) := m if is_string(m)

else := sprintf("%v", [m])

mandatory_denies contains sprintf("rego %s: %s", [name, reason]) if {
	some name, r in results
	r.level == "mandatory"
	some reason in r.deny
}

advisories contains sprintf("rego %s (advisory): %s", [name, reason]) if {
	some name, r in results
	r.level == "advisory"
	some reason in r.deny
}

custom_allowers contains name if {
	some name, r in results
	r.level == "mandatory"
	r.allow
}

flag_keys contains k if {
	some _, r in results
	some k, _ in r.flags
}

flags[k] := concat(",", sort({v | some _, r in results; v := r.flags[k]})) if some k in flag_keys

# ---- decision document ----

capabilities := ["root"] if root

else := data.vigil.acl.capabilities

no_modules if count(data.vigil_policies.rego) == 0

decision := {"allowed": true, "root": true} if root

else := {"allowed": r.allowed, "root": false, "acl": r} if {
	no_modules
	r := data.vigil.acl.result
}

else := {
	"allowed": allowed,
	"root": false,
	"acl": data.vigil.acl.result,
	"custom_allowers": sort(custom_allowers),
	"deny_reasons": sort(mandatory_denies),
	"advisories": sort(advisories),
	"flags": flags,
	"modules": results,
}
