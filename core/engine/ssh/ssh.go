// Package ssh is Vault's SSH secrets engine in its certificate-authority
// mode: the mount holds one SSH CA key, roles say which principals,
// extensions, critical options and lifetimes a certificate may carry, and
// sign/:role turns a client's public key into an OpenSSH certificate that
// any sshd trusting the CA (TrustedUserCAKeys) accepts. Register New as
// mount type "ssh".
//
// # Routes (Vault's shapes)
//
//   - config/ca: generate (generate_signing_key, key_type, key_bits) or
//     import (private_key, public_key) the CA key; read returns the public
//     key; delete removes it.
//   - public_key: the CA public key in authorized_keys format, plain text,
//     without a token (what sshd's TrustedUserCAKeys file holds).
//   - roles/:name (and LIST roles): key_type "ca" roles. The one-time
//     password and dynamic-key modes are refused with 400: Vault itself
//     deprecated dynamic keys, and OTP needs a helper on every host.
//   - sign/:role: sign a public key; issue/:role: generate a key pair and
//     sign it.
//
// Certificates are not leased, as in Vault: their validity is in the
// certificate. Identity templating of users and extensions is refused with
// 400 rather than silently rendered as literal text.
//
// # Storage and keys
//
// The CA private key is kept in the mount's barrier view at "config/ca" in
// OpenSSH PEM form and never returned by any route. Roles live at
// "roles/<name>".
//
// # Concurrency
//
// A Backend is safe for concurrent use: every operation reads its state
// from storage; config/ca writes are serialised so two generations cannot
// both succeed.
package ssh

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

const (
	caKey       = "config/ca"
	rolesPrefix = "roles/"
)

// Backend is the SSH engine. Construct it with New.
type Backend struct {
	st atomic.Pointer[state]
	// caMu serialises config/ca writes and deletes.
	caMu sync.Mutex
	// rand is the source of serial numbers, nonces and generated keys; nil
	// means crypto/rand. Tests may set it before use.
	rand io.Reader
}

type state struct {
	storage storage.Storage
	now     func() time.Time
	logger  *slog.Logger
	sys     framework.SystemView
	mount   core.MountInfo
}

// New returns an unconfigured SSH engine; register it as type "ssh".
func New() framework.Engine { return &Backend{} }

var _ framework.Engine = (*Backend)(nil)

// Setup prepares the engine for a mount. It may be called again (after
// tuning); the last call wins.
func (b *Backend) Setup(_ context.Context, env framework.Env) error {
	if env.Storage == nil {
		return core.Errorf(core.CodeInternal, "ssh: setup without storage")
	}
	st := &state{storage: env.Storage, now: env.Now, logger: env.Logger, sys: env.System, mount: env.Mount}
	if st.now == nil {
		st.now = time.Now
	}
	if st.logger == nil {
		st.logger = slog.New(slog.DiscardHandler)
	}
	b.st.Store(st)
	return nil
}

// Close holds nothing to release; it may be called any number of times.
func (b *Backend) Close(context.Context) error { return nil }

// Routes returns the engine's paths, relative to the mount.
func (b *Backend) Routes() []framework.Route {
	return []framework.Route{
		b.configCARoute(),
		b.publicKeyRoute(),
		b.rolesListRoute(),
		b.roleRoute(),
		b.signRoute(),
		b.issueRoute(),
	}
}

func (b *Backend) state() (*state, error) {
	st := b.st.Load()
	if st == nil {
		return nil, core.Errorf(core.CodeUnavailable, "ssh: engine is not set up")
	}
	return st, nil
}

func (b *Backend) random() io.Reader {
	if b.rand != nil {
		return b.rand
	}
	return rand.Reader
}

// handler wraps a handler that needs the Setup state.
func (b *Backend) handler(f func(ctx context.Context, st *state, req *core.Request, d *framework.FieldData) (*core.Response, error)) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		st, err := b.state()
		if err != nil {
			return nil, err
		}
		return f(ctx, st, req, d)
	}
}

// defaultTTL and maxTTL are the mount's effective lease TTLs.
func (st *state) defaultTTL() time.Duration {
	if st.sys == nil {
		return 0
	}
	return st.sys.DefaultLeaseTTL()
}

func (st *state) maxTTL() time.Duration {
	if st.sys == nil {
		return 0
	}
	return st.sys.MaxLeaseTTL()
}
