// Package cert is the TLS certificate auth method (Vault's "cert"): a
// client logs in with the certificate it presented on a TLS listener
// (mutual TLS; the listener asks for a certificate without requiring or
// verifying it). Each role (certs/:name) names the CA certificates it
// trusts (or a trusted leaf) and the names the certificate must carry:
// common names, DNS, email and URI SANs, organizational units (globs).
package cert

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Backend is the cert auth method. It is safe for concurrent use.
type Backend struct {
	env framework.Env
	mu  sync.Mutex
}

// New returns a cert auth method.
func New() framework.Engine { return &Backend{} }

var _ framework.Engine = (*Backend)(nil)

// Setup implements framework.Engine.
func (b *Backend) Setup(_ context.Context, env framework.Env) error { b.env = env; return nil }

// Close implements framework.Engine.
func (b *Backend) Close(context.Context) error { return nil }

// Routes implements framework.Engine.
func (b *Backend) Routes() []framework.Route {
	return []framework.Route{
		{Pattern: `certs/?`, Operations: map[core.Operation]framework.HandlerFunc{core.OpList: b.listRoles}},
		b.roleRoute(),
		{Pattern: `login`, Unauthenticated: true, Fields: map[string]*framework.FieldSchema{"name": {Type: framework.TypeLowerCaseString}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.login},
			Help:       "Log in with the client certificate presented on the TLS connection."},
	}
}

// role is a certs/:name entry.
type role struct {
	Certificate        string   `json:"certificate"`
	DisplayName        string   `json:"display_name,omitempty"`
	AllowedCommonNames []string `json:"allowed_common_names,omitempty"`
	AllowedDNSSANs     []string `json:"allowed_dns_sans,omitempty"`
	AllowedEmailSANs   []string `json:"allowed_email_sans,omitempty"`
	AllowedURISANs     []string `json:"allowed_uri_sans,omitempty"`
	AllowedOUs         []string `json:"allowed_organizational_units,omitempty"`
	tokenutil.Params
}

func roleKey(name string) string { return "cert/" + strings.ToLower(name) }

func (b *Backend) getRole(ctx context.Context, name string) (*role, error) {
	var r role
	ok, err := storage.GetJSON(ctx, b.env.Storage, roleKey(name), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (b *Backend) roleRoute() framework.Route {
	return framework.Route{Pattern: `certs/(?P<name>[^/]+)`, ExistenceCheck: b.roleExists, Fields: tokenutil.With(map[string]*framework.FieldSchema{
		"name":                         {Type: framework.TypeLowerCaseString, Required: true},
		"certificate":                  {Type: framework.TypeString},
		"display_name":                 {Type: framework.TypeString},
		"allowed_names":                {Type: framework.TypeCommaStringSlice},
		"allowed_common_names":         {Type: framework.TypeCommaStringSlice},
		"allowed_dns_sans":             {Type: framework.TypeCommaStringSlice},
		"allowed_email_sans":           {Type: framework.TypeCommaStringSlice},
		"allowed_uri_sans":             {Type: framework.TypeCommaStringSlice},
		"allowed_organizational_units": {Type: framework.TypeCommaStringSlice},
	}), Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readRole, core.OpCreate: b.writeRole,
		core.OpUpdate: b.writeRole, core.OpDelete: b.deleteRole}}
}

func (b *Backend) roleExists(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
	r, err := b.getRole(ctx, d.String("name"))
	return r != nil, err
}

func (b *Backend) listRoles(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	keys, err := b.env.Storage.List(ctx, "cert/")
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

func (b *Backend) readRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	r, err := b.getRole(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.ErrNotFound
	}
	orEmpty := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	data := map[string]any{"certificate": r.Certificate, "display_name": r.DisplayName,
		"allowed_names": []string{}, "allowed_common_names": orEmpty(r.AllowedCommonNames), "allowed_dns_sans": orEmpty(r.AllowedDNSSANs),
		"allowed_email_sans": orEmpty(r.AllowedEmailSANs), "allowed_uri_sans": orEmpty(r.AllowedURISANs),
		"allowed_organizational_units": orEmpty(r.AllowedOUs), "required_extensions": []string{}}
	r.Params.Data(data)
	return &core.Response{Data: data}, nil
}

func (b *Backend) writeRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	name := d.String("name")
	r, err := b.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &role{}
	}
	if d.Has("certificate") {
		r.Certificate = d.String("certificate")
	}
	if d.Has("display_name") {
		r.DisplayName = d.String("display_name")
	}
	if d.Has("allowed_names") {
		// Vault's deprecated allowed_names means common names or SANs; it
		// is kept as common names here.
		r.AllowedCommonNames = d.Strings("allowed_names")
	}
	for k, dst := range map[string]*[]string{"allowed_common_names": &r.AllowedCommonNames, "allowed_dns_sans": &r.AllowedDNSSANs,
		"allowed_email_sans": &r.AllowedEmailSANs, "allowed_uri_sans": &r.AllowedURISANs, "allowed_organizational_units": &r.AllowedOUs} {
		if d.Has(k) {
			*dst = d.Strings(k)
		}
	}
	if err := r.Params.Update(d); err != nil {
		return nil, err
	}
	if _, err := parseCerts(r.Certificate); err != nil {
		return nil, core.Invalid("certificate: %v", err)
	}
	return nil, storage.PutJSON(ctx, b.env.Storage, roleKey(name), r)
}

func (b *Backend) deleteRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	return nil, b.env.Storage.Delete(ctx, roleKey(d.String("name")))
}

// parseCerts reads every PEM certificate in s.
func parseCerts(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate given")
	}
	return out, nil
}
