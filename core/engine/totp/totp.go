// Package totp is Vault's TOTP secrets engine: it keeps time-based one-time
// password keys (RFC 6238) and either generates codes (acting as the
// authenticator app) or validates them (acting as the service). Register
// New as mount type "totp".
//
// # Routes (Vault's shapes)
//
//   - keys/:name: write generates a key (generate=true; answers the
//     otpauth:// url and a base64 PNG QR code when exported) or imports one
//     (url or base32 key); read returns its parameters, never the secret;
//     delete removes it. LIST keys.
//   - code/:name: read generates the current code; write with "code"
//     validates one, accepting one period of skew either way when the key's
//     skew is 1.
//
// A validated code cannot be used again while it could still validate (the
// key's skew window plus one period each side): the second use answers 400
// "code already used", as in Vault. The record of used codes is kept in
// memory on the node that validated them, as Vault does.
//
// Codes are computed with github.com/pquerna/otp (HMAC-SHA1, SHA-256 or
// SHA-512; 6 or 8 digits).
//
// # Concurrency
//
// A Backend is safe for concurrent use; keys are read from storage on every
// request, and the used-code record has its own lock.
package totp

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

const keysPrefix = "key/"

// Backend is the TOTP engine. Construct it with New.
type Backend struct {
	st atomic.Pointer[state]
	// rand is the source of generated secrets; nil means crypto/rand.
	rand io.Reader

	usedMu sync.Mutex
	// used maps "<key name>\x00<code>" to the time the code may be used again.
	used map[string]time.Time
}

type state struct {
	storage storage.Storage
	now     func() time.Time
	logger  *slog.Logger
}

// New returns an unconfigured TOTP engine; register it as type "totp".
func New() framework.Engine { return &Backend{used: map[string]time.Time{}} }

var _ framework.Engine = (*Backend)(nil)

// Setup prepares the engine for a mount. It may be called again; the last
// call wins.
func (b *Backend) Setup(_ context.Context, env framework.Env) error {
	if env.Storage == nil {
		return core.Errorf(core.CodeInternal, "totp: setup without storage")
	}
	st := &state{storage: env.Storage, now: env.Now, logger: env.Logger}
	if st.now == nil {
		st.now = time.Now
	}
	if st.logger == nil {
		st.logger = slog.New(slog.DiscardHandler)
	}
	b.st.Store(st)
	return nil
}

// Close forgets the used codes; it may be called any number of times.
func (b *Backend) Close(context.Context) error {
	b.usedMu.Lock()
	b.used = map[string]time.Time{}
	b.usedMu.Unlock()
	return nil
}

// Routes returns the engine's paths, relative to the mount.
func (b *Backend) Routes() []framework.Route {
	return []framework.Route{b.keysListRoute(), b.keyRoute(), b.codeRoute()}
}

func (b *Backend) state() (*state, error) {
	st := b.st.Load()
	if st == nil {
		return nil, core.Errorf(core.CodeUnavailable, "totp: engine is not set up")
	}
	return st, nil
}

func (b *Backend) random() io.Reader {
	if b.rand != nil {
		return b.rand
	}
	return rand.Reader
}

func (b *Backend) handler(f func(ctx context.Context, st *state, req *core.Request, d *framework.FieldData) (*core.Response, error)) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		st, err := b.state()
		if err != nil {
			return nil, err
		}
		return f(ctx, st, req, d)
	}
}
