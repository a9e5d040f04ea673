package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// certParams is everything a certificate is built from, apart from its key.
type certParams struct {
	subject     pkix.Name
	dnsNames    []string
	emails      []string
	ips         []net.IP
	uris        []*url.URL
	notBefore   time.Time
	notAfter    time.Time
	isCA        bool
	maxPathLen  int // for CAs: -1 unlimited
	keyUsage    x509.KeyUsage
	extKeyUsage []x509.ExtKeyUsage
	extKeyOIDs  []asn1.ObjectIdentifier
	// basicConstraintsNonCA marks a leaf with CA:FALSE basic constraints.
	basicConstraintsNonCA bool
	permittedDNSDomains   []string
	urls                  *urlsConfig // AIA and CRL distribution points; nil for none
	signatureBits         int
}

// createCert builds and signs a certificate for pub. parent nil means
// self-signed with selfKey. It returns the parsed certificate.
func createCert(p *certParams, pub crypto.PublicKey, parent *caBundle, selfKey crypto.Signer) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(pub)
	if err != nil {
		return nil, core.Invalid("unsupported public key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            p.subject,
		NotBefore:          p.notBefore,
		NotAfter:           p.notAfter,
		KeyUsage:           p.keyUsage,
		ExtKeyUsage:        p.extKeyUsage,
		UnknownExtKeyUsage: p.extKeyOIDs,
		DNSNames:           p.dnsNames,
		EmailAddresses:     p.emails,
		IPAddresses:        p.ips,
		URIs:               p.uris,
		SubjectKeyId:       skid,
	}
	if p.isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		switch {
		case p.maxPathLen < 0:
			tmpl.MaxPathLen = -1
		case p.maxPathLen == 0:
			tmpl.MaxPathLen, tmpl.MaxPathLenZero = 0, true
		default:
			tmpl.MaxPathLen = p.maxPathLen
		}
		tmpl.PermittedDNSDomains = p.permittedDNSDomains
		tmpl.PermittedDNSDomainsCritical = len(p.permittedDNSDomains) > 0
	} else if p.basicConstraintsNonCA {
		tmpl.BasicConstraintsValid = true
	}
	if p.urls != nil {
		tmpl.IssuingCertificateURL = p.urls.IssuingCertificates
		tmpl.OCSPServer = p.urls.OCSPServers
		tmpl.CRLDistributionPoints = p.urls.CRLDistributionPoints
	}
	signer, parentCert := selfKey, tmpl
	if parent != nil {
		signer, parentCert = parent.signer, parent.cert
		tmpl.AuthorityKeyId = parent.cert.SubjectKeyId
	}
	if tmpl.SignatureAlgorithm, err = signatureAlgorithm(signer.Public(), p.signatureBits); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, pub, signer)
	if err != nil {
		return nil, core.Invalid("unable to create certificate: %v", err)
	}
	return x509.ParseCertificate(der)
}

// subjectFields are the request fields that make a CA's subject.
func subjectFields() map[string]*framework.FieldSchema {
	s := func(desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeCommaStringSlice, Description: desc}
	}
	return map[string]*framework.FieldSchema{
		"ou":             s("OU (OrganizationalUnit) values in the subject."),
		"organization":   s("O (Organization) values in the subject."),
		"country":        s("C (Country) values in the subject."),
		"locality":       s("L (Locality) values in the subject."),
		"province":       s("ST (Province) values in the subject."),
		"street_address": s("Street address values in the subject."),
		"postal_code":    s("Postal code values in the subject."),
		"serial_number":  {Type: framework.TypeString, Description: "The subject's serialNumber attribute (not the certificate serial)."},
	}
}

// nameFields are the request fields naming a certificate's subject and SANs.
func nameFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"common_name":          {Type: framework.TypeString, Description: "The requested common name."},
		"alt_names":            {Type: framework.TypeCommaStringSlice, Description: "DNS names and email addresses for the SAN extension."},
		"ip_sans":              {Type: framework.TypeCommaStringSlice, Description: "IP addresses for the SAN extension."},
		"uri_sans":             {Type: framework.TypeCommaStringSlice, Description: "URIs for the SAN extension."},
		"other_sans":           {Type: framework.TypeCommaStringSlice, Description: "Not supported by Vigil; must be empty."},
		"exclude_cn_from_sans": {Type: framework.TypeBool, Description: "Do not add the common name to the DNS or email SANs."},
		"ttl":                  {Type: framework.TypeDurationSecond, Description: "Requested lifetime."},
		"not_after":            {Type: framework.TypeString, Description: "Requested NotAfter (RFC 3339), instead of ttl."},
		"format": {Type: framework.TypeLowerCaseString, Default: "pem", Description: "pem, der or pem_bundle.",
			AllowedValues: []any{"pem", "der", "pem_bundle"}},
		"private_key_format": {Type: framework.TypeLowerCaseString, Default: "der", Description: "der (PKCS#1/SEC 1 in PEM) or pkcs8.",
			AllowedValues: privateKeyFormats},
	}
}

