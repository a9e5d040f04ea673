package kv

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// upgradingMessage is Vault's answer while a mount's data is being upgraded.
const upgradingMessage = "Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly."

// v1Routes is KV version 1: one catch-all path whose data is the whole JSON
// body written.
func (b *Backend) v1Routes() []framework.Route {
	return []framework.Route{b.taggedKeysRoute(), {
		Pattern: framework.MatchAllRegex("path"),
		Fields:  map[string]*framework.FieldSchema{"path": pathField()},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.v1Read,
			core.OpUpdate: b.v1Write,
			core.OpDelete: b.v1Delete,
			core.OpList:   b.v1List,
		},
		ExistenceCheck: b.v1Exists,
		// Reading and listing change nothing.
		SideEffectFree: []core.Operation{core.OpRead, core.OpList},
		Help:           "Pass-through secret storage: read and write arbitrary JSON objects.",
	}}
}

// v1State returns the Setup state with the upgrade gate held shared; the
// caller must call release. It fails with CodeUnavailable once the data has
// been upgraded to version 2 and the engine awaits its version 2 Setup.
func (b *Backend) v1State() (st *state, release func(), err error) {
	st, err = b.state()
	if err != nil {
		return nil, nil, err
	}
	b.gate.RLock()
	if b.upgraded.Load() {
		b.gate.RUnlock()
		return nil, nil, core.Errorf(core.CodeUnavailable, "%s", upgradingMessage)
	}
	return st, b.gate.RUnlock, nil
}

func (b *Backend) v1Exists(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
	st, release, err := b.v1State()
	if err != nil {
		return false, err
	}
	defer release()
	path := d.String("path")
	if checkPath(path) != nil {
		return false, nil
	}
	raw, err := st.storage.Get(ctx, v1Prefix+path)
	if err != nil {
		return false, fmt.Errorf("kv: existence check: %w", err)
	}
	return raw != nil, nil
}

// v1Read returns the object stored at the path. When it has a "ttl" (or
// "lease") member that parses as a duration, the response carries a
// non-renewable Secret with that TTL and no lease ID, which the HTTP layer
// reports as lease_duration: a refresh hint, as in Vault. No lease is
// registered for it.
func (b *Backend) v1Read(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, release, err := b.v1State()
	if err != nil {
		return nil, err
	}
	defer release()
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	raw, err := st.storage.Get(ctx, v1Prefix+path)
	if err != nil {
		return nil, fmt.Errorf("kv: read: %w", err)
	}
	if raw == nil {
		return nil, core.ErrNotFound
	}
	data, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	resp := &core.Response{Data: data}
	ttl, ok := data["ttl"]
	if !ok {
		ttl, ok = data["lease"]
	}
	if ok {
		if dur, err := framework.ParseDuration(ttl); err == nil && dur >= 0 {
			resp.Secret = &core.Secret{TTL: dur, Renewable: false, NoLease: true}
		}
	}
	return resp, nil
}

// v1Write stores the request body, which must not be empty, at the path.
func (b *Backend) v1Write(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, release, err := b.v1State()
	if err != nil {
		return nil, err
	}
	defer release()
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if len(req.Data) == 0 {
		return nil, core.Invalid("missing data fields")
	}
	raw, err := json.Marshal(req.Data)
	if err != nil {
		return nil, core.Invalid("data cannot be encoded as JSON: %v", err)
	}
	if err := st.storage.Put(ctx, v1Prefix+path, raw); err != nil {
		return nil, fmt.Errorf("kv: write: %w", err)
	}
	return nil, nil
}

// v1Delete removes the path; deleting a missing path is not an error.
func (b *Backend) v1Delete(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, release, err := b.v1State()
	if err != nil {
		return nil, err
	}
	defer release()
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := st.storage.Delete(ctx, v1Prefix+path); err != nil {
		return nil, fmt.Errorf("kv: delete: %w", err)
	}
	return nil, nil
}

// v1List lists keys and folders (with a trailing "/") under the path;
// nothing there is a 404.
func (b *Backend) v1List(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, release, err := b.v1State()
	if err != nil {
		return nil, err
	}
	defer release()
	prefix, err := listPrefix(d.String("path"))
	if err != nil {
		return nil, err
	}
	keys, err := st.storage.List(ctx, v1Prefix+prefix)
	if err != nil {
		return nil, fmt.Errorf("kv: list: %w", err)
	}
	return listResponse(keys)
}
