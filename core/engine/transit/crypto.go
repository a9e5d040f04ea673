package transit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/vigilsec/vigil/core"
)

// Client-visible error texts shared by several operations (Vault's wording).
const (
	errTooOld         = "ciphertext or signature version is disallowed by policy (too old)"
	errMissingContext = "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key"
)

// parseVersioned splits "vault:v<N>:<payload>". what names the value in
// errors ("ciphertext", "signature"). Version 0 is read as 1, as Vault does
// for its first ciphertexts.
func parseVersioned(s, what string) (int, string, error) {
	rest, ok := strings.CutPrefix(s, "vault:v")
	if !ok {
		return 0, "", core.Invalid("invalid %s: no prefix", what)
	}
	verStr, payload, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, "", core.Invalid("invalid %s: wrong number of fields", what)
	}
	ver, err := strconv.Atoi(verStr)
	if err != nil || ver < 0 {
		return 0, "", core.Invalid("invalid %s: version number could not be decoded", what)
	}
	if ver == 0 {
		ver = 1
	}
	return ver, payload, nil
}

// checkReadable returns a CodeInvalid error unless version ver (from a
// ciphertext, signature or HMAC) may be used to decrypt or verify.
func (p *policy) checkReadable(ver int, what string) error {
	switch {
	case ver > p.LatestVersion:
		return core.Invalid("invalid %s: version is too new", what)
	case ver < p.MinDecryptionVersion:
		return core.Invalid(errTooOld)
	}
	return nil
}

// writeVersion resolves a requested version (0 = latest) for encrypting,
// signing or HMACing. A version below min_encryption_version or below
// min_decryption_version is refused: what it produced could not be
// decrypted or verified again. op names the operation in errors.
func (p *policy) writeVersion(ver int, op string) (int, error) {
	switch {
	case ver == 0:
		return p.LatestVersion, nil
	case ver < 0:
		return 0, core.Invalid("requested version for %s is negative", op)
	case ver > p.LatestVersion:
		return 0, core.Invalid("requested version for %s is higher than the latest key version", op)
	case ver < p.MinEncryptionVersion:
		return 0, core.Invalid("requested version for %s is less than the minimum encryption key version", op)
	case ver < p.MinDecryptionVersion:
		return 0, core.Invalid("requested version for %s is less than the minimum decryption key version: no such key version", op)
	}
	return ver, nil
}

// derive returns n bytes of HKDF-SHA256(secret, no salt, info=context).
func derive(secret, context []byte, n int) ([]byte, error) {
	if len(context) == 0 {
		return nil, core.Invalid(errMissingContext)
	}
	okm, err := hkdf.Key(sha256.New, secret, nil, string(context), n)
	if err != nil {
		return nil, fmt.Errorf("transit: derive key: %w", err)
	}
	return okm, nil
}

