package core

// Label records an audit label on r: it appears in vigil.flags of every
// audit entry written for r after this call (a label overrides a policy
// flag of the same name). Labels link records that belong together, such
// as the request, approvals and execution of a control group. Label is
// not safe for concurrent use; a request is handled by one goroutine.
func (r *Request) Label(key, value string) {
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	r.Labels[key] = value
}

// Audit labels set by Vigil itself.
const (
	// LabelControlGroup is the id of a control-group request (the id of
	// the request that was held), on every record of it.
	LabelControlGroup = "control_group"
	// LabelControlGroupState is "pending" (held), "approved" or "pending"
	// (after an approval), "executed" (run on unwrap).
	LabelControlGroupState = "control_group_state"
	// LabelControlGroupRequester is the requester's canonical actor name.
	LabelControlGroupRequester = "control_group_requester"
	// LabelControlGroupReason is the requester's X-Vigil-Reason header.
	LabelControlGroupReason = "control_group_reason"
	// LabelApprover lists the approvers' canonical actor names (",").
	LabelApprover = "approver"
	// LabelApproverEntityIDs lists the approvers' entity ids (",").
	LabelApproverEntityIDs = "approver_entity_ids"
	// LabelWrapRequestID is the id of the request whose response a
	// wrapping token holds, on unwrap and rewrap records.
	LabelWrapRequestID = "wrap_request_id"
	// LabelWrapCreationPath is the path whose response was wrapped.
	LabelWrapCreationPath = "wrap_creation_path"
	// LabelWrappedBy and LabelWrappedByEntityID name who wrapped it.
	LabelWrappedBy         = "wrapped_by"
	LabelWrappedByEntityID = "wrapped_by_entity_id"
	// LabelResumesRequestID is, on a lease revocation that completes an
	// interrupted one (the node that started it crashed or stopped being
	// the active node before it deleted the lease), the id of the
	// revocation request it completes: the two records are one revocation.
	LabelResumesRequestID = "resumes_request_id"
)
