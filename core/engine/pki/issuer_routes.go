package pki

import (
	"context"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

func issuerRefField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeString, Default: defaultIssuerRef,
		Description: `Issuer reference: "default", an issuer id or an issuer name.`}
}

// issuersListRoute is LIST issuers (unauthenticated, as in Vault).
func (b *Backend) issuersListRoute() framework.Route {
	return framework.Route{
		Pattern:         `issuers/?`,
		Unauthenticated: true,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpList: b.handler(b.listIssuers),
		},
		Help: "List the mount's issuers.",
	}
}

func (b *Backend) listIssuers(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	all, err := st.listIssuers(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := st.getIssuersConfig(ctx)
	if err != nil {
		return nil, err
	}
	info := map[string]any{}
	for _, e := range all {
		info[e.ID] = map[string]any{"issuer_name": e.Name, "is_default": e.ID == cfg.Default,
			"serial_number": e.SerialNumber, "key_id": e.KeyID}
	}
	resp, err := listResponse(sortedIDs(all))
	if resp != nil {
		resp.Data["key_info"] = info
	}
	return resp, err
}

// issuerRoute is issuer/:issuer_ref: read, update (issuer_name,
// leaf_not_after_behavior) and delete.
func (b *Backend) issuerRoute() framework.Route {
	return framework.Route{
		Pattern: `issuer/` + framework.GenericNameRegex("issuer_ref"),
		Fields: map[string]*framework.FieldSchema{
			"issuer_ref":  issuerRefField(),
			"issuer_name": {Type: framework.TypeString, Description: "New name of the issuer."},
			"leaf_not_after_behavior": {Type: framework.TypeLowerCaseString, Description: "What to do when a certificate would outlive the issuer: err (default), truncate or permit.",
				AllowedValues: []any{leafNotAfterErr, leafNotAfterTrunc, leafNotAfterAllow}},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.handler(b.readIssuer),
			core.OpUpdate: b.handler(b.updateIssuer),
			core.OpDelete: b.handler(b.deleteIssuer),
		},
		Help: "Read, tune or delete one issuer.",
	}
}

func issuerData(e *issuerEntry) map[string]any {
	chain := append([]string(nil), e.CAChain...)
	if len(chain) == 0 {
		chain = []string{e.Certificate}
	}
	return map[string]any{
		"issuer_id": e.ID, "issuer_name": e.Name, "key_id": e.KeyID, "certificate": e.Certificate,
		"ca_chain": chain, "leaf_not_after_behavior": e.LeafNotAfterBehavior, "serial_number": e.SerialNumber,
		"usage": "read-only,issuing-certificates,crl-signing,ocsp-signing", "manual_chain": nil,
	}
}

func (b *Backend) readIssuer(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	e, err := st.resolveIssuer(ctx, d.String("issuer_ref"))
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: issuerData(e)}, nil
}

func (b *Backend) updateIssuer(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := st.resolveIssuer(ctx, d.String("issuer_ref"))
	if err != nil {
		return nil, err
	}
	if d.Has("issuer_name") {
		name := d.String("issuer_name")
		if err := st.checkIssuerName(ctx, name, e.ID); err != nil {
			return nil, err
		}
		e.Name = name
	}
	if d.Has("leaf_not_after_behavior") {
		e.LeafNotAfterBehavior = d.String("leaf_not_after_behavior")
	}
	if err := storage.PutJSON(ctx, st.storage, issuersPrefix+e.ID, e); err != nil {
		return nil, err
	}
	return &core.Response{Data: issuerData(e)}, nil
}