// newAEAD returns the AEAD of an AEAD key type.
func newAEAD(t keyType, key []byte) (cipher.AEAD, error) {
	if t == typeChaCha {
		return chacha20poly1305.New(key)
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// aeadFor returns the AEAD for version ver under context and, for
// convergent keys, the HMAC key that makes the nonce.
func (p *policy) aeadFor(ver int, context []byte) (cipher.AEAD, []byte, error) {
	e, err := p.entry(ver)
	if err != nil {
		return nil, nil, err
	}
	if !p.Derived {
		e.aeadOnce.Do(func() { e.aead, e.aeadErr = newAEAD(p.Type, e.Key) })
		if e.aeadErr != nil {
			return nil, nil, fmt.Errorf("transit: cipher: %w", e.aeadErr)
		}
		return e.aead, nil, nil
	}
	n := p.Type.symKeySize()
	extra := 0
	if p.ConvergentEncryption {
		extra = 32
	}
	okm, err := derive(e.Key, context, n+extra)
	if err != nil {
		return nil, nil, err
	}
	a, err := newAEAD(p.Type, okm[:n])
	if err != nil {
		return nil, nil, fmt.Errorf("transit: cipher: %w", err)
	}
	return a, okm[n:], nil
}

// encrypt encrypts plaintext with version ver (0 = latest) and returns the
// "vault:v<N>:..." ciphertext and the version used. Errors about the
// request are CodeInvalid.
func (p *policy) encrypt(ver int, context, plaintext, aad []byte, rnd io.Reader) (string, int, error) {
	if !p.Type.encryption() {
		return "", 0, core.Invalid("message encryption not supported for key type %s", p.Type)
	}
	ver, err := p.writeVersion(ver, "encryption")
	if err != nil {
		return "", 0, err
	}
	var out []byte
	switch {
	case p.Type.aead():
		a, nonceKey, err := p.aeadFor(ver, context)
		if err != nil {
			return "", 0, err
		}
		nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+a.Overhead())
		if p.ConvergentEncryption {
			m := hmac.New(sha256.New, nonceKey)
			m.Write(plaintext)
			copy(nonce, m.Sum(nil))
		} else if _, err := io.ReadFull(rnd, nonce); err != nil {
			return "", 0, fmt.Errorf("transit: nonce: %w", err)
		}
		out = a.Seal(nonce, nonce, plaintext, aad)
	case p.Type.isRSA():
		if len(aad) > 0 {
			return "", 0, core.Invalid("associated_data provided for non-AEAD cipher suite %s", p.Type)
		}
		e, err := p.entry(ver)
		if err != nil {
			return "", 0, err
		}
		out, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, &e.rsa.PublicKey, plaintext, nil)
		if err != nil {
			return "", 0, core.Invalid("failed to RSA encrypt the plaintext: %v", err)
		}
	}
	return prefix(ver) + base64.StdEncoding.EncodeToString(out), ver, nil
}

// decrypt opens a "vault:v<N>:..." ciphertext. Errors about the request
// (malformed or tampered ciphertext, versions below min_decryption_version,
// missing context) are CodeInvalid.
func (p *policy) decrypt(ciphertext string, context, aad []byte) ([]byte, error) {
	if !p.Type.encryption() {
		return nil, core.Invalid("message decryption not supported for key type %s", p.Type)
	}
	ver, payload, err := parseVersioned(ciphertext, "ciphertext")
	if err != nil {
		return nil, err
	}
	if err := p.checkReadable(ver, "ciphertext"); err != nil {
		return nil, err
	}
	blob, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil, core.Invalid("invalid ciphertext: could not decode base64")
	}
	if p.Type.isRSA() {
		if len(aad) > 0 {
			return nil, core.Invalid("associated_data provided for non-AEAD cipher suite %s", p.Type)
		}
		e, err := p.entry(ver)
		if err != nil {
			return nil, err
		}
		plain, err := rsa.DecryptOAEP(sha256.New(), rand.Reader, e.rsa, blob, nil)
		if err != nil {
			return nil, core.Invalid("failed to RSA decrypt the ciphertext: %v", err)
		}
		return plain, nil
	}
	a, _, err := p.aeadFor(ver, context)
	if err != nil {
		return nil, err
	}
	if len(blob) < nonceSize+a.Overhead() {
		return nil, core.Invalid("invalid ciphertext length")
	}
	plain, err := a.Open(nil, blob[:nonceSize], blob[nonceSize:], aad)
	if err != nil {
		return nil, core.Invalid("%s", err.Error()) // Vault's text: "cipher: message authentication failed"
	}
	return plain, nil
}

// hmacKey returns the key hmac/:name uses for version ver: the key itself
// for hmac keys, the version's separate HMAC key for the others.
func (p *policy) hmacKey(ver int) ([]byte, error) {
	e, err := p.entry(ver)
	if err != nil {
		return nil, err
	}
	if p.Type == typeHMAC {
		return e.Key, nil
	}
	return e.HMACKey, nil
}

// ed25519Key returns the private key of Ed25519 version ver, derived from
// context for derived keys.
func (p *policy) ed25519Key(ver int, context []byte) (ed25519.PrivateKey, error) {
	e, err := p.entry(ver)
	if err != nil {
		return nil, err
	}
	if !p.Derived {
		return ed25519.PrivateKey(e.Key), nil
	}
	seed, err := derive(e.Key, context, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
