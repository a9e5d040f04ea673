# METADATA
# title: Break-glass access with a stated reason
# description: |
#   Tokens created with metadata break_glass=true may read and write any path
#   outside sys/ even where no ACL policy grants it, but only when the request
#   carries an X-Vigil-Reason header; without one every request of such a
#   token is denied. Each break-glass request is flagged in the audit entry
#   (flags break_glass="true", break_glass_reason and, when given,
#   break_glass_ticket from X-Vigil-Ticket). An explicit ACL deny and
#   root-protected (sudo) paths still win.
package vigil.custom.break_glass

eligible if input.token.metadata.break_glass == "true"

reason := trim_space(object.get(input.request.headers, "X-Vigil-Reason", ""))

ticket := trim_space(object.get(input.request.headers, "X-Vigil-Ticket", ""))

allow if {
	eligible
	reason != ""
	not startswith(input.request.path, "sys/")
}

deny contains "break-glass tokens must state an X-Vigil-Reason header" if {
	eligible
	reason == ""
}

flags["break_glass"] := "true" if {
	eligible
	reason != ""
}

flags["break_glass_reason"] := reason if {
	eligible
	reason != ""
}

flags["break_glass_ticket"] := ticket if {
	eligible
	reason != ""
	ticket != ""
}
