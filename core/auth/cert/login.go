package cert

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	glob "github.com/ryanuber/go-glob"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// login verifies the presented certificate against each role (or the one
// named) and answers for the first role, in name order, whose CA verifies
// it, whose name constraints it meets and whose token_bound_cidrs allow the
// client address. The address is checked after the certificate, as Vault
// does; a certificate some role accepts only from elsewhere gets that 403.
func (b *Backend) login(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	chain := req.PeerCertificates
	if len(chain) == 0 {
		return nil, core.Invalid("client certificate must be supplied: log in over TLS with a client certificate")
	}
	names := []string{}
	if n := d.String("name"); n != "" {
		names = append(names, n)
	} else {
		keys, err := b.env.Storage.List(ctx, "cert/")
		if err != nil {
			return nil, err
		}
		names = keys
		slices.Sort(names)
	}
	var reasons []string
	var addrErr error
	for _, name := range names {
		r, err := b.getRole(ctx, name)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, core.Invalid("role %q does not exist", name)
		}
		if err := r.verify(chain, b.env.Now()); err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		if err := r.matches(chain[0]); err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		if err := r.CheckLoginAddr(req); err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", name, err))
			if addrErr == nil {
				addrErr = err
			}
			continue
		}
		return &core.Response{Auth: r.auth(name, chain[0])}, nil
	}
	if addrErr != nil {
		return nil, addrErr
	}
	if len(reasons) == 0 {
		return nil, core.Errorf(core.CodePermissionDenied, "no certificate role is configured")
	}
	return nil, core.Errorf(core.CodePermissionDenied, "invalid certificate or no client certificate supplied: %s", strings.Join(reasons, "; "))
}

// verify checks the chain against the role's trusted certificates: a CA
// certificate must sign the leaf (through the presented intermediates),
// a trusted leaf must be the presented leaf; either way the leaf must be
// valid now and usable for client authentication.
func (r *role) verify(chain []*x509.Certificate, now time.Time) error {
	trusted, err := parseCerts(r.Certificate)
	if err != nil {
		return fmt.Errorf("role certificate: %w", err)
	}
	leaf := chain[0]
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range trusted {
		if c.IsCA {
			roots.AddCert(c)
		} else if bytes.Equal(c.Raw, leaf.Raw) {
			// A trusted non-CA certificate is trusted as itself.
			roots.AddCert(c)
		}
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return fmt.Errorf("certificate not trusted: %v", err)
	}
	return nil
}

// matches applies the role's name constraints to the leaf.
func (r *role) matches(leaf *x509.Certificate) error {
	if len(r.AllowedCommonNames) > 0 && !anyGlob(r.AllowedCommonNames, []string{leaf.Subject.CommonName}) {
		return fmt.Errorf("common name %q is not allowed", leaf.Subject.CommonName)
	}
	if len(r.AllowedDNSSANs) > 0 && !anyGlob(r.AllowedDNSSANs, leaf.DNSNames) {
		return fmt.Errorf("DNS SANs %v are not allowed", leaf.DNSNames)
	}
	if len(r.AllowedEmailSANs) > 0 && !anyGlob(r.AllowedEmailSANs, leaf.EmailAddresses) {
		return fmt.Errorf("email SANs %v are not allowed", leaf.EmailAddresses)
	}
	if len(r.AllowedURISANs) > 0 {
		uris := make([]string, 0, len(leaf.URIs))
		for _, u := range leaf.URIs {
			uris = append(uris, u.String())
		}
		if !anyGlob(r.AllowedURISANs, uris) {
			return fmt.Errorf("URI SANs %v are not allowed", uris)
		}
	}
	if len(r.AllowedOUs) > 0 && !anyGlob(r.AllowedOUs, leaf.Subject.OrganizationalUnit) {
		return fmt.Errorf("organizational units %v are not allowed", leaf.Subject.OrganizationalUnit)
	}
	return nil
}

func anyGlob(patterns, values []string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if p == v || glob.Glob(p, v) {
				return true
			}
		}
	}
	return false
}

// auth names the certificate's common name as the entity alias, as Vault
// does.
func (r *role) auth(name string, leaf *x509.Certificate) *core.Auth {
	display := r.DisplayName
	if display == "" {
		display = name
	}
	meta := map[string]string{"cert_name": name, "common_name": leaf.Subject.CommonName,
		"serial_number": leaf.SerialNumber.String(), "subject_key_id": colonHex(leaf.SubjectKeyId),
		"authority_key_id": colonHex(leaf.AuthorityKeyId)}
	a := r.Params.Auth(display, meta)
	alias := leaf.Subject.CommonName
	if alias == "" {
		alias = "serial:" + meta["serial_number"] // a certificate without a common name
	}
	a.Alias = &core.Alias{Name: alias, Metadata: map[string]string{"cert_name": name,
		"serial_number": meta["serial_number"]}}
	a.InternalData = map[string]any{"cert_name": name, "serial_number": meta["serial_number"]}
	return a
}

func colonHex(b []byte) string {
	h := hex.EncodeToString(b)
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}
