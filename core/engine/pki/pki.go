// Package pki is Vault's PKI secrets engine: a certificate authority that
// generates roots and intermediates, signs certificates for roles, revokes
// them, and publishes CRLs and an OCSP responder, speaking Vault's HTTP API
// shapes so that the vault/api client, the Vault CLI and tools built on them
// work unchanged. Register it as mount type "pki" with New.
//
// # Issuers and keys
//
// A mount holds any number of issuers (CA certificates) and keys, as Vault
// 1.11+ does. root/generate creates a key and a self-signed issuer;
// intermediate/generate creates a key and returns a CSR; intermediate/set-signed
// imports the signed certificate (and any parents sent with it) as issuers,
// linking each to a key of this mount with the same public key. The first
// issuer of a mount becomes its default (config/issuers changes it); roles
// issue from the default issuer. Each issuer's chain (itself first, then its
// parents among the mount's issuers) is recomputed whenever issuers change.
//
// # Certificate lifetimes
//
// For issue and sign, a requested ttl or not_after beyond the effective
// maximum (the role's max_ttl capped by the mount's max lease TTL) is capped
// to it with a warning, as Vault does; so is a default ttl (the role's ttl,
// else the mount's default lease TTL) above the maximum. A certificate never outlives its issuer: by default such a
// request fails with a 400, as Vault's default leaf_not_after_behavior "err"
// does; an issuer set to "truncate" caps NotAfter at its own, and "permit"
// allows it (issuer/:ref, field leaf_not_after_behavior).
//
// # Leases
//
// A role with generate_lease=true returns a non-renewable lease whose TTL
// runs until the certificate's NotAfter, with the serial number kept in the
// lease's internal data. The lease manager expires it at NotAfter, and revoking
// it (sys/leases/revoke, a token's revocation) revokes the certificate; at
// expiry the certificate has already expired and, as in Vault, is not added
// to the CRL.
//
// # Storage layout
//
// Everything lives in the mount's barrier view (env.Storage); private keys
// never leave it except in "exported" responses. Keys, relative to the view:
//
//	config/issuers          {"default": issuer id}
//	config/urls             AIA URLs (issuing_certificates, crl_distribution_points, ocsp_servers)
//	config/crl              CRL and OCSP settings
//	issuers/<id>            issuer: certificate PEM, chain, key id, name, leaf_not_after_behavior
//	keys/<id>               key: PKCS#8 PEM private key, type, name
//	roles/<name>            role
//	certs/<serial>          issued certificate (DER) and its issuer id; serial in hyphen form
//	revoked/<serial>        revocation record: certificate, time, issuer id
//	crls/<issuer id>        the issuer's current CRL (DER), number and validity
//	tidy/status             result of the last tidy run
//
// # Concurrency
//
// A Backend is safe for concurrent use. Changes to issuers, revocations and
// CRL builds are serialised by one mutex; issuing takes no lock (each
// certificate is a fresh key under a fresh random serial).
package pki

import (
	"context"
	"crypto"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Backend is the PKI engine. Construct it with New.
type Backend struct {
	st atomic.Pointer[state]

	// mu serialises changes to issuers, keys, revocations and CRLs.
	mu sync.Mutex
	// signers caches parsed private keys by key id. Key entries are
	// immutable once written, so a cached signer is never stale; deleting a
	// key removes it.
	signers sync.Map // key id → crypto.Signer
}

// state is what Setup received.
type state struct {
	storage storage.Storage
	now     func() time.Time
	logger  *slog.Logger
	system  framework.SystemView
	mount   core.MountInfo
}

// New returns an unconfigured PKI engine; register it as type "pki".
func New() framework.Engine { return &Backend{} }

var (
	_ framework.Engine        = (*Backend)(nil)
	_ framework.SecretRevoker = (*Backend)(nil)
	_ framework.Scheduler     = (*Backend)(nil)
)

// Setup prepares the engine for a mount. It may be called again (after a
// tune); the last call wins. It returns an internal error without storage.
func (b *Backend) Setup(_ context.Context, env framework.Env) error {
	if env.Storage == nil {
		return core.Errorf(core.CodeInternal, "pki: setup without storage")
	}
	st := &state{storage: env.Storage, now: env.Now, logger: env.Logger, system: env.System, mount: env.Mount}
	if st.now == nil {
		st.now = time.Now
	}
	if st.logger == nil {
		st.logger = slog.New(slog.DiscardHandler)
	}
	if st.system == nil {
		st.system = framework.StaticSystem{}
	}
	b.st.Store(st)
	return nil
}

// Close releases nothing (the engine holds no resources beyond a key cache)
// and may be called any number of times.
func (b *Backend) Close(context.Context) error {
	b.signers.Clear()
	return nil
}

// Routes returns the engine's routes. Order matters only where patterns
// overlap; none do.
func (b *Backend) Routes() []framework.Route {
	return append(b.signVerbatimRoutes(),
		b.rootGenerateRoute(),
		b.rootSignIntermediateRoute(),
		b.rootDeleteRoute(),
		b.intermediateGenerateRoute(),
		b.setSignedRoute(),
		b.rolesListRoute(),
		b.roleRoute(),
		b.issueRoute(),
		b.signRoute(),
		b.revokeRoute(),
		b.crlRefreshScanRoute(),
		b.crlRefreshRoute(),
		b.crlRotateRoute(),
		b.crlRoute(false),
		b.crlRoute(true),
		b.caRoute(false),
		b.caRoute(true),
		b.caChainRoute(),
		b.certRoute(),
		b.certRawRoute(),
		b.certsListRoute(),
		b.revokedListRoute(),
		b.tidyRoute(),
		b.tidyStatusRoute(),
		b.configURLsRoute(),
		b.configCRLRoute(),
		b.configIssuersRoute(),
		b.issuersListRoute(),
		b.issuerRoute(),
		b.issuerCertRoute(),
		b.ocspPostRoute(),
		b.ocspGetRoute(),
	)
}

// state returns the Setup state, or an unavailable error before Setup.
func (b *Backend) state() (*state, error) {
	st := b.st.Load()
	if st == nil {
		return nil, core.Errorf(core.CodeUnavailable, "pki: engine is not set up")
	}
	return st, nil
}

// handler wraps a handler that needs the Setup state.
func (b *Backend) handler(f func(ctx context.Context, st *state, req *core.Request, d *framework.FieldData) (*core.Response, error)) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		st, err := b.state()
		if err != nil {
			return nil, err
		}
		return f(ctx, st, req, d)
	}
}

// cachedSigner returns the parsed private key of key id.
func (b *Backend) cachedSigner(id string) (crypto.Signer, bool) {
	v, ok := b.signers.Load(id)
	if !ok {
		return nil, false
	}
	return v.(crypto.Signer), true
}

// listResponse is Vault's list shape; no keys is a 404, as Vault answers.
func listResponse(keys []string) (*core.Response, error) {
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

// rawResponse is a non-JSON body.
func rawResponse(contentType string, body []byte) *core.Response {
	return &core.Response{Raw: &core.RawBody{ContentType: contentType, Body: body}}
}

// Content types Vault uses for its raw PKI endpoints.
const (
	ctDERCert  = "application/pkix-cert"
	ctPEMChain = "application/pem-certificate-chain"
	ctDERCRL   = "application/pkix-crl"
	ctPEMFile  = "application/x-pem-file"
	ctOCSP     = "application/ocsp-response"
)
