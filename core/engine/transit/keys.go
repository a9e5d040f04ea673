package transit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// createOptions are the settings fixed when a key is created.
type createOptions struct {
	derived, convergent, exportable, allowPlaintextBackup bool
	autoRotatePeriod                                      time.Duration
	keySize                                               int
}

// check validates o for key type t, with Vault's messages.
func (o createOptions) check(t keyType) error {
	switch {
	case o.convergent && !o.derived:
		return core.Invalid("convergent encryption requires derivation to be enabled")
	case o.derived && !t.derivation():
		return core.Invalid("key derivation and convergent encryption not supported for keys of type %s", t)
	case o.convergent && !t.aead():
		return core.Invalid("convergent encryption not supported for keys of type %s", t)
	case o.keySize != 0 && t != typeHMAC:
		return core.Invalid("key_size is not valid for algorithm %s", t)
	case o.keySize != 0 && (o.keySize < hmacKeyMin || o.keySize > hmacKeyMax):
		return core.Invalid("invalid key_size %d: must be between %d and %d bytes", o.keySize, hmacKeyMin, hmacKeyMax)
	}
	return checkRotatePeriod(o.autoRotatePeriod)
}

// checkRotatePeriod enforces Vault's rule: 0 (never) or at least an hour.
func checkRotatePeriod(d time.Duration) error {
	if d != 0 && d < time.Hour {
		return core.Invalid("auto rotate period must be 0 to disable or at least an hour")
	}
	return nil
}

func (b *Backend) keysListRoute() framework.Route {
	return framework.Route{
		Pattern:    "keys/?",
		Operations: map[core.Operation]framework.HandlerFunc{core.OpList: b.listKeys},
		Help:       "List the named keys.",
	}
}

func (b *Backend) keysRoute() framework.Route {
	return framework.Route{
		Pattern: "keys/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name":                   nameField(),
			"type":                   {Type: framework.TypeString, Default: string(defaultType), Description: "Key type: " + strings.Join(keyTypeNames(), ", ") + "."},
			"derived":                {Type: framework.TypeBool, Description: "Derive a key per request from a required context."},
			"convergent_encryption":  {Type: framework.TypeBool, Description: "Deterministic encryption for a given plaintext and context; requires derived."},
			"exportable":             {Type: framework.TypeBool, Description: "Allow the key material to be exported. Cannot be unset."},
			"allow_plaintext_backup": {Type: framework.TypeBool, Description: "Allow a plaintext backup of the key. Cannot be unset."},
			"auto_rotate_period":     {Type: framework.TypeDurationSecond, Description: "Rotate the key automatically after this long (0 disables; at least 1h)."},
			"key_size":               {Type: framework.TypeInt, Description: "Key size in bytes for hmac keys (32 to 512, default 32)."},
			"context":                {Type: framework.TypeString, Description: "Base64 context; reading a derived ed25519 key returns the public keys derived with it."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.readKey,
			core.OpUpdate: b.createKey,
			core.OpDelete: b.deleteKey,
		},
		Help: "Create, read and delete a named key.",
	}
}

// listKeys answers Vault's list shape; no keys is a 404.
func (b *Backend) listKeys(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	names, err := st.storage.List(ctx, policyPrefix)
	if err != nil {
		return nil, fmt.Errorf("transit: list keys: %w", err)
	}
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if !strings.HasSuffix(n, "/") {
			keys = append(keys, n)
		}
	}
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

// readKey returns the key in Vault's shape, or a 404.
func (b *Backend) readKey(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	p, err := b.load(ctx, st, d.String("name"))
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, core.ErrNotFound
	}
	var keyCtx []byte
	if c := d.String("context"); c != "" {
		if keyCtx, err = decode64(c, "context"); err != nil {
			return nil, err
		}
	}
	data, err := p.format(keyCtx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: data}, nil
}

// createKey creates the key if it does not exist (Vault's upsert) and
// returns it; an existing key is returned unchanged with a warning.
func (b *Backend) createKey(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	typeName := d.String("type")
	t, ok := parseKeyType(typeName)
	if !ok {
		return nil, core.Invalid("unknown key type %s", typeName)
	}
	o := createOptions{
		derived: d.Bool("derived"), convergent: d.Bool("convergent_encryption"),
		exportable: d.Bool("exportable"), allowPlaintextBackup: d.Bool("allow_plaintext_backup"),
		autoRotatePeriod: d.Duration("auto_rotate_period"), keySize: d.Int("key_size"),
	}
	if err := o.check(t); err != nil {
		return nil, err
	}
	name := d.String("name")
	p, created, err := b.upsert(ctx, st, name, t, o)
	if err != nil {
		return nil, err
	}
	data, err := p.format(nil)
	if err != nil {
		return nil, err
	}
	resp := &core.Response{Data: data}
	if !created {
		resp.AddWarning(fmt.Sprintf("key %s already existed", name))
	}
	return resp, nil
}

// upsert returns the named key, creating it with t and o when missing.
func (b *Backend) upsert(ctx context.Context, st *state, name string, t keyType, o createOptions) (*policy, bool, error) {
	mu := b.lock(name)
	mu.Lock()
	defer mu.Unlock()
	p, err := b.loadFresh(ctx, st, name)
	if err != nil || p != nil {
		return p, false, err
	}
	if p, err = newPolicy(name, t, o, st.now(), b.randReader()); err != nil {
		return nil, false, err
	}
	if err := b.store(ctx, st, p); err != nil {
		return nil, false, err
	}
	return p, true, nil
}

// deleteKey deletes a key whose deletion_allowed is set.
func (b *Backend) deleteKey(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	mu := b.lock(name)
	mu.Lock()
	defer mu.Unlock()
	p, err := b.loadFresh(ctx, st, name)
	switch {
	case err != nil:
		return nil, err
	case p == nil:
		return nil, core.Invalid("error deleting policy %s: could not delete key; not found", name)
	case !p.DeletionAllowed:
		return nil, core.Invalid("error deleting policy %s: deletion is not allowed for this key; set deletion_allowed with keys/%s/config first", name, name)
	}
	if err := st.storage.Delete(ctx, policyPrefix+name); err != nil {
		return nil, fmt.Errorf("transit: delete key %q: %w", name, err)
	}
	b.cache.Delete(name)
	return nil, nil
}
