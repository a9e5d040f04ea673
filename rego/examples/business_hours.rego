# METADATA
# title: Business hours only for production secrets
# description: |
#   Denies every request under secret/data/prod/ outside Monday-Friday
#   09:00-17:00 in the zone below. It reads input.request.time_ns, so its
#   decisions are never served from the decision cache.
package vigil.custom.business_hours

zone := "UTC"

protected_prefix := "secret/data/prod/"

deny contains msg if {
	startswith(input.request.path, protected_prefix)
	not business_hours
	msg := sprintf("%s is only accessible Monday-Friday 09:00-17:00 %s", [input.request.path, zone])
}

business_hours if {
	ns := input.request.time_ns
	not time.weekday([ns, zone]) in {"Saturday", "Sunday"}
	[hour, _, _] := time.clock([ns, zone])
	hour >= 9
	hour < 17
}
