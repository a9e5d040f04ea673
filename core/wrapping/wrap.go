package wrapping

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/cubbyhole"
	"github.com/vigilsec/vigil/core/token"
)

// wrapRecord is what a wrapping token's cubbyhole keeps under
// cubbyhole.WrapInfoKey: sys/wrapping/lookup's answer, and who wrapped
// what, for the labels of the unwrap's audit entries.
type wrapRecord struct {
	CreationTTL  int64     `json:"creation_ttl"` // seconds
	CreationTime time.Time `json:"creation_time"`
	CreationPath string    `json:"creation_path"`
	// RequestID is the id of the request whose response is wrapped (for a
	// control group, of the held request).
	RequestID string `json:"request_id"`
	// Actor and EntityID name who made that request.
	Actor    string `json:"actor,omitempty"`
	EntityID string `json:"entity_id,omitempty"`
}

// storedResponse is a wrapped response, kept under cubbyhole.ResponseKey.
type storedResponse struct {
	RequestID string         `json:"request_id"`
	Data      map[string]any `json:"data,omitempty"`
	Auth      *storedAuth    `json:"auth,omitempty"`
	Secret    *storedSecret  `json:"secret,omitempty"`
	Warnings  []string       `json:"warnings,omitempty"`
}

type storedAuth struct {
	ClientToken      string            `json:"client_token"`
	Accessor         string            `json:"accessor"`
	DisplayName      string            `json:"display_name,omitempty"`
	Policies         []string          `json:"policies"`
	TokenPolicies    []string          `json:"token_policies"`
	IdentityPolicies []string          `json:"identity_policies,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	TTL              int64             `json:"ttl"` // seconds
	Renewable        bool              `json:"renewable"`
	EntityID         string            `json:"entity_id,omitempty"`
	TokenType        string            `json:"token_type"`
	Orphan           bool              `json:"orphan"`
	NumUses          int               `json:"num_uses"`
}

type storedSecret struct {
	LeaseID   string `json:"lease_id"`
	TTL       int64  `json:"ttl"` // seconds
	Renewable bool   `json:"renewable"`
}

func storeResponse(reqID string, resp *core.Response) storedResponse {
	s := storedResponse{RequestID: reqID, Data: resp.Data, Warnings: resp.Warnings}
	if a := resp.Auth; a != nil {
		s.Auth = &storedAuth{ClientToken: a.ClientToken, Accessor: a.Accessor, DisplayName: a.DisplayName, Policies: a.Policies,
			TokenPolicies: a.TokenPolicies, IdentityPolicies: a.IdentityPolicies, Metadata: a.Metadata, TTL: int64(a.TTL / time.Second),
			Renewable: a.Renewable, EntityID: a.EntityID, TokenType: a.TokenType, Orphan: a.Orphan, NumUses: a.NumUses}
	}
	if sec := resp.Secret; sec != nil && !sec.NoLease {
		s.Secret = &storedSecret{LeaseID: sec.LeaseID, TTL: int64(sec.TTL / time.Second), Renewable: sec.Renewable}
	} else if sec != nil {
		s.Secret = &storedSecret{TTL: int64(sec.TTL / time.Second)}
	}
	return s
}

// restore turns a stored response back into the response an unwrap
// answers. It is Restored: its token and lease exist already.
func (s storedResponse) restore() *core.Response {
	resp := &core.Response{Data: s.Data, Warnings: s.Warnings, Restored: true}
	if a := s.Auth; a != nil {
		resp.Auth = &core.Auth{ClientToken: a.ClientToken, Accessor: a.Accessor, DisplayName: a.DisplayName, Policies: a.Policies,
			TokenPolicies: a.TokenPolicies, IdentityPolicies: a.IdentityPolicies, Metadata: a.Metadata, TTL: time.Duration(a.TTL) * time.Second,
			Renewable: a.Renewable, EntityID: a.EntityID, TokenType: a.TokenType, Orphan: a.Orphan, NumUses: a.NumUses}
	}
	if sec := s.Secret; sec != nil {
		resp.Secret = &core.Secret{LeaseID: sec.LeaseID, TTL: time.Duration(sec.TTL) * time.Second, Renewable: sec.Renewable, NoLease: sec.LeaseID == ""}
	}
	return resp
}

// Wrap implements core.ResponseWrapper: it keeps resp in a new wrapping
// token's cubbyhole and answers its wrap_info. A nil response (204) is not
// wrapped, nor is one that is wrapped already. Raw and bare responses
// (snapshots, CRLs, sys/health) cannot be wrapped: that is an error rather
// than an unwrapped answer, since the client asked for the data not to
// travel in clear. The TTL is capped at the token store's maximum (with a
// warning).
func (s *Service) Wrap(ctx context.Context, req *core.Request, resp *core.Response) (*core.Response, error) {
	if resp == nil || resp.WrapInfo != nil {
		return resp, nil
	}
	if resp.Raw != nil || resp.Bare {
		return nil, core.Invalid("the response of %s cannot be wrapped", req.Path)
	}
	ttl := req.WrapTTL
	var warnings []string
	if _, max := s.cfg.Tokens.Limits(); max > 0 && ttl > max {
		warnings = append(warnings, fmt.Sprintf("wrap TTL of %s exceeded the maximum token TTL of %s; it is capped accordingly", ttl, max))
		ttl = max
	}
	rec := wrapRecord{CreationTTL: int64(ttl / time.Second), CreationPath: req.Path, RequestID: req.ID}
	rec.Actor, rec.EntityID = req.ActorName(), ""
	if p := req.Principal; p != nil {
		rec.EntityID = p.EntityID
	}
	raw, e, err := s.newToken(ctx, req, rec.CreationPath, ttl)
	if err != nil {
		return nil, err
	}
	rec.CreationTime = e.CreationTime
	if err := s.keep(ctx, e, rec, storeResponse(req.ID, resp), nil); err != nil {
		return nil, err
	}
	info := &core.WrapInfo{Token: raw, Accessor: e.Accessor, TTL: int(ttl / time.Second), CreationTime: e.CreationTime, CreationPath: rec.CreationPath}
	switch {
	case resp.Auth != nil:
		info.WrappedAccessor = resp.Auth.Accessor
	case req.Mount != nil && req.Mount.Type == "approle":
		// AppRole secret-id generation: the secret ID's accessor, as in Vault.
		if acc, ok := resp.Data["secret_id_accessor"].(string); ok {
			info.WrappedAccessor = acc
		}
	}
	// The client gets WrapInfo (and warnings) only; Data, Auth and Secret
	// stay for the audit entry, which HMACs them as it does every response.
	return &core.Response{WrapInfo: info, Warnings: append(append([]string(nil), resp.Warnings...), warnings...),
		Data: resp.Data, Auth: resp.Auth, Secret: resp.Secret}, nil
}

// newToken creates a response-wrapping token: the one policy
// "response-wrapping", one use, no renewal, orphan, its creation path the
// wrapped request's path, its creator the caller.
func (s *Service) newToken(ctx context.Context, req *core.Request, path string, ttl time.Duration) (string, *token.Entry, error) {
	if ttl < time.Second {
		return "", nil, core.Invalid("wrap TTL must be at least one second")
	}
	p := token.CreateParams{
		Policies: []string{token.WrappingPolicy}, NoDefault: true, NumUses: 1, TTL: ttl, ExplicitMaxTTL: ttl,
		Orphan: true, Path: path, Type: "service",
	}
	if pr := req.Principal; pr != nil && pr.Accessor != "" {
		p.Creator = &token.Entry{Accessor: pr.Accessor, EntityID: pr.EntityID}
	}
	// The token belongs to the namespace the wrapped request was made in:
	// it is unwrapped there, and is unknown anywhere else.
	if ns := req.NS(); !ns.IsRoot() {
		p.Namespace = ns
	}
	raw, e, err := s.cfg.Tokens.Create(ctx, p)
	if err != nil {
		return "", nil, fmt.Errorf("wrapping: create the wrapping token: %w", err)
	}
	return raw, e, nil
}

// keep stores what a wrapping token holds; on failure the token is
// revoked, so a token never exists without its content.
func (s *Service) keep(ctx context.Context, e *token.Entry, rec wrapRecord, resp storedResponse, cg *cgRecord) error {
	put := func(key string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("wrapping: encode %s: %w", key, err)
		}
		return s.cfg.Cubbyholes.Put(ctx, e.Hash, key, b)
	}
	err := put(cubbyhole.WrapInfoKey, rec)
	if err == nil && cg == nil {
		err = put(cubbyhole.ResponseKey, resp)
	}
	if err == nil && cg != nil {
		err = put(controlGroupKey, cg)
	}
	if err != nil {
		if rerr := s.cfg.Tokens.Revoke(ctx, e.Hash); rerr != nil {
			s.cfg.Logger.Error("revoke a wrapping token whose content could not be stored", "error", rerr)
		}
		return fmt.Errorf("wrapping: store the wrapped response: %w", err)
	}
	return nil
}

// load decodes the JSON value at key of a wrapping token's cubbyhole into
// v; ok is false when there is none.
func (s *Service) load(ctx context.Context, tokenHash, key string, v any) (ok bool, err error) {
	b, err := s.cfg.Cubbyholes.Get(ctx, tokenHash, key)
	if err != nil || b == nil {
		return false, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return false, fmt.Errorf("wrapping: stored %s does not decode: %w", key, err)
	}
	return true, nil
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("wrapping: encode: %w", err)
	}
	return b, nil
}
