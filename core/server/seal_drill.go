package server

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/seal/custody"
)

// drillRoutes are the key-custody drills:
//
//	PUT sys/key-drill/start    {ttl}   open a drill (sudo)
//	PUT sys/key-drill/submit   {key}   one holder proves one share (no token)
//	GET sys/key-drill                  the open drill
//	PUT sys/key-drill/finish           close it (sudo)
//	GET sys/key-drill/history          every drill and the latest proof of each share
//
// A submitted share is checked against its own commitment only — the key is
// never reconstructed — and the audit log records which share number (and
// holder) proved possession, when and from where; never the share.
func (p sealPart) drillRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: `key-drill/start`, Sudo: true, Fields: map[string]*framework.FieldSchema{"ttl": {Type: framework.TypeDurationSecond}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: p.drillStart}, Help: "Open a key-custody drill."},
		{Pattern: `key-drill/submit`, Unauthenticated: true,
			Fields:     map[string]*framework.FieldSchema{"key": {Type: framework.TypeString, Withheld: true}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: p.drillSubmit}, Help: "Prove possession of one key share."},
		{Pattern: `key-drill/?`, Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: p.drillCurrent}, Help: "The open key-custody drill."},
		{Pattern: `key-drill/finish`, Sudo: true, Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: p.drillFinish}, Help: "Close the open drill."},
		{Pattern: `key-drill/history`, Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: p.drillHistory}, Help: "Every drill, and when each share was last proven."},
	}
}

func (s *Server) drills() custody.Drills { return custody.Drills{St: s.barrier, Now: s.now} }

// currentShareSet loads the commitments of the current held key.
func (s *Server) currentShareSet(ctx context.Context) (*custody.ShareSet, error) {
	cfg, err := s.seal.Config(ctx)
	if err != nil {
		return nil, err
	}
	set, err := custody.Get(ctx, s.barrier, cfg.ShareSet)
	if err != nil {
		return nil, err
	}
	if cfg.Recovery() {
		set.Kind = custody.KindRecovery
	} else {
		set.Kind = custody.KindUnseal
	}
	return set, nil
}

// KeyCustody returns the drill evidence for the current key (compliance
// checks and reports).
func (s *Server) KeyCustody(ctx context.Context) (*custody.Evidence, error) {
	set, err := s.currentShareSet(ctx)
	if err != nil && !errors.Is(err, custody.ErrNoShareSet) {
		return nil, err
	}
	return s.drills().Gather(ctx, set)
}

func dataOf(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func drillResponse(d *custody.Drill, extra map[string]any) (*core.Response, error) {
	m, err := dataOf(d)
	if err != nil {
		return nil, err
	}
	m["proven"] = len(d.Proofs)
	for k, v := range extra {
		m[k] = v
	}
	return &core.Response{Data: m}, nil
}

func (p sealPart) drillStart(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	set, err := p.s.currentShareSet(ctx)
	if err != nil {
		return nil, err
	}
	by := ""
	if req.Principal != nil {
		by = req.Principal.DisplayName
	}
	p.s.ops.mu.Lock()
	defer p.s.ops.mu.Unlock()
	dr, err := p.s.drills().Start(ctx, set, by, time.Duration(d.Int("ttl"))*time.Second)
	if err != nil {
		return nil, err
	}
	return drillResponse(dr, nil)
}

func (p sealPart) drillSubmit(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	key, err := shareKey(d)
	if err != nil {
		return nil, err
	}
	share, err := p.s.decodeHeld(ctx, key)
	if err != nil {
		return nil, err
	}
	defer clear(share)
	set, err := p.s.currentShareSet(ctx)
	if err != nil {
		return nil, err
	}
	p.s.ops.mu.Lock()
	defer p.s.ops.mu.Unlock()
	dr, proof, err := p.s.drills().Submit(ctx, set, share, req.RemoteAddr)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"drill_id": dr.ID, "proven_at": proof.At, "proven": len(dr.Proofs), "threshold": dr.Threshold, "shares": dr.Shares}
	addShareInfo(data, custody.Commitment{Number: proof.Number, Holder: proof.Holder}, true)
	return &core.Response{Data: data}, nil
}

func (p sealPart) drillCurrent(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	dr, err := p.s.drills().Current(ctx)
	if err != nil {
		if errors.Is(err, custody.ErrNoDrill) {
			return nil, core.Errorf(core.CodeNotFound, "%s", custody.ErrNoDrill.Msg)
		}
		return nil, err
	}
	return drillResponse(dr, nil)
}

func (p sealPart) drillFinish(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	p.s.ops.mu.Lock()
	defer p.s.ops.mu.Unlock()
	dr, err := p.s.drills().Finish(ctx)
	if err != nil {
		return nil, err
	}
	return drillResponse(dr, map[string]any{"threshold_met": len(dr.Proofs) >= dr.Threshold})
}

func (p sealPart) drillHistory(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	ev, err := p.s.KeyCustody(ctx)
	if err != nil {
		return nil, err
	}
	m, err := dataOf(ev)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: m}, nil
}
