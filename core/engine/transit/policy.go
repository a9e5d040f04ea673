package transit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core"
)

// policy is one named key as stored at policy/<name>. Field names follow
// Vault's key policy where they overlap. A policy returned by load is shared
// and must not be modified; loadFresh returns a private copy for writers.
type policy struct {
	Name                 string  `json:"name"`
	Type                 keyType `json:"type"`
	Derived              bool    `json:"derived"`
	KDF                  string  `json:"kdf,omitempty"` // "hkdf_sha256" when derived
	ConvergentEncryption bool    `json:"convergent_encryption"`
	ConvergentVersion    int     `json:"convergent_version,omitempty"`
	Exportable           bool    `json:"exportable"`
	AllowPlaintextBackup bool    `json:"allow_plaintext_backup"`
	DeletionAllowed      bool    `json:"deletion_allowed"`
	MinDecryptionVersion int     `json:"min_decryption_version"`
	MinEncryptionVersion int     `json:"min_encryption_version"`
	MinAvailableVersion  int     `json:"min_available_version"`
	LatestVersion        int     `json:"latest_version"`
	AutoRotatePeriod     int64   `json:"auto_rotate_period"` // seconds; 0 = never
	KeySize              int     `json:"key_size,omitempty"` // hmac keys only, bytes
	// Keys holds the retained versions (MinAvailableVersion..LatestVersion).
	Keys map[int]*keyEntry `json:"keys"`
}

// keyEntry is one version of a key.
type keyEntry struct {
	// Key is the AEAD key, the hmac-type key, or the 64-byte Ed25519
	// private key.
	Key []byte `json:"key,omitempty"`
	// HMACKey is the version's key for hmac/:name (non-hmac types).
	HMACKey []byte `json:"hmac_key,omitempty"`
	// PrivateKey is the PKCS#8 DER of an ECDSA or RSA key.
	PrivateKey   []byte    `json:"private_key,omitempty"`
	CreationTime time.Time `json:"creation_time"`

	// Parsed at load, never stored.
	ec        *ecdsa.PrivateKey
	rsa       *rsa.PrivateKey
	publicKey string // Vault's formatted public key: PEM, or base64 for Ed25519

	aeadOnce sync.Once
	aead     cipher.AEAD // for non-derived AEAD keys, built on first use
	aeadErr  error
}

// cachedPolicy is a parsed policy and the exact bytes it was parsed from.
type cachedPolicy struct {
	raw []byte
	p   *policy
}

// load returns the named key, or nil when it does not exist. The result is
// shared: callers must not modify it. It always reads storage; parsing is
// skipped when the stored bytes are those last parsed.
func (b *Backend) load(ctx context.Context, st *state, name string) (*policy, error) {
	raw, err := st.storage.Get(ctx, policyPrefix+name)
	if err != nil {
		return nil, fmt.Errorf("transit: read key %q: %w", name, err)
	}
	if raw == nil {
		b.cache.Delete(name) // drop material another instance deleted
		return nil, nil
	}
	if c, ok := b.cache.Load(name); ok {
		if cp := c.(*cachedPolicy); bytes.Equal(cp.raw, raw) {
			return cp.p, nil
		}
	}
	p, err := decodePolicy(raw)
	if err != nil {
		return nil, fmt.Errorf("transit: key %q: %w", name, err)
	}
	b.cache.Store(name, &cachedPolicy{raw: bytes.Clone(raw), p: p})
	return p, nil
}

// loadFresh returns a private, modifiable copy of the named key (nil when
// missing). Callers hold the key's lock.
func (b *Backend) loadFresh(ctx context.Context, st *state, name string) (*policy, error) {
	raw, err := st.storage.Get(ctx, policyPrefix+name)
	if err != nil {
		return nil, fmt.Errorf("transit: read key %q: %w", name, err)
	}
	if raw == nil {
		return nil, nil
	}
	p, err := decodePolicy(raw)
	if err != nil {
		return nil, fmt.Errorf("transit: key %q: %w", name, err)
	}
	return p, nil
}