// deleteIssuer removes an issuer (its key stays, as in Vault) and its CRL.
// Deleting the default issuer leaves the mount without a default.
func (b *Backend) deleteIssuer(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := st.resolveIssuer(ctx, d.String("issuer_ref"))
	if err != nil {
		if core.CodeOf(err) == core.CodeInvalid {
			return nil, nil // deleting what is not there succeeds, as in Vault
		}
		return nil, err
	}
	cfg, err := st.getIssuersConfig(ctx)
	if err != nil {
		return nil, err
	}
	ops := []storage.TxnOp{{Kind: storage.OpDelete, Key: issuersPrefix + e.ID}, {Kind: storage.OpDelete, Key: crlsPrefix + e.ID}}
	var resp *core.Response
	if cfg.Default == e.ID {
		cfg.Default = ""
		v, err := jsonBytes(cfg)
		if err != nil {
			return nil, err
		}
		ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: issuersConfigKey, Value: v})
		resp = &core.Response{}
		resp.AddWarning("Deleted the default issuer; set a new default with config/issuers before issuing.")
	}
	if err := storage.Txn(ctx, st.storage, ops); err != nil {
		return nil, err
	}
	return resp, st.rebuildChains(ctx)
}

// issuerCertRoute is issuer/:issuer_ref/(json|pem|der), unauthenticated.
func (b *Backend) issuerCertRoute() framework.Route {
	return framework.Route{
		Pattern:         `issuer/` + framework.GenericNameRegex("issuer_ref") + `/(?P<format>json|pem|der)`,
		Unauthenticated: true,
		Fields: map[string]*framework.FieldSchema{
			"issuer_ref": issuerRefField(),
			"format":     {Type: framework.TypeString},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.handler(b.readIssuerCert),
		},
		Help: "Fetch an issuer's certificate as JSON, PEM or DER.",
	}
}

func (b *Backend) readIssuerCert(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	e, err := st.resolveIssuer(ctx, d.String("issuer_ref"))
	if err != nil {
		return nil, err
	}
	switch d.String("format") {
	case "pem":
		return rawResponse(ctPEMFile, []byte(e.Certificate+"\n")), nil
	case "der":
		c, err := parseCertPEM(e.Certificate)
		if err != nil {
			return nil, err
		}
		return rawResponse(ctDERCert, c.Raw), nil
	}
	return &core.Response{Data: map[string]any{"certificate": e.Certificate, "ca_chain": e.CAChain,
		"issuer_id": e.ID, "issuer_name": e.Name}}, nil
}

// configIssuersRoute is config/issuers: read and set the default issuer.
func (b *Backend) configIssuersRoute() framework.Route {
	return framework.Route{
		Pattern: `config/issuers`,
		Fields: map[string]*framework.FieldSchema{
			"default": {Type: framework.TypeString, Description: "Reference of the issuer to make the default."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.handler(b.readIssuersConfig),
			core.OpUpdate: b.handler(b.writeIssuersConfig),
		},
		Help: "Read or set the default issuer.",
	}
}

func (b *Backend) readIssuersConfig(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	cfg, err := st.getIssuersConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"default": cfg.Default, "default_follows_latest_issuer": false}}, nil
}

func (b *Backend) writeIssuersConfig(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	ref := strings.TrimSpace(d.String("default"))
	if ref == "" || ref == defaultIssuerRef {
		return nil, core.Invalid("missing default: name the issuer to make the default by id or name")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := st.resolveIssuer(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := storage.PutJSON(ctx, st.storage, issuersConfigKey, &issuersConfig{Default: e.ID}); err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"default": e.ID, "default_follows_latest_issuer": false}}, nil
}

// rootDeleteRoute is DELETE root: every issuer, key and CRL of the mount is
// deleted (issued certificates and revocations stay), as Vault does.
func (b *Backend) rootDeleteRoute() framework.Route {
	return framework.Route{
		Pattern: `root`,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpDelete: b.handler(b.deleteRoot),
		},
		Help: "Delete every issuer and key of the mount.",
	}
}

func (b *Backend) deleteRoot(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range []string{issuersPrefix, keysPrefix, crlsPrefix} {
		if err := storage.DeletePrefix(ctx, st.storage, p); err != nil {
			return nil, err
		}
	}
	if err := st.storage.Delete(ctx, issuersConfigKey); err != nil {
		return nil, err
	}
	b.signers.Clear()
	return nil, nil
}
