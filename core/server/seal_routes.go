package server

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sync"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/seal/custody"
)

// sealPart adds the seal's sys/ routes beyond Vault's unaudited lifecycle
// ones: seal backend health, rekey, root-token generation and key-custody
// drills (seal_rekey.go, seal_generate_root.go, seal_drill.go).
type sealPart struct{ s *Server }

var _ framework.Part = sealPart{}

// sealOps is the state of the share rounds the server runs itself.
type sealOps struct {
	mu      sync.Mutex // serialises root generation and drills
	genRoot *genRootOp
}

func (p sealPart) Routes() []framework.Route {
	rs := []framework.Route{
		{Pattern: `seal-backend-status`, SealedOK: true, Unauthenticated: true,
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: p.backendStatus},
			Help:       "Health of the configured seal backends (KMS, HSM, transit server)."},
	}
	rs = append(rs, framework.Route{Pattern: `seal-migration`, Fields: map[string]*framework.FieldSchema{
		"from": {Type: framework.TypeString}, "to": {Type: framework.TypeString}},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: p.migrationRecord},
		Help:       "Internal: the audit record of a completed seal migration."})
	rs = append(rs, p.rekeyRoutes()...)
	rs = append(rs, p.generateRootRoutes()...)
	rs = append(rs, p.drillRoutes()...)
	return rs
}

func (p sealPart) backendStatus(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	bs := p.s.SealBackends(ctx)
	healthy := true
	var since any
	backends := make([]any, 0, len(bs))
	for _, b := range bs {
		m := map[string]any{"name": b.Name, "healthy": b.Healthy}
		if !b.LastCheck.IsZero() {
			m["last_seen"] = b.LastCheck
		}
		if !b.Healthy {
			healthy = false
			m["unhealthy_since"], m["error"] = b.UnhealthySince, b.Error
			if since == nil {
				since = b.UnhealthySince
			}
		}
		backends = append(backends, m)
	}
	data := map[string]any{"healthy": healthy, "backends": backends}
	if since != nil {
		data["unhealthy_since"] = since
	}
	return &core.Response{Bare: true, Data: data}, nil
}

// migrationRecord answers the internal request that puts a completed seal
// migration in the audit trail (sys/unseal itself is unaudited, as in
// Vault, and runs while the audit devices are closed).
func (p sealPart) migrationRecord(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	if !req.Internal {
		return nil, core.ErrPermissionDenied
	}
	cfg, err := p.s.seal.Config(ctx)
	if err != nil {
		return nil, err
	}
	n, t := cfg.Held()
	return &core.Response{Data: map[string]any{"from": d.String("from"), "to": d.String("to"), "migrated_at": cfg.MigratedAt,
		"recovery_seal": cfg.Recovery(), "shares": n, "threshold": t}}, nil
}

// recordMigration audits a completed seal migration through the Dispatcher.
func (s *Server) recordMigration(ctx context.Context, from, to string) {
	_, err := s.dispatcher.Handle(ctx, &core.Request{Internal: true, InternalActor: "seal-migration", Operation: core.OpUpdate,
		Path: "sys/seal-migration", Data: map[string]any{"from": from, "to": to}})
	if err != nil {
		s.log.Error("seal migration: the audit record could not be written", "from", from, "to", to, "error", err)
	}
}

// shareKey returns the withheld "key" field.
func shareKey(d *framework.FieldData) (string, error) {
	k := d.String("key")
	if k == "" {
		return "", core.Invalid("'key' must be specified in request body as JSON")
	}
	return k, nil
}

// identify names the holder of a held share from the custody commitments,
// without combining it with anything. ok is false when no commitments are
// recorded; a share matching none is ErrNoMatch.
func (s *Server) identify(ctx context.Context, share []byte) (custody.Commitment, bool, error) {
	cfg, err := s.seal.Config(ctx)
	if err != nil {
		return custody.Commitment{}, false, err
	}
	set, err := custody.Get(ctx, s.barrier, cfg.ShareSet)
	if err == custody.ErrNoShareSet {
		return custody.Commitment{}, false, nil
	}
	if err != nil {
		return custody.Commitment{}, false, err
	}
	c, err := set.Verify(share)
	return c, err == nil, err
}

// AuditClearKeys are the sys/ response keys the audit log keeps in clear
// (not HMAC'd): which share, and whose, was supplied — never its value —
// the seal types of a migration, and which snapshot a restore installed
// (its SHA-256 and size).
var AuditClearKeys = []string{"share_holder", "from", "to", "snapshot"}

// addShareInfo adds the audited description of a supplied share to data:
// share_identified, share_number and share_holder, never its value.
func addShareInfo(data map[string]any, c custody.Commitment, ok bool) {
	data["share_identified"] = ok
	if !ok {
		return
	}
	data["share_number"] = c.Number
	if c.Holder != "" {
		data["share_holder"] = c.Holder
	}
}

// rawJSON sends body to the client while the audited response data is
// summary: share values in body never reach the audit log, which records
// only Data and the raw body's size.
func rawJSON(summary, body map[string]any) (*core.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "encode response: %v", err)
	}
	return &core.Response{Data: summary, Raw: &core.RawBody{ContentType: "application/json", Body: b}}, nil
}

func encodeShares(keys [][]byte) (hexKeys, b64Keys []string) {
	hexKeys, b64Keys = make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		hexKeys[i] = hex.EncodeToString(k)
		b64Keys[i] = base64.StdEncoding.EncodeToString(k)
	}
	return hexKeys, b64Keys
}

// decodeHeld decodes a held share for the current key.
func (s *Server) decodeHeld(ctx context.Context, key string) ([]byte, error) {
	return s.seal.DecodeShare(ctx, key)
}

var _ = seal.Type
