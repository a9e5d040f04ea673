package vigil.custom.cidr_allowlist_test

import data.vigil.custom.cidr_allowlist

req(addr) := {"request": {"path": "secret/data/x", "operation": "read", "remote_addr": addr}}

test_allow_private_network if {
	count(cidr_allowlist.deny) == 0 with input as req("10.1.2.3")
}

test_allow_loopback_v6 if {
	count(cidr_allowlist.deny) == 0 with input as req("::1")
}

test_deny_public_address if {
	some msg in cidr_allowlist.deny with input as req("203.0.113.7")
	contains(msg, "203.0.113.7")
}

test_deny_missing_address if {
	count(cidr_allowlist.deny) == 1 with input as req("")
}
