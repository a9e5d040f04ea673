package core

import "context"

// ResponseWrapper wraps responses (X-Vault-Wrap-TTL, sys/wrapping/wrap):
// it keeps resp in a new single-use wrapping token's cubbyhole and returns
// the response the client gets instead, carrying WrapInfo. The returned
// response keeps resp's Data, Auth and Secret for the audit entry only:
// the HTTP layer writes nothing but WrapInfo (and warnings) of a wrapped
// response.
type ResponseWrapper interface {
	Wrap(ctx context.Context, req *Request, resp *Response) (*Response, error)
}
