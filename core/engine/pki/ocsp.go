package pki

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"net/http"
	"net/url"

	"golang.org/x/crypto/ocsp"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// maxOCSPRequest bounds a DER OCSP request (a simple one is under 100 bytes).
const maxOCSPRequest = 2048

// ocspPostRoute is POST ocsp: a DER OCSP request in the raw body
// (Content-Type application/ocsp-request). The HTTP layer must pass this
// path's body raw.
func (b *Backend) ocspPostRoute() framework.Route {
	return framework.Route{
		Pattern:         `ocsp`,
		Unauthenticated: true,
		Raw:             true,
		MaxBody:         maxOCSPRequest,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpUpdate: b.handler(func(ctx context.Context, st *state, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
				return b.answerOCSP(ctx, st, req.RawBody, len(req.RawBody) > 0 && len(req.RawBody) < maxOCSPRequest), nil
			}),
		},
		Help: "OCSP responder (RFC 6960), POST form.",
	}
}

// ocspGetRoute is GET ocsp/<base64 DER request> (RFC 6960 appendix A.1).
func (b *Backend) ocspGetRoute() framework.Route {
	return framework.Route{
		Pattern:         `ocsp/` + framework.MatchAllRegex("req"),
		Unauthenticated: true,
		Fields:          map[string]*framework.FieldSchema{"req": {Type: framework.TypeString, Description: "Base64 DER OCSP request."}},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.handler(func(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
				der, ok := decodeOCSPGet(d.String("req"))
				return b.answerOCSP(ctx, st, der, ok), nil
			}),
		},
		Help: "OCSP responder (RFC 6960), GET form.",
	}
}

// decodeOCSPGet decodes the GET form's request: standard base64, possibly
// URL-escaped, or URL-safe base64, with or without padding.
func decodeOCSPGet(s string) ([]byte, bool) {
	if s == "" || len(s) >= maxOCSPRequest*2 {
		return nil, false
	}
	if u, err := url.PathUnescape(s); err == nil {
		s = u
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if der, err := enc.DecodeString(s); err == nil && len(der) < maxOCSPRequest {
			return der, true
		}
	}
	return nil, false
}

// ocspError is an unsigned OCSP error response with Vault's HTTP status.
func ocspError(status int, body []byte) *core.Response {
	r := rawResponse(ctOCSP, body)
	r.StatusCode = status
	return r
}

// answerOCSP answers one OCSP request as Vault does: the certificate's
// status as seen by the mount issuer whose name and key hashes the request
// names, signed by that issuer (which is also the responder, so no
// certificate is embedded). A serial the
// issuer never revoked is "good" (Vault's semantics; no_store certificates
// are not known individually); a request for an issuer the mount does not
// have is "unknown", signed by the default issuer. Malformed requests get
// malformedRequest (HTTP 400), a disabled responder or a mount that cannot
// sign gets unauthorized (HTTP 401), and signing failures internalError
// (HTTP 500; Ed25519 issuers cannot sign OCSP responses).
func (b *Backend) answerOCSP(ctx context.Context, st *state, der []byte, ok bool) *core.Response {
	cfg, err := st.getCRLConfig(ctx)
	if err != nil || cfg.OCSPDisable {
		return ocspError(http.StatusUnauthorized, ocsp.UnauthorizedErrorResponse)
	}
	if !ok {
		return ocspError(http.StatusBadRequest, ocsp.MalformedRequestErrorResponse)
	}
	req, err := ocsp.ParseRequest(der)
	if err != nil || !req.HashAlgorithm.Available() {
		return ocspError(http.StatusBadRequest, ocsp.MalformedRequestErrorResponse)
	}
	issuers, err := st.listIssuers(ctx)
	if err != nil {
		return b.ocspInternal(st, err)
	}
	var bundle *caBundle
	for _, e := range issuers {
		if e.KeyID == "" {
			continue
		}
		cert, err := parseCertPEM(e.Certificate)
		if err != nil {
			continue
		}
		if matchesOCSPIssuer(cert, req) {
			bundle, err = b.signingBundle(ctx, st, e.ID)
			if err != nil {
				return b.ocspInternal(st, err)
			}
			break
		}
	}
	tmpl := ocsp.Response{SerialNumber: req.SerialNumber, IssuerHash: req.HashAlgorithm, ThisUpdate: st.now().UTC()}
	if cfg.OCSPExpiry > 0 {
		tmpl.NextUpdate = tmpl.ThisUpdate.Add(cfg.OCSPExpiry)
	}
	if bundle == nil {
		tmpl.Status = ocsp.Unknown
		if bundle, err = b.signingBundle(ctx, st, defaultIssuerRef); err != nil {
			return ocspError(http.StatusUnauthorized, ocsp.UnauthorizedErrorResponse)
		}
	} else {
		tmpl.Status = ocsp.Good
		rev, err := st.getRevoked(ctx, formatSerial(req.SerialNumber))
		if err != nil {
			return b.ocspInternal(st, err)
		}
		if rev != nil && (rev.IssuerID == bundle.issuer.ID || rev.IssuerID == "") {
			tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, rev.RevocationTimeUTC, ocsp.Unspecified
		}
	}
	// The issuer signs as its own responder, so no certificate is embedded
	// (RFC 6960 §4.2.2.2): clients verify with the issuer they hold. (An
	// embedded issuer certificate also trips Go's x/crypto/ocsp, which would
	// check it against the issuer itself.)
	resp, err := ocsp.CreateResponse(bundle.cert, bundle.cert, tmpl, bundle.signer)
	if err != nil {
		return b.ocspInternal(st, err)
	}
	r := rawResponse(ctOCSP, resp)
	r.StatusCode = http.StatusOK
	return r
}

func (b *Backend) ocspInternal(st *state, err error) *core.Response {
	st.logger.Debug("OCSP internal error", "error", err)
	return ocspError(http.StatusInternalServerError, ocsp.InternalErrorErrorResponse)
}

// matchesOCSPIssuer reports whether an OCSP request's issuer name and key
// hashes are those of cert.
func matchesOCSPIssuer(cert *x509.Certificate, req *ocsp.Request) bool {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return false
	}
	h := req.HashAlgorithm.New()
	h.Write(spki.PublicKey.RightAlign())
	keyHash := h.Sum(nil)
	h.Reset()
	h.Write(cert.RawSubject)
	nameHash := h.Sum(nil)
	return bytes.Equal(keyHash, req.IssuerKeyHash) && bytes.Equal(nameHash, req.IssuerNameHash)
}
