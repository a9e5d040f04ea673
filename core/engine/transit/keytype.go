package transit

import (
	"crypto/elliptic"
	"sort"
)

// keyType is a transit key type, named as in Vault's API.
type keyType string

// Key types.
const (
	typeAES128           keyType = "aes128-gcm96"
	typeAES256           keyType = "aes256-gcm96"
	typeChaCha           keyType = "chacha20-poly1305"
	typeEd25519          keyType = "ed25519"
	typeP256             keyType = "ecdsa-p256"
	typeP384             keyType = "ecdsa-p384"
	typeP521             keyType = "ecdsa-p521"
	typeRSA2048          keyType = "rsa-2048"
	typeRSA3072          keyType = "rsa-3072"
	typeRSA4096          keyType = "rsa-4096"
	typeHMAC             keyType = "hmac"
	defaultType                  = typeAES256
	hmacKeyMin                   = 32  // bytes, Vault's HmacMinKeySize
	hmacKeyMax                   = 512 // bytes, Vault's HmacMaxKeySize
	hmacKeyDef                   = 32
	nonceSize                    = 12 // AEAD nonce, both GCM and ChaCha20-Poly1305
	convergentVersionNow         = 3  // Vault's convergent scheme implemented here
)

var allKeyTypes = []keyType{typeAES128, typeAES256, typeChaCha, typeEd25519, typeP256, typeP384, typeP521,
	typeRSA2048, typeRSA3072, typeRSA4096, typeHMAC}

// parseKeyType returns the key type named s, and false for an unknown name.
func parseKeyType(s string) (keyType, bool) {
	for _, t := range allKeyTypes {
		if string(t) == s {
			return t, true
		}
	}
	return "", false
}

// keyTypeNames returns the supported type names, sorted, for error messages.
func keyTypeNames() []string {
	out := make([]string, len(allKeyTypes))
	for i, t := range allKeyTypes {
		out[i] = string(t)
	}
	sort.Strings(out)
	return out
}

func (t keyType) String() string { return string(t) }

// aead reports whether t is a symmetric AEAD type.
func (t keyType) aead() bool { return t == typeAES128 || t == typeAES256 || t == typeChaCha }

// isRSA reports whether t is an RSA type.
func (t keyType) isRSA() bool { return t == typeRSA2048 || t == typeRSA3072 || t == typeRSA4096 }

// isECDSA reports whether t is an ECDSA type.
func (t keyType) isECDSA() bool { return t == typeP256 || t == typeP384 || t == typeP521 }

// encryption reports whether keys of type t encrypt and decrypt.
func (t keyType) encryption() bool { return t.aead() || t.isRSA() }

// signing reports whether keys of type t sign and verify.
func (t keyType) signing() bool { return t == typeEd25519 || t.isECDSA() || t.isRSA() }

// derivation reports whether keys of type t may be derived keys.
func (t keyType) derivation() bool { return t.aead() || t == typeEd25519 }

// hashesInput reports whether signing hashes the input first (unless the
// caller says it is prehashed). Ed25519 signs the message itself.
func (t keyType) hashesInput() bool { return t.isECDSA() || t.isRSA() }

// symKeySize is the AEAD key length in bytes (0 for other types).
func (t keyType) symKeySize() int {
	switch t {
	case typeAES128:
		return 16
	case typeAES256, typeChaCha:
		return 32
	}
	return 0
}

// rsaBits is the RSA modulus size (0 for other types).
func (t keyType) rsaBits() int {
	switch t {
	case typeRSA2048:
		return 2048
	case typeRSA3072:
		return 3072
	case typeRSA4096:
		return 4096
	}
	return 0
}

// curve is the ECDSA curve (nil for other types).
func (t keyType) curve() elliptic.Curve {
	switch t {
	case typeP256:
		return elliptic.P256()
	case typeP384:
		return elliptic.P384()
	case typeP521:
		return elliptic.P521()
	}
	return nil
}
