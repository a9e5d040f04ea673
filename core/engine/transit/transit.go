// Package transit is Vault's transit secrets engine ("encryption as a
// service"), speaking Vault's HTTP API shapes so that the vault/api client
// and the Vault CLI work unchanged. Register New as mount type "transit".
//
// # Keys
//
// A named key is a ring of versions of one type: aes128-gcm96,
// aes256-gcm96 (the default), chacha20-poly1305, ed25519, ecdsa-p256,
// ecdsa-p384, ecdsa-p521, rsa-2048, rsa-3072, rsa-4096 or hmac. Encryption
// types also carry, per version, a separate random 32-byte HMAC key used by
// hmac/:name, as Vault does.
//
// # Formats
//
// Every ciphertext, signature and HMAC is "vault:v<N>:<base64>" where N is
// the key version. For the AEAD types the base64 payload is
// nonce(12 bytes) || ciphertext || tag(16 bytes), exactly Vault's layout, so
// clients that parse or store Vault ciphertexts keep working; the data only
// decrypts with the keys held by this mount. RSA keys encrypt with
// RSA-OAEP(SHA-256). ECDSA signatures are ASN.1 DER in standard base64, or
// with marshaling_algorithm=jws the fixed-width r||s in unpadded base64url.
//
// # Derivation and convergent encryption
//
// A derived key (derived=true) is never used directly: each request's
// context (base64) derives the working key with HKDF-SHA256, the version's
// key as secret, no salt and the context as info (Vault's "hkdf_sha256"
// KDF). Ed25519 derives a 32-byte seed the same way.
//
// Convergent encryption (convergent_encryption=true, which requires
// derived=true) makes encryption deterministic for a given plaintext and
// context, as Vault's convergent version 3 does: HKDF output is extended by
// 32 bytes beyond the cipher key; those bytes are an HMAC-SHA256 key, and the
// nonce is the first 12 bytes of HMAC-SHA256(that key, plaintext). The nonce
// is still stored in front of the ciphertext. Associated data does not enter
// the nonce.
//
// # Storage layout and key material
//
// Key material lives only in the mount's barrier view (env.Storage), one
// JSON record per key at "policy/<name>", holding every retained version.
// The engine keeps a cache of parsed keys keyed by the exact stored bytes:
// every operation reads the record from storage, so a change made by another
// engine instance over the same storage is seen at once, and only parsing is
// saved. Key material is never logged and never appears in error messages.
//
// # Concurrency
//
// A Backend is safe for concurrent use. Changes to one key (create, rotate,
// config, trim, delete, auto-rotation) are serialised by a striped lock;
// cryptographic operations take no lock and see the last stored state.
package transit

import (
	"context"
	"crypto/rand"
	"hash/fnv"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// policyPrefix is the storage prefix of key records within the mount's view.
const policyPrefix = "policy/"

const lockCount = 64

// Backend is the transit engine. Construct it with New.
type Backend struct {
	st atomic.Pointer[state]

	// locks serialise changes to one key (striped by name hash).
	locks [lockCount]sync.Mutex
	// cache maps a key name to its *cachedPolicy.
	cache sync.Map

	// rand is the source of key material, nonces and random bytes; nil
	// means crypto/rand. Tests set it (before any concurrent use) to make
	// known-answer tests possible. ECDSA and RSA key generation always use
	// crypto/rand.
	rand io.Reader
}

// state is what Setup received.
type state struct {
	storage storage.Storage
	now     func() time.Time
	logger  *slog.Logger
}

// New returns an unconfigured transit engine; register it as type "transit".
func New() framework.Engine { return &Backend{} }

var (
	_ framework.Engine    = (*Backend)(nil)
	_ framework.Scheduler = (*Backend)(nil)
)

// Setup prepares the engine for a mount. It may be called again; the last
// call wins and the parsed-key cache is dropped.
func (b *Backend) Setup(_ context.Context, env framework.Env) error {
	if env.Storage == nil {
		return core.Errorf(core.CodeInternal, "transit: setup without storage")
	}
	st := &state{storage: env.Storage, now: env.Now, logger: env.Logger}
	if st.now == nil {
		st.now = time.Now
	}
	if st.logger == nil {
		st.logger = slog.New(slog.DiscardHandler)
	}
	b.clearCache()
	b.st.Store(st)
	return nil
}

// Close drops the parsed keys held in memory. It may be called any number
// of times.
func (b *Backend) Close(context.Context) error {
	b.clearCache()
	return nil
}

func (b *Backend) clearCache() {
	b.cache.Range(func(k, _ any) bool {
		b.cache.Delete(k)
		return true
	})
}

// Routes returns the engine's paths, relative to the mount.
func (b *Backend) Routes() []framework.Route {
	return []framework.Route{
		b.autoRotateScanRoute(),
		b.autoRotateKeyRoute(),
		b.keysListRoute(),
		b.keyConfigRoute(),
		b.keyRotateRoute(),
		b.keyTrimRoute(),
		b.keysRoute(),
		b.encryptRoute(),
		b.decryptRoute(),
		b.rewrapRoute(),
		b.datakeyRoute(),
		b.randomRoute(),
		b.hashRoute(),
		b.hmacRoute(),
		b.signRoute(),
		b.verifyRoute(),
		b.exportRoute(),
	}
}

// state returns the Setup state, or an unavailable error before Setup.
func (b *Backend) state() (*state, error) {
	st := b.st.Load()
	if st == nil {
		return nil, core.Errorf(core.CodeUnavailable, "transit: engine is not set up")
	}
	return st, nil
}

// randReader returns the engine's randomness source.
func (b *Backend) randReader() io.Reader {
	if b.rand != nil {
		return b.rand
	}
	return rand.Reader
}

// lock returns the lock guarding changes to the named key.
func (b *Backend) lock(name string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return &b.locks[h.Sum32()%lockCount]
}

// nameField is the schema of the key name captured from the path.
func nameField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeString, Description: "Name of the key."}
}
