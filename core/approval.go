package core

import (
	"context"
	"time"
)

// Approval says that a request may run only once other people have
// approved it: a control group. An ACL rule's control_group stanza or a
// custom Rego module's require_approval asks for it; every factor must be
// satisfied. The Dispatcher holds such a request (see ApprovalGate) instead
// of executing it.
type Approval struct {
	Factors []ApprovalFactor
	// TTL is how long the request waits for its approvals and its
	// requester for the answer (0: the server's default); MaxTTL caps it
	// (0: no cap of its own).
	TTL    time.Duration
	MaxTTL time.Duration
	// Sources name what asked for the approval: "acl:<policy>" or
	// "rego:<module>".
	Sources []string
}

// ApprovalFactor is one set of approvers: Approvals distinct people (by
// entity), each a member of at least one of the identity groups named in
// GroupNames, none of them the requester.
type ApprovalFactor struct {
	Name       string
	GroupNames []string
	Approvals  int
}

// ApprovalGate holds requests that need approval: it records the request
// for later and answers with a response-wrapping token (WrapInfo) whose
// accessor approvers use with sys/control-group/authorize; once approved,
// the requester unwraps it with sys/wrapping/unwrap, which executes the
// request through the Dispatcher with Request.Approved set.
type ApprovalGate interface {
	Hold(ctx context.Context, req *Request) (*Response, error)
}