// store writes p to storage. Callers hold the key's lock.
func (b *Backend) store(ctx context.Context, st *state, p *policy) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("transit: encode key %q: %w", p.Name, err)
	}
	if err := st.storage.Put(ctx, policyPrefix+p.Name, raw); err != nil {
		return fmt.Errorf("transit: write key %q: %w", p.Name, err)
	}
	b.cache.Delete(p.Name)
	return nil
}

// decodePolicy parses a stored policy and its asymmetric keys.
func decodePolicy(raw []byte) (*policy, error) {
	var p policy
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	for ver, e := range p.Keys {
		if err := e.parse(p.Type); err != nil {
			return nil, fmt.Errorf("version %d: %w", ver, err)
		}
	}
	return &p, nil
}

// parse fills the entry's parsed fields from its stored material.
func (e *keyEntry) parse(t keyType) error {
	switch {
	case t == typeEd25519:
		if len(e.Key) != ed25519.PrivateKeySize {
			return fmt.Errorf("bad ed25519 key length %d", len(e.Key))
		}
		e.publicKey = base64.StdEncoding.EncodeToString(ed25519.PrivateKey(e.Key).Public().(ed25519.PublicKey))
	case t.isECDSA() || t.isRSA():
		k, err := x509.ParsePKCS8PrivateKey(e.PrivateKey)
		if err != nil {
			return fmt.Errorf("parse private key: %w", err)
		}
		var pub crypto.PublicKey
		switch k := k.(type) {
		case *ecdsa.PrivateKey:
			e.ec, pub = k, k.Public()
		case *rsa.PrivateKey:
			e.rsa, pub = k, k.Public()
		}
		if (t.isECDSA() && e.ec == nil) || (t.isRSA() && e.rsa == nil) {
			return fmt.Errorf("private key is a %T, not a %s key", k, t)
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return fmt.Errorf("marshal public key: %w", err)
		}
		e.publicKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	return nil
}

// newPolicy returns a key with its first version, created at now.
func newPolicy(name string, t keyType, o createOptions, now time.Time, rnd io.Reader) (*policy, error) {
	p := &policy{
		Name: name, Type: t, Derived: o.derived, ConvergentEncryption: o.convergent,
		Exportable: o.exportable, AllowPlaintextBackup: o.allowPlaintextBackup,
		AutoRotatePeriod: int64(o.autoRotatePeriod / time.Second), KeySize: o.keySize,
		Keys: map[int]*keyEntry{},
	}
	if o.derived {
		p.KDF = "hkdf_sha256"
	}
	if o.convergent {
		p.ConvergentVersion = convergentVersionNow
	}
	if t == typeHMAC && p.KeySize == 0 {
		p.KeySize = hmacKeyDef
	}
	if err := p.rotate(now, rnd); err != nil {
		return nil, err
	}
	return p, nil
}

// rotate adds a new latest version created at now. Symmetric key material
// is read from rnd (AEAD or hmac key first, then the 32-byte HMAC key); an
// Ed25519 key is made from a 32-byte seed read from rnd; ECDSA and RSA keys
// come from crypto/rand.
func (p *policy) rotate(now time.Time, rnd io.Reader) error {
	e := &keyEntry{CreationTime: now.UTC()}
	read := func(n int) ([]byte, error) {
		buf := make([]byte, n)
		if _, err := io.ReadFull(rnd, buf); err != nil {
			return nil, fmt.Errorf("transit: read random bytes: %w", err)
		}
		return buf, nil
	}
	var err error
	switch t := p.Type; {
	case t.aead():
		e.Key, err = read(t.symKeySize())
	case t == typeHMAC:
		e.Key, err = read(p.KeySize)
	case t == typeEd25519:
		var seed []byte
		if seed, err = read(ed25519.SeedSize); err == nil {
			e.Key = ed25519.NewKeyFromSeed(seed)
		}
	case t.isECDSA():
		var k *ecdsa.PrivateKey
		if k, err = ecdsa.GenerateKey(t.curve(), rand.Reader); err == nil {
			e.PrivateKey, err = x509.MarshalPKCS8PrivateKey(k)
		}
	case t.isRSA():
		var k *rsa.PrivateKey
		if k, err = rsa.GenerateKey(rand.Reader, t.rsaBits()); err == nil {
			e.PrivateKey, err = x509.MarshalPKCS8PrivateKey(k)
		}
	default:
		return fmt.Errorf("transit: unsupported key type %s", t)
	}
	if err != nil {
		return fmt.Errorf("transit: generate %s key: %w", p.Type, err)
	}
	if p.Type != typeHMAC {
		if e.HMACKey, err = read(32); err != nil {
			return err
		}
	}
	if err := e.parse(p.Type); err != nil {
		return fmt.Errorf("transit: new %s key: %w", p.Type, err)
	}
	p.LatestVersion++
	p.Keys[p.LatestVersion] = e
	if p.MinDecryptionVersion == 0 {
		p.MinDecryptionVersion = 1
	}
	return nil
}

// entry returns version ver, or a CodeInvalid error when it is not retained.
func (p *policy) entry(ver int) (*keyEntry, error) {
	if e := p.Keys[ver]; e != nil {
		return e, nil
	}
	return nil, core.Invalid("no such key version")
}

// prefix is the "vault:v<N>:" prefix of version ver.
func prefix(ver int) string { return "vault:v" + strconv.Itoa(ver) + ":" }

// format renders p as Vault's key read response. For a derived Ed25519 key
// the public keys are those derived with context (empty without one).
func (p *policy) format(context []byte) (map[string]any, error) {
	data := map[string]any{
		"name":                   p.Name,
		"type":                   p.Type.String(),
		"derived":                p.Derived,
		"deletion_allowed":       p.DeletionAllowed,
		"min_available_version":  p.MinAvailableVersion,
		"min_decryption_version": p.MinDecryptionVersion,
		"min_encryption_version": p.MinEncryptionVersion,
		"latest_version":         p.LatestVersion,
		"exportable":             p.Exportable,
		"allow_plaintext_backup": p.AllowPlaintextBackup,
		"supports_encryption":    p.Type.encryption(),
		"supports_decryption":    p.Type.encryption(),
		"supports_signing":       p.Type.signing(),
		"supports_derivation":    p.Type.derivation(),
		"auto_rotate_period":     p.AutoRotatePeriod,
		"imported_key":           false,
	}
	if p.KeySize != 0 {
		data["key_size"] = p.KeySize
	}
	if p.Derived {
		data["kdf"] = p.KDF
		data["convergent_encryption"] = p.ConvergentEncryption
		if p.ConvergentEncryption {
			data["convergent_encryption_version"] = p.ConvergentVersion
		}
	}
	versions := make([]int, 0, len(p.Keys))
	for v := range p.Keys {
		if v >= p.MinDecryptionVersion {
			versions = append(versions, v)
		}
	}
	sort.Ints(versions)
	if !p.Type.signing() {
		keys := make(map[string]int64, len(versions))
		for _, v := range versions {
			keys[strconv.Itoa(v)] = p.Keys[v].CreationTime.Unix()
		}
		data["keys"] = keys
		return data, nil
	}
	keys := make(map[string]map[string]any, len(versions))
	for _, v := range versions {
		e := p.Keys[v]
		k := map[string]any{
			"public_key":        e.publicKey,
			"certificate_chain": "",
			"creation_time":     e.CreationTime.Format(time.RFC3339Nano),
		}
		switch {
		case p.Type.isECDSA():
			k["name"] = p.Type.curve().Params().Name
		case p.Type == typeEd25519:
			k["name"] = "ed25519"
			if p.Derived {
				k["public_key"] = ""
				if len(context) > 0 {
					priv, err := p.ed25519Key(v, context)
					if err != nil {
						return nil, err
					}
					k["public_key"] = base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
				}
			}
		default:
			k["name"] = p.Type.String()
		}
		keys[strconv.Itoa(v)] = k
	}
	data["keys"] = keys
	return data, nil
}
