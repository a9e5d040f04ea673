package approle

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// secretID is a stored secret ID. The raw value is never stored: it is
// found by its HMAC (HashedID, also its storage key).
type secretID struct {
	Accessor    string            `json:"accessor"`
	Created     time.Time         `json:"created"`
	LastUpdated time.Time         `json:"last_updated,omitempty"`
	Expires     time.Time         `json:"expires,omitempty"`
	TTL         time.Duration     `json:"ttl,omitempty"`
	NumUses     int               `json:"num_uses"` // remaining; 0 = unlimited
	Metadata    map[string]string `json:"metadata,omitempty"`
	HashedID    string            `json:"hashed_id"`
	// CIDRList are the addresses this secret ID may log in from;
	// TokenBoundCIDRs, when set, replace the role's token_bound_cidrs for
	// the tokens it obtains. Both lie within the role's own blocks.
	CIDRList        []string `json:"cidr_list,omitempty"`
	TokenBoundCIDRs []string `json:"token_bound_cidrs,omitempty"`
}

// secretIDFields are the parameters of secret-id (and, with custom,
// custom-secret-id).
func secretIDFields(custom bool) map[string]*framework.FieldSchema {
	f := map[string]*framework.FieldSchema{
		"metadata":          {Type: framework.TypeString},
		"cidr_list":         {Type: framework.TypeCommaStringSlice},
		"token_bound_cidrs": {Type: framework.TypeCommaStringSlice},
		"num_uses":          {Type: framework.TypeInt},
		"ttl":               {Type: framework.TypeDurationSecond},
	}
	if custom {
		f["secret_id"] = &framework.FieldSchema{Type: framework.TypeString}
	}
	return f
}

// newSecretID serves secret-id (a random secret ID) and, with custom,
// custom-secret-id (the caller's). num_uses and ttl may narrow the role's
// limits, never widen them; cidr_list and token_bound_cidrs must lie within
// the role's secret_id_bound_cidrs and token_bound_cidrs.
func (b *Backend) newSecretID(custom bool) framework.HandlerFunc {
	return func(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
		name := d.String("role_name")
		r, err := b.getRole(ctx, name)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, core.Invalid("role %q does not exist", name)
		}
		if !r.BindSecretID {
			return nil, core.Invalid("bind_secret_id is not set on the role")
		}
		raw := uuid.NewString()
		if custom {
			raw = d.String("secret_id")
			if raw == "" {
				return nil, core.Invalid("missing secret_id")
			}
		}
		s := &secretID{Accessor: uuid.NewString(), NumUses: r.SecretIDNumUses, TTL: r.SecretIDTTL, HashedID: hashID("secret", raw)}
		if d.Has("num_uses") {
			n := d.Int("num_uses")
			switch {
			case n < 0:
				return nil, core.Invalid("num_uses cannot be negative")
			case r.SecretIDNumUses > 0 && (n == 0 || n > r.SecretIDNumUses):
				return nil, core.Invalid("num_uses cannot be higher than the role's secret_id_num_uses")
			}
			s.NumUses = n
		}
		if d.Has("ttl") {
			t := d.Duration("ttl")
			if r.SecretIDTTL > 0 && (t == 0 || t > r.SecretIDTTL) {
				return nil, core.Invalid("ttl cannot be longer than the role's secret_id_ttl")
			}
			s.TTL = t
		}
		if s.CIDRList, err = tokenutil.ParseCIDRs("cidr_list", d.Strings("cidr_list")); err != nil {
			return nil, err
		}
		if !tokenutil.SubsetCIDRs(s.CIDRList, r.SecretIDBoundCIDRs) {
			return nil, core.Invalid("cidr_list %q must lie within the role's secret_id_bound_cidrs %q", s.CIDRList, r.SecretIDBoundCIDRs)
		}
		if s.TokenBoundCIDRs, err = tokenutil.ParseCIDRs("token_bound_cidrs", d.Strings("token_bound_cidrs")); err != nil {
			return nil, err
		}
		if !tokenutil.SubsetCIDRs(s.TokenBoundCIDRs, r.BoundCIDRs) {
			return nil, core.Invalid("token_bound_cidrs %q must lie within the role's token_bound_cidrs %q", s.TokenBoundCIDRs, r.BoundCIDRs)
		}
		if m := d.String("metadata"); m != "" {
			var md map[string]string
			if err := jsonUnmarshal([]byte(m), &md); err != nil {
				return nil, core.Invalid("metadata must be a JSON object of strings: %v", err)
			}
			s.Metadata = md
		}
		now := b.env.Now().UTC()
		s.Created, s.LastUpdated = now, now
		if s.TTL > 0 {
			s.Expires = now.Add(s.TTL)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		key := secretKey(name, s.HashedID)
		if existing, err := b.env.Storage.Get(ctx, key); err != nil {
			return nil, err
		} else if existing != nil {
			return nil, core.Invalid("SecretID is already registered")
		}
		if err := storage.PutJSON(ctx, b.env.Storage, key, s); err != nil {
			return nil, err
		}
		return &core.Response{Data: map[string]any{"secret_id": raw, "secret_id_accessor": s.Accessor,
			"secret_id_ttl": int64(s.TTL / time.Second), "secret_id_num_uses": s.NumUses}}, nil
	}
}

