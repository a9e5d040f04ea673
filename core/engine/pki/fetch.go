package pki

import (
	"context"
	"crypto/x509"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// caRoute is ca (DER) or ca/pem: the default issuer's certificate,
// unauthenticated.
func (b *Backend) caRoute(asPEM bool) framework.Route {
	pattern := `ca`
	if asPEM {
		pattern = `ca/pem`
	}
	return framework.Route{
		Pattern:         pattern,
		Unauthenticated: true,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.handler(func(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
				e, err := st.resolveIssuer(ctx, defaultIssuerRef)
				if err != nil {
					return nil, err
				}
				if asPEM {
					return rawResponse(ctPEMFile, []byte(e.Certificate+"\n")), nil
				}
				c, err := parseCertPEM(e.Certificate)
				if err != nil {
					return nil, err
				}
				return rawResponse(ctDERCert, c.Raw), nil
			}),
		},
		Help: "Fetch the default issuer's certificate.",
	}
}

// caChainRoute is ca_chain: the default issuer's chain in PEM,
// unauthenticated.
func (b *Backend) caChainRoute() framework.Route {
	return framework.Route{
		Pattern:         `ca_chain`,
		Unauthenticated: true,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.handler(func(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
				e, err := st.resolveIssuer(ctx, defaultIssuerRef)
				if err != nil {
					return nil, err
				}
				return rawResponse(ctPEMChain, []byte(strings.Join(e.CAChain, "\n")+"\n")), nil
			}),
		},
		Help: "Fetch the default issuer's CA chain.",
	}
}

func serialField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeString,
		Description: `Serial number (colon or hyphen separated hex), or "ca", "ca_chain" or "crl".`}
}

// certRoute is cert/:serial, unauthenticated: a certificate in PEM with its
// revocation time; "ca", "ca_chain" and "crl" name the default issuer's
// certificate, chain and CRL.
func (b *Backend) certRoute() framework.Route {
	return framework.Route{
		Pattern:         `cert/(?P<serial>[0-9A-Za-z:_-]+)`,
		Unauthenticated: true,
		Fields:          map[string]*framework.FieldSchema{"serial": serialField()},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.handler(b.readCert),
		},
		Help: "Fetch a certificate by serial number.",
	}
}

func (b *Backend) readCert(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	serial := d.String("serial")
	switch serial {
	case "ca", "ca_chain":
		e, err := st.resolveIssuer(ctx, defaultIssuerRef)
		if err != nil {
			return nil, err
		}
		data := map[string]any{"certificate": e.Certificate, "revocation_time": int64(0), "revocation_time_rfc3339": "", "issuer_id": e.ID}
		if serial == "ca_chain" {
			data["certificate"] = strings.Join(e.CAChain, "\n")
			data["ca_chain"] = e.CAChain
		}
		return &core.Response{Data: data}, nil
	case "crl":
		rec, err := b.defaultCRL(ctx, st)
		if err != nil {
			return nil, err
		}
		return &core.Response{Data: map[string]any{"certificate": strings.TrimSpace(string(crlPEM(rec.DER))),
			"revocation_time": int64(0), "revocation_time_rfc3339": ""}}, nil
	}
	cert, issuerID, rev, err := b.lookupCert(ctx, st, serial)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"certificate": encodeCertPEM(cert.Raw), "revocation_time": int64(0), "revocation_time_rfc3339": "", "issuer_id": issuerID}
	if rev != nil {
		data["revocation_time"] = rev.RevocationTime
		data["revocation_time_rfc3339"] = rev.RevocationTimeUTC.Format(time.RFC3339Nano)
	}
	return &core.Response{Data: data}, nil
}

// lookupCert finds a certificate by serial among the stored and the revoked
// ones. An unknown serial is a 404; a malformed one a 400.
func (b *Backend) lookupCert(ctx context.Context, st *state, serial string) (*x509.Certificate, string, *revokedRecord, error) {
	colon, err := normalizeSerial(serial)
	if err != nil {
		return nil, "", nil, err
	}
	rec, err := st.getCert(ctx, colon)
	if err != nil {
		return nil, "", nil, err
	}
	rev, err := st.getRevoked(ctx, colon)
	if err != nil {
		return nil, "", nil, err
	}
	var der []byte
	issuerID := ""
	switch {
	case rec != nil:
		der, issuerID = rec.Certificate, rec.IssuerID
	case rev != nil:
		der, issuerID = rev.Certificate, rev.IssuerID
	default:
		return nil, "", nil, core.ErrNotFound
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", nil, core.Errorf(core.CodeInternal, "pki: stored certificate %s: %w", colon, err)
	}
	return cert, issuerID, rev, nil
}

// certRawRoute is cert/:serial/raw (DER) and cert/:serial/raw/pem.
func (b *Backend) certRawRoute() framework.Route {
	return framework.Route{
		Pattern:         `cert/(?P<serial>[0-9A-Za-z:_-]+)/raw(?P<pem>/pem)?`,
		Unauthenticated: true,
		Fields:          map[string]*framework.FieldSchema{"serial": serialField(), "pem": {Type: framework.TypeString}},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.handler(func(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
				cert, _, _, err := b.lookupCert(ctx, st, d.String("serial"))
				if err != nil {
					return nil, err
				}
				if d.String("pem") != "" {
					return rawResponse(ctPEMFile, []byte(encodeCertPEM(cert.Raw)+"\n")), nil
				}
				return rawResponse(ctDERCert, cert.Raw), nil
			}),
		},
		Help: "Fetch a certificate by serial number, raw.",
	}
}

// certsListRoute is LIST certs: the serials of stored certificates.
func (b *Backend) certsListRoute() framework.Route {
	return framework.Route{
		Pattern: `certs/?`,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpList: b.handler(func(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
				return listSerials(ctx, st, certsPrefix)
			}),
		},
		Help: "List the serial numbers of stored certificates.",
	}
}

// revokedListRoute is LIST certs/revoked: the serials of revoked certificates.
func (b *Backend) revokedListRoute() framework.Route {
	return framework.Route{
		Pattern: `certs/revoked/?`,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpList: b.handler(func(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
				return listSerials(ctx, st, revokedPrefix)
			}),
		},
		Help: "List the serial numbers of revoked certificates.",
	}
}

func listSerials(ctx context.Context, st *state, prefix string) (*core.Response, error) {
	keys, err := st.storage.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !strings.HasSuffix(k, "/") {
			out = append(out, colonSerial(k))
		}
	}
	return listResponse(out)
}
