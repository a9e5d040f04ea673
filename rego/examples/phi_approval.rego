# METADATA
# title: Approval for PHI outside business hours
# description: |
#   A read or write of a mount tagged phi=true outside business hours
#   (Monday-Friday 07:00-19:00 UTC) runs only once a member of the
#   clinical-leads identity group, other than the requester, has approved
#   it (require_approval: a control group, as an ACL control_group stanza
#   declares one). In business hours nothing is asked. The requester gets
#   a wrapping token; the approver calls sys/control-group/authorize with
#   its accessor; the requester then runs the request with
#   sys/wrapping/unwrap.
package vigil.custom.phi_approval

zone := "UTC"

require_approval := {
	"factors": [{"name": "clinical-lead", "group_names": ["clinical-leads"], "approvals": 1}],
	"max_ttl": "2h",
} if {
	input.mount.tags.phi == "true"
	input.request.operation in {"read", "create", "update", "patch", "delete"}
	not business_hours
}

business_hours if {
	ns := input.request.time_ns
	not time.weekday([ns, zone]) in {"Saturday", "Sunday"}
	[hour, _, _] := time.clock([ns, zone])
	hour >= 7
	hour < 19
}