// roleSecretIDs returns the stored secret IDs of a role.
func (b *Backend) roleSecretIDs(ctx context.Context, roleName string) ([]*secretID, error) {
	keys, err := b.env.Storage.List(ctx, "secret_id/"+strings.ToLower(roleName)+"/")
	if err != nil {
		return nil, err
	}
	var out []*secretID
	for _, k := range keys {
		var s secretID
		ok, err := storage.GetJSON(ctx, b.env.Storage, secretKey(roleName, k), &s)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, &s)
		}
	}
	return out, nil
}

func (b *Backend) listSecretIDs(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	sids, err := b.roleSecretIDs(ctx, d.String("role_name"))
	if err != nil {
		return nil, err
	}
	var accs []string
	for _, s := range sids {
		accs = append(accs, s.Accessor)
	}
	if len(accs) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": accs}}, nil
}

// secretIDData is a secret ID's description in Vault's shape.
func secretIDData(s *secretID) map[string]any {
	exp := any(nil)
	if !s.Expires.IsZero() {
		exp = s.Expires.Format(time.RFC3339Nano)
	}
	upd := s.LastUpdated
	if upd.IsZero() {
		upd = s.Created
	}
	nonNil := func(ss []string) []string {
		if ss == nil {
			return []string{}
		}
		return ss
	}
	return map[string]any{"secret_id_accessor": s.Accessor, "creation_time": s.Created.Format(time.RFC3339Nano),
		"last_updated_time": upd.Format(time.RFC3339Nano), "expiration_time": exp, "secret_id_num_uses": s.NumUses,
		"secret_id_ttl": int64(s.TTL / time.Second), "metadata": s.Metadata,
		"cidr_list": nonNil(s.CIDRList), "token_bound_cidrs": nonNil(s.TokenBoundCIDRs)}
}

// lookupSecretID describes a secret ID; an unknown one answers 204, as in
// Vault.
func (b *Backend) lookupSecretID(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	if d.String("secret_id") == "" {
		return nil, core.Invalid("missing secret_id")
	}
	var s secretID
	ok, err := storage.GetJSON(ctx, b.env.Storage, secretKey(d.String("role_name"), hashID("secret", d.String("secret_id"))), &s)
	if err != nil || !ok {
		return nil, err
	}
	return &core.Response{Data: secretIDData(&s)}, nil
}

func (b *Backend) destroySecretID(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	if d.String("secret_id") == "" {
		return nil, core.Invalid("missing secret_id")
	}
	return nil, b.env.Storage.Delete(ctx, secretKey(d.String("role_name"), hashID("secret", d.String("secret_id"))))
}

// byAccessor finds a role's secret ID by its accessor (CodeNotFound when
// none has it).
func (b *Backend) byAccessor(ctx context.Context, d *framework.FieldData) (*secretID, error) {
	acc := d.String("secret_id_accessor")
	if acc == "" {
		return nil, core.Invalid("missing secret_id_accessor")
	}
	sids, err := b.roleSecretIDs(ctx, d.String("role_name"))
	if err != nil {
		return nil, err
	}
	for _, s := range sids {
		if s.Accessor == acc {
			return s, nil
		}
	}
	return nil, core.Errorf(core.CodeNotFound, "failed to find accessor entry for secret_id_accessor: %q", acc)
}

// lookupAccessor serves secret-id-accessor/lookup.
func (b *Backend) lookupAccessor(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	s, err := b.byAccessor(ctx, d)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: secretIDData(s)}, nil
}

// destroyAccessor serves secret-id-accessor/destroy: the secret ID with
// that accessor stops working.
func (b *Backend) destroyAccessor(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, err := b.byAccessor(ctx, d)
	if err != nil {
		return nil, err
	}
	return nil, b.env.Storage.Delete(ctx, secretKey(d.String("role_name"), s.HashedID))
}
