# METADATA
# title: Client network allowlist
# description: |
#   Denies requests whose client address is outside the listed networks.
#   It reads input.request.remote_addr, which becomes part of the decision
#   cache key.
package vigil.custom.cidr_allowlist

allowed_networks := ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "::1/128"]

deny contains msg if {
	not from_allowed_network
	msg := sprintf("client address %q is not in the allowed networks %v", [input.request.remote_addr, allowed_networks])
}

from_allowed_network if {
	input.request.remote_addr != ""
	some cidr in allowed_networks
	net.cidr_contains(cidr, input.request.remote_addr)
}
