# METADATA
# title: Fresh tokens for PHI writes
# description: |
#   Denies writes (create, update, patch, delete) to mounts tagged phi=true
#   (mount option phi=true) for tokens issued more than an hour before the
#   request. Reads are not affected. It reads input.request.time_ns, so its
#   decisions are never served from the decision cache.
package vigil.custom.phi_token_age

max_age_seconds := 3600

write_operations := {"create", "update", "patch", "delete"}

deny contains msg if {
	input.mount.tags.phi == "true"
	input.request.operation in write_operations
	age := (input.request.time_ns - input.token.issue_time_ns) / 1000000000
	age > max_age_seconds
	msg := sprintf("writes to PHI mount %s need a token issued within the last hour (token age %ds)", [input.mount.path, round(age)])
}
