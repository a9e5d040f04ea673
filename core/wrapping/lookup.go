package wrapping

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/cubbyhole"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/token"
)

// lookup answers sys/wrapping/lookup: a wrapping token's creation path,
// time and TTL, without spending it. Like Vault it needs no
// authentication: the token is given in the body or as the client token.
func (s *Service) lookup(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	tok := d.String("token")
	if tok == "" {
		tok = req.ClientToken
	}
	if tok == "" {
		return nil, core.Invalid("missing \"token\" value in input")
	}
	e, err := s.cfg.Tokens.Lookup(ctx, tok)
	if err != nil {
		return nil, err
	}
	if e == nil || !e.IsWrapping() || !token.InNamespace(e, req.NS()) {
		return nil, ErrInvalidToken
	}
	var rec wrapRecord
	ok, err := s.load(ctx, e.Hash, cubbyhole.WrapInfoKey, &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrInvalidToken
	}
	return &core.Response{Data: map[string]any{
		"creation_path": rec.CreationPath,
		"creation_time": rec.CreationTime.UTC().Format(time.RFC3339Nano),
		"creation_ttl":  rec.CreationTTL,
	}}, nil
}
