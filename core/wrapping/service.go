// Package wrapping implements Vault's response wrapping and Vault
// Enterprise's control groups on top of the token store and the cubbyhole.
//
// Response wrapping. A request carrying X-Vault-Wrap-TTL (core.Request
// .WrapTTL), and sys/wrapping/wrap, is answered with a single-use
// response-wrapping token instead of its response: the Dispatcher calls
// Wrap after the handler and the post hooks, which creates the token
// (policy "response-wrapping", one use, TTL the wrap TTL) and keeps the
// response in the token's cubbyhole. The client gets wrap_info only; the
// audit entry still holds the response, HMAC'd like any other. The routes
// on sys/:
//
//	sys/wrapping/wrap     POST  any data; requires a wrap TTL
//	sys/wrapping/unwrap   POST  token (or the wrapping token as the client token)
//	sys/wrapping/lookup   GET/POST token (unauthenticated, as in Vault)
//	sys/wrapping/rewrap   POST  token: a new wrapping token for the same response
//
// Unwrap and rewrap spend the wrapping token (token.Store.Claim): a second
// unwrap, or any other use of the token, finds it gone. Their audit
// entries carry labels naming the request that was wrapped, its path and
// who wrapped it (core.LabelWrap*).
//
// Control groups. When the authorizer asks for approval
// (core.Decision.Approval), the Dispatcher calls Hold instead of the
// handler: the request (path, operation, data, headers) is kept in a new
// wrapping token's cubbyhole and the client gets that token's wrap_info.
// Approvers — members of the factors' identity groups, never the
// requester — call sys/control-group/authorize with its accessor;
// sys/control-group/request shows the state. Once every factor has its
// approvals, the requester unwraps the token with their own token: the
// request is then executed through the Dispatcher (authenticated,
// authorized again and audited) with core.Request.Approved set, and its
// response is the unwrap's. Every record — the held request, each
// approval, the execution, the unwrap — carries the label
// core.LabelControlGroup, the id of the held request.
//
//	sys/control-group/authorize  POST accessor → {"approved": bool}
//	sys/control-group/request    POST accessor → approved, request_path, request_operation,
//	                             request_data, request_entity, authorizations, ...
//
// Everything is kept in the wrapping token's cubbyhole, so it is destroyed
// with the token: at unwrap, at expiry (token tidy) or on revocation. The
// token and its cubbyhole are keyed by the token store and the cubbyhole,
// never by a path, so a namespace-scoped token store keeps them apart.
package wrapping

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/token"
)

// Tokens is what wrapping needs of the token store.
type Tokens interface {
	Create(ctx context.Context, p token.CreateParams) (string, *token.Entry, error)
	Lookup(ctx context.Context, raw string) (*token.Entry, error)
	LookupAccessor(ctx context.Context, acc string) (*token.Entry, error)
	Claim(ctx context.Context, raw string, fn func(e *token.Entry) error) (bool, error)
	Revoke(ctx context.Context, hash string) error
	Limits() (def, max time.Duration)
}

// Cubbyholes stores values in a token's cubbyhole, by the token's storage
// hash. The token store destroys a token's cubbyhole when it revokes it.
type Cubbyholes interface {
	Put(ctx context.Context, tokenHash, key string, value []byte) error
	Get(ctx context.Context, tokenHash, key string) ([]byte, error)
}

type tokenEntry = token.Entry

// Dispatch runs a request through the Dispatcher.
type Dispatch func(ctx context.Context, req *core.Request) (*core.Response, error)

var (
	_ Tokens               = (*token.Store)(nil)
	_ core.ApprovalGate    = (*Service)(nil)
	_ core.ResponseWrapper = (*Service)(nil)
)

// DefaultApprovalTTL is how long a control-group request waits when its
// policy sets neither ttl nor max_ttl.
const DefaultApprovalTTL = 24 * time.Hour

// Config wires a Service.
type Config struct {
	Tokens     Tokens
	Cubbyholes Cubbyholes
	Now        func() time.Time
	Logger     *slog.Logger
	// ApprovalTTL overrides DefaultApprovalTTL.
	ApprovalTTL time.Duration
}

// Service wraps responses, holds requests for approval and serves the
// sys/wrapping and sys/control-group routes. It is safe for concurrent use.
type Service struct {
	cfg      Config
	dispatch atomic.Pointer[Dispatch]
	// mu serialises changes to a control-group request (approvals).
	mu sync.Mutex
}

// New returns a service. SetDispatch must be called before an approved
// request can be executed.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ApprovalTTL <= 0 {
		cfg.ApprovalTTL = DefaultApprovalTTL
	}
	return &Service{cfg: cfg}
}

// SetDispatch gives the service the Dispatcher (built after it).
func (s *Service) SetDispatch(d Dispatch) { s.dispatch.Store(&d) }

// ErrInvalidToken is Vault's answer for a wrapping token that is unknown,
// expired, already used, or not a wrapping token.
var ErrInvalidToken = core.Invalid("wrapping token is not valid or does not exist")

// errNoDispatch is returned when an approved request cannot be executed.
var errNoDispatch = errors.New("wrapping: no dispatcher to execute the approved request")