// mergeFields returns the union of field maps (later ones win).
func mergeFields(ms ...map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	out := map[string]*framework.FieldSchema{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// subjectFromRequest builds a CA subject from the request's fields.
func subjectFromRequest(d *framework.FieldData, cn string) pkix.Name {
	return pkix.Name{
		CommonName:         cn,
		OrganizationalUnit: d.Strings("ou"),
		Organization:       d.Strings("organization"),
		Country:            d.Strings("country"),
		Locality:           d.Strings("locality"),
		Province:           d.Strings("province"),
		StreetAddress:      d.Strings("street_address"),
		PostalCode:         d.Strings("postal_code"),
		SerialNumber:       d.String("serial_number"),
	}
}

// splitNames sorts alt_names into DNS names and email addresses; a name with
// '@' is an email address, any other must be a valid (possibly wildcard) DNS
// name. Errors are CodeInvalid with Vault's text.
func splitNames(names []string) (dns, emails []string, err error) {
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if strings.Contains(n, "@") {
			emails = append(emails, n)
			continue
		}
		if !validHostname(n, true) {
			return nil, nil, core.Invalid("subject alternate name %s is not a valid DNS name and cannot be included as a SAN", n)
		}
		dns = append(dns, n)
	}
	return dedup(dns), dedup(emails), nil
}

// parseIPs parses ip_sans. Errors are CodeInvalid with Vault's text.
func parseIPs(vals []string) ([]net.IP, error) {
	var out []net.IP
	for _, v := range vals {
		ip := net.ParseIP(strings.TrimSpace(v))
		if ip == nil {
			return nil, core.Invalid("the value %q is not a valid IP address", v)
		}
		out = append(out, ip)
	}
	return out, nil
}

// parseURIs parses uri_sans. Errors are CodeInvalid.
func parseURIs(vals []string) ([]*url.URL, error) {
	var out []*url.URL
	for _, v := range vals {
		u, err := url.Parse(strings.TrimSpace(v))
		if err != nil || u.Scheme == "" {
			return nil, core.Invalid("the provided URI Subject Alternative Name %q is not a valid URI", v)
		}
		out = append(out, u)
	}
	return out, nil
}

// caNames builds the SANs of a CA (no role restrictions, as in Vault): the
// common name joins the DNS or email SANs unless excluded.
func caNames(d *framework.FieldData, cn string) (p *certParams, err error) {
	p = &certParams{}
	names := d.Strings("alt_names")
	if cn != "" && !d.Bool("exclude_cn_from_sans") && (strings.Contains(cn, "@") || validHostname(cn, true)) {
		names = append([]string{cn}, names...)
	}
	if p.dnsNames, p.emails, err = splitNames(names); err != nil {
		return nil, err
	}
	if p.ips, err = parseIPs(d.Strings("ip_sans")); err != nil {
		return nil, err
	}
	if p.uris, err = parseURIs(d.Strings("uri_sans")); err != nil {
		return nil, err
	}
	if len(d.Strings("other_sans")) > 0 {
		return nil, core.Invalid("other_sans are not supported")
	}
	return p, nil
}

// lifetime describes how a certificate's validity is chosen.
type lifetime struct {
	requested    time.Duration // the request's ttl; 0 for the default
	notAfter     string        // the request's not_after (RFC 3339)
	defTTL       time.Duration // role ttl; 0 for the mount default
	maxTTL       time.Duration // role max_ttl; 0 for the mount max
	notBeforeDur time.Duration
}

// validity computes NotBefore and NotAfter. See the package comment for the
// rules; errors are CodeInvalid.
func (st *state) validity(l lifetime, parent *caBundle) (nb, na time.Time, warnings []string, err error) {
	now := st.now()
	max := st.system.MaxLeaseTTL()
	if l.maxTTL > 0 && (max <= 0 || l.maxTTL < max) {
		max = l.maxTTL
	}
	if l.requested > 0 && l.notAfter != "" {
		return nb, na, nil, core.Invalid("Either ttl or not_after should be provided. Both should not be provided in the same request.")
	}
	switch {
	case l.notAfter != "":
		t, perr := time.Parse(time.RFC3339, l.notAfter)
		if perr != nil {
			return nb, na, nil, core.Invalid("invalid not_after %q: must be an RFC 3339 time", l.notAfter)
		}
		na = t
		if max > 0 && t.Sub(now) > max {
			warnings = append(warnings, fmt.Sprintf("not_after %q is beyond the permitted maxTTL %q, so maxTTL is being used", l.notAfter, max))
			na = now.Add(max)
		}
	case l.requested > 0:
		ttl := l.requested
		if max > 0 && ttl > max {
			warnings = append(warnings, fmt.Sprintf("TTL %q is longer than permitted maxTTL %q, so maxTTL is being used", ttl, max))
			ttl = max
		}
		na = now.Add(ttl)
	default:
		ttl := l.defTTL
		if ttl <= 0 {
			ttl = st.system.DefaultLeaseTTL()
		}
		if ttl <= 0 {
			ttl = 768 * time.Hour // Vault's server default
		}
		if max > 0 && ttl > max {
			warnings = append(warnings, fmt.Sprintf("TTL %q is longer than permitted maxTTL %q, so maxTTL is being used", ttl, max))
			ttl = max
		}
		na = now.Add(ttl)
	}
	nb = now.Add(-l.notBeforeDur)
	if parent != nil {
		if na.After(parent.cert.NotAfter) {
			switch parent.issuer.LeafNotAfterBehavior {
			case leafNotAfterTrunc:
				na = parent.cert.NotAfter
			case leafNotAfterAllow:
			default:
				return nb, na, warnings, core.Invalid("cannot satisfy request, as TTL would result in notAfter of %s that is beyond the expiration of the CA certificate at %s",
					na.UTC().Format(time.RFC3339Nano), parent.cert.NotAfter.UTC().Format(time.RFC3339Nano))
			}
		}
		if nb.Before(parent.cert.NotBefore) {
			nb = parent.cert.NotBefore
		}
	}
	if !na.After(nb) {
		return nb, na, warnings, core.Invalid("notAfter before notBefore")
	}
	return nb, na, warnings, nil
}

// keyUsageNames maps Vault's key_usage names (lower-case) to bits.
var keyUsageNames = map[string]x509.KeyUsage{
	"digitalsignature":  x509.KeyUsageDigitalSignature,
	"contentcommitment": x509.KeyUsageContentCommitment,
	"keyencipherment":   x509.KeyUsageKeyEncipherment,
	"dataencipherment":  x509.KeyUsageDataEncipherment,
	"keyagreement":      x509.KeyUsageKeyAgreement,
	"certsign":          x509.KeyUsageCertSign,
	"crlsign":           x509.KeyUsageCRLSign,
	"encipheronly":      x509.KeyUsageEncipherOnly,
	"decipheronly":      x509.KeyUsageDecipherOnly,
}

// extKeyUsageNames maps Vault's ext_key_usage names (lower-case) to values.
var extKeyUsageNames = map[string]x509.ExtKeyUsage{
	"any":                            x509.ExtKeyUsageAny,
	"serverauth":                     x509.ExtKeyUsageServerAuth,
	"clientauth":                     x509.ExtKeyUsageClientAuth,
	"codesigning":                    x509.ExtKeyUsageCodeSigning,
	"emailprotection":                x509.ExtKeyUsageEmailProtection,
	"ipsecendsystem":                 x509.ExtKeyUsageIPSECEndSystem,
	"ipsectunnel":                    x509.ExtKeyUsageIPSECTunnel,
	"ipsecuser":                      x509.ExtKeyUsageIPSECUser,
	"timestamping":                   x509.ExtKeyUsageTimeStamping,
	"ocspsigning":                    x509.ExtKeyUsageOCSPSigning,
	"microsoftservergatedcrypto":     x509.ExtKeyUsageMicrosoftServerGatedCrypto,
	"netscapeservergatedcrypto":      x509.ExtKeyUsageNetscapeServerGatedCrypto,
	"microsoftcommercialcodesigning": x509.ExtKeyUsageMicrosoftCommercialCodeSigning,
	"microsoftkernelcodesigning":     x509.ExtKeyUsageMicrosoftKernelCodeSigning,
}

func usageKey(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
}

// parseOIDs parses dotted OIDs. Errors are CodeInvalid.
func parseOIDs(vals []string) ([]asn1.ObjectIdentifier, error) {
	var out []asn1.ObjectIdentifier
	for _, v := range vals {
		var oid asn1.ObjectIdentifier
		for _, part := range strings.Split(strings.TrimSpace(v), ".") {
			var n int
			if _, err := fmt.Sscanf(part, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != part {
				return nil, core.Invalid("invalid OID %q", v)
			}
			oid = append(oid, n)
		}
		if len(oid) < 2 {
			return nil, core.Invalid("invalid OID %q", v)
		}
		out = append(out, oid)
	}
	return out, nil
}

func dedup(in []string) []string {
	seen := map[string]bool{}
	out := in[:0:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func jsonBytes(v any) ([]byte, error) { return json.Marshal(v) }

// chainPEMs returns a bundle's chain (the issuer first, then its parents).
func (cb *caBundle) chainPEMs() []string {
	if len(cb.issuer.CAChain) > 0 {
		return append([]string(nil), cb.issuer.CAChain...)
	}
	return []string{cb.issuer.Certificate}
}
