package pki

import (
	"context"
	"encoding/asn1"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// signVerbatimRoutes are sign-verbatim and sign-verbatim/:role: a
// certificate with the CSR's subject and SANs taken as they are (no name
// restrictions). With a role, its ttl, max_ttl, issuer, no_store and
// generate_lease apply; its name rules do not, as in Vault. A CSR asking for
// a CA certificate is refused. Key usages come from the request.
func (b *Backend) signVerbatimRoutes() []framework.Route {
	fields := map[string]*framework.FieldSchema{
		"role": {Type: framework.TypeString, Description: "Role whose lifetimes, issuer and storage settings apply."},
		"csr":  {Type: framework.TypeString, Description: "PEM certificate signing request."},
		"key_usage": {Type: framework.TypeCommaStringSlice, Default: []string{"DigitalSignature", "KeyAgreement", "KeyEncipherment"},
			Description: "Key usages of the certificate."},
		"ext_key_usage":      {Type: framework.TypeCommaStringSlice, Description: "Extended key usages of the certificate."},
		"ext_key_usage_oids": {Type: framework.TypeCommaStringSlice, Description: "Extended key usage OIDs of the certificate."},
		"ttl":                {Type: framework.TypeDurationSecond, Description: "Requested lifetime."},
		"not_after":          {Type: framework.TypeString, Description: "Requested NotAfter (RFC 3339), instead of ttl."},
		"format": {Type: framework.TypeLowerCaseString, Default: "pem", Description: "pem, der or pem_bundle.",
			AllowedValues: []any{"pem", "der", "pem_bundle"}},
		"private_key_format": {Type: framework.TypeLowerCaseString, Default: "der", Description: "Unused: no key is generated.",
			AllowedValues: privateKeyFormats},
	}
	ops := map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.handler(b.signVerbatim)}
	return []framework.Route{
		{Pattern: `sign-verbatim`, Fields: fields, Operations: ops, Help: "Sign a CSR as it is."},
		{Pattern: `sign-verbatim/` + framework.GenericNameRegex("role"), Fields: fields, Operations: ops, Help: "Sign a CSR as it is, with a role's lifetimes."},
	}
}

func (b *Backend) signVerbatim(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	// The synthetic role: no name rules, key usages from the request.
	role := &roleEntry{KeyType: keyAny, KeyUsage: d.Strings("key_usage"), ExtKeyUsage: d.Strings("ext_key_usage"),
		ExtKeyUsageOIDs: d.Strings("ext_key_usage_oids")}
	if name := d.String("role"); name != "" {
		r, err := st.roleForIssue(ctx, name)
		if err != nil {
			return nil, err
		}
		role.TTL, role.MaxTTL, role.IssuerRef = r.TTL, r.MaxTTL, r.IssuerRef
		role.NoStore, role.GenerateLease, role.NotBeforeDuration = r.NoStore, r.GenerateLease, r.NotBeforeDuration
		role.SignatureBits = r.SignatureBits
	}
	csr, err := parseCSR(d.String("csr"))
	if err != nil {
		return nil, err
	}
	if err := role.checkCSRKey(csr.PublicKey); err != nil {
		return nil, err
	}
	for _, ext := range csr.Extensions {
		if ext.Id.Equal(oidBasicConstraints) {
			var bc struct {
				IsCA bool `asn1:"optional"`
			}
			if _, err := asn1.Unmarshal(ext.Value, &bc); err == nil && bc.IsCA {
				return nil, core.Invalid("refusing to sign a CSR that asks for a CA certificate: use root/sign-intermediate")
			}
		}
	}
	bundle, err := b.signingBundle(ctx, st, role.IssuerRef)
	if err != nil {
		return nil, err
	}
	p := &certParams{subject: csr.Subject, dnsNames: csr.DNSNames, emails: csr.EmailAddresses, ips: csr.IPAddresses,
		uris: csr.URIs, signatureBits: role.SignatureBits}
	p.subject.ExtraNames = nil
	var warnings []string
	p.notBefore, p.notAfter, warnings, err = st.validity(lifetime{requested: d.Duration("ttl"), notAfter: d.String("not_after"),
		defTTL: role.TTL, maxTTL: role.MaxTTL, notBeforeDur: role.NotBeforeDuration}, bundle)
	if err != nil {
		return nil, err
	}
	if p.keyUsage, err = role.keyUsage(); err != nil {
		return nil, err
	}
	if p.extKeyUsage, p.extKeyOIDs, err = role.extKeyUsage(); err != nil {
		return nil, err
	}
	if p.urls, err = st.getURLs(ctx); err != nil {
		return nil, err
	}
	adjustKeyUsage(p, csr.PublicKey)
	return b.finishLeaf(ctx, st, role, d, p, csr.PublicKey, nil, bundle, warnings)
}
