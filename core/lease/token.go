package lease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// registerToken creates the lease of a token issued by an auth mount (a
// login's, or one from auth/token/create), as Vault does: its ID is the
// request path, "/h" and a digest of the token's hash, so that
// sys/leases/lookup, revoke, revoke-prefix and revoke-force reach login
// tokens by path. Batch tokens and tokens that never expire get none.
func (m *Manager) registerToken(ctx context.Context, req *core.Request, a *core.Auth) error {
	if m.cfg.Tokens == nil || a.ClientToken == "" || req.Internal || req.Mount == nil || req.Mount.Class != "auth" || a.TokenType == "batch" {
		return nil
	}
	if req.Mount.Type == "token" && !strings.HasPrefix(req.Path, "auth/token/create") {
		return nil // renewals and lookups answer with an Auth too; only creations get a lease
	}
	h := tokenHash(a.ClientToken)
	exp, renewable, ok, err := m.cfg.Tokens.TokenExpiry(ctx, h)
	if err != nil {
		return fmt.Errorf("lease: token: %w", err)
	}
	if !ok || exp.IsZero() {
		return nil
	}
	sum := sha256.Sum256([]byte("token-lease:" + h))
	now := m.cfg.Now().UTC()
	full := req.FullPath()
	e := &Entry{LeaseID: strings.TrimSuffix(full, "/") + "/h" + hex.EncodeToString(sum[:]), Path: full,
		MountPath: req.Mount.Path, TokenHash: h, Token: true, Renewable: renewable, TTL: exp.Sub(now),
		IssueTime: now, ExpireTime: exp.UTC(), NamespaceID: nsID(req.NS())}
	b, err := jsonMarshal(e)
	if err != nil {
		return err
	}
	if err := storage.Txn(ctx, m.cfg.Storage, []storage.TxnOp{
		{Kind: storage.OpPut, Key: leaseKey(e.LeaseID), Value: b},
		{Kind: storage.OpPut, Key: tokenKey(h, e.LeaseID), Value: []byte(e.LeaseID)},
	}); err != nil {
		return fmt.Errorf("lease: store: %w", err)
	}
	m.schedule(e.LeaseID, e.ExpireTime)
	return nil
}

// followToken brings a token lease's expiry in line with its token, which
// may have been renewed (auth/token/renew*) since the lease was written. A
// token that is gone leaves the expiry as it was: the lease is due.
func (m *Manager) followToken(ctx context.Context, e *Entry) error {
	if m.cfg.Tokens == nil {
		return nil
	}
	exp, renewable, ok, err := m.cfg.Tokens.TokenExpiry(ctx, e.TokenHash)
	if err != nil || !ok || exp.IsZero() {
		return err
	}
	if exp.Equal(e.ExpireTime) && renewable == e.Renewable {
		return nil
	}
	if exp.After(e.ExpireTime) {
		e.LastRenewal = m.cfg.Now().UTC()
	}
	e.ExpireTime, e.Renewable = exp.UTC(), renewable
	e.TTL = exp.Sub(e.IssueTime)
	return m.put(ctx, e)
}
