# METADATA
# title: Group membership required
# description: |
#   Only members of the identity group icu-clinicians may touch the ICU
#   mount's secrets, whatever ACL policy granted the token access. It reads
#   input.identity.groups: the token's entity groups (internal and external,
#   direct and inherited) as the identity store resolves them on every
#   request, so removing someone from the group denies their next request.
#   Tokens without an entity are denied too.
package vigil.custom.icu_clinicians

required_group := "icu-clinicians"

protected_prefix := "secret/data/icu/"

deny contains msg if {
	startswith(input.request.path, protected_prefix)
	not required_group in input.identity.groups
	msg := sprintf("%s is reserved to members of the %s group (caller: %q)", [input.request.path, required_group, caller])
}

caller := input.identity.actor if input.identity.actor != ""

caller := input.token.display_name if input.identity.actor == ""
