package httpapi

import (
	"encoding/json"
	"time"

	"github.com/vigilsec/vigil/core"
)

// ResponseEnvelope is Vault's JSON response body.
type ResponseEnvelope struct {
	RequestID     string         `json:"request_id"`
	LeaseID       string         `json:"lease_id"`
	Renewable     bool           `json:"renewable"`
	LeaseDuration int64          `json:"lease_duration"`
	Data          map[string]any `json:"data"`
	WrapInfo      *core.WrapInfo `json:"wrap_info"`
	Warnings      []string       `json:"warnings"`
	Auth          *AuthJSON      `json:"auth"`
	MountType     string         `json:"mount_type"`
}

// AuthJSON is Vault's "auth" block.
type AuthJSON struct {
	ClientToken      string            `json:"client_token"`
	Accessor         string            `json:"accessor"`
	Policies         []string          `json:"policies"`
	TokenPolicies    []string          `json:"token_policies"`
	IdentityPolicies []string          `json:"identity_policies,omitempty"`
	Metadata         map[string]string `json:"metadata"`
	LeaseDuration    int64             `json:"lease_duration"`
	Renewable        bool              `json:"renewable"`
	EntityID         string            `json:"entity_id"`
	TokenType        string            `json:"token_type"`
	Orphan           bool              `json:"orphan"`
	MFARequirement   any               `json:"mfa_requirement"`
	NumUses          int               `json:"num_uses"`
}

// AuthToJSON converts a core.Auth to Vault's JSON shape.
func AuthToJSON(a *core.Auth) *AuthJSON {
	if a == nil {
		return nil
	}
	return &AuthJSON{
		ClientToken: a.ClientToken, Accessor: a.Accessor, Policies: a.Policies, TokenPolicies: a.TokenPolicies,
		IdentityPolicies: a.IdentityPolicies, Metadata: a.Metadata, LeaseDuration: int64(a.TTL / time.Second), Renewable: a.Renewable,
		EntityID: a.EntityID, TokenType: a.TokenType, Orphan: a.Orphan, NumUses: a.NumUses,
	}
}

// Envelope builds the response body for resp.
func Envelope(req *core.Request, resp *core.Response) *ResponseEnvelope {
	env := &ResponseEnvelope{RequestID: req.ID, Data: resp.Data, WrapInfo: resp.WrapInfo, Warnings: resp.Warnings, Auth: AuthToJSON(resp.Auth)}
	if resp.Secret != nil {
		env.LeaseID = resp.Secret.LeaseID
		env.Renewable = resp.Secret.Renewable
		env.LeaseDuration = int64(resp.Secret.TTL / time.Second)
	}
	if req.Mount != nil && resp.WrapInfo == nil {
		env.MountType = req.Mount.Type
	}
	return env
}

// legacyBody is env with data's fields repeated at the top level (the
// envelope's own fields win a name clash), Vault's shape for its older sys/
// endpoints.
func legacyBody(env *ResponseEnvelope, data map[string]any) any {
	b, err := json.Marshal(env)
	if err != nil {
		return env
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(b, &out); err != nil {
		return env
	}
	for k, v := range data {
		if _, clash := out[k]; clash {
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return env
		}
		out[k] = raw
	}
	return out
}
