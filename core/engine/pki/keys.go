package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"

	"github.com/vigilsec/vigil/core"
)

// Key types, as Vault names them.
const (
	keyRSA     = "rsa"
	keyEC      = "ec"
	keyEd25519 = "ed25519"
	keyAny     = "any" // roles used only for sign/:role
)

// checkKeyParams validates a key type and size and fills in Vault's default
// size (2048 for RSA, 256 for EC). allowAny permits "any" (roles). Errors are
// CodeInvalid.
func checkKeyParams(typ string, bits int, allowAny bool) (string, int, error) {
	switch typ {
	case "", keyRSA:
		switch bits {
		case 0:
			return keyRSA, 2048, nil
		case 2048, 3072, 4096, 8192:
			return keyRSA, bits, nil
		}
		return "", 0, core.Invalid("unsupported bit length for RSA key: %d", bits)
	case keyEC:
		switch bits {
		case 0:
			return keyEC, 256, nil
		case 224, 256, 384, 521:
			return keyEC, bits, nil
		}
		return "", 0, core.Invalid("unsupported bit length for EC key: %d", bits)
	case keyEd25519:
		return keyEd25519, 0, nil
	case keyAny:
		if allowAny {
			return keyAny, 0, nil
		}
	}
	if allowAny {
		return "", 0, core.Invalid("unknown key_type value %q: must be rsa, ec, ed25519 or any", typ)
	}
	return "", 0, core.Invalid("unknown key_type value %q: must be rsa, ec or ed25519", typ)
}

// generateKey makes a new private key of a checked type and size.
func generateKey(typ string, bits int) (crypto.Signer, error) {
	switch typ {
	case keyRSA:
		return rsa.GenerateKey(rand.Reader, bits)
	case keyEC:
		var c elliptic.Curve
		switch bits {
		case 224:
			c = elliptic.P224()
		case 256:
			c = elliptic.P256()
		case 384:
			c = elliptic.P384()
		case 521:
			c = elliptic.P521()
		default:
			return nil, core.Invalid("unsupported bit length for EC key: %d", bits)
		}
		return ecdsa.GenerateKey(c, rand.Reader)
	case keyEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, core.Invalid("cannot generate a key of type %q", typ)
}

// publicKeyType returns Vault's name and size of a public key ("rsa" 2048,
// "ec" 256, "ed25519" 0); typ is "" for other key kinds.
func publicKeyType(pub crypto.PublicKey) (typ string, bits int) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return keyRSA, k.N.BitLen()
	case *ecdsa.PublicKey:
		return keyEC, k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return keyEd25519, 0
	}
	return "", 0
}

// privateKeyFormats are the accepted values of private_key_format.
var privateKeyFormats = []any{"", "der", "pem", "pkcs8"}

// marshalPrivateKey encodes k as Vault returns it: with format "der" (the
// default) or "pem", RSA keys as PKCS#1, EC keys as SEC 1 and Ed25519 keys
// as PKCS#8; with "pkcs8", every key as PKCS#8. It returns the PEM text, the
// DER bytes and the private_key_type.
func marshalPrivateKey(k crypto.Signer, format string) (pemText string, der []byte, typ string, err error) {
	typ, _ = publicKeyType(k.Public())
	blockType := "PRIVATE KEY"
	switch key := k.(type) {
	case *rsa.PrivateKey:
		if format != "pkcs8" {
			der, blockType = x509.MarshalPKCS1PrivateKey(key), "RSA PRIVATE KEY"
		}
	case *ecdsa.PrivateKey:
		if format != "pkcs8" {
			der, err = x509.MarshalECPrivateKey(key)
			blockType = "EC PRIVATE KEY"
		}
	case ed25519.PrivateKey:
	default:
		return "", nil, "", fmt.Errorf("pki: unsupported private key %T", k)
	}
	if der == nil && err == nil {
		der, err = x509.MarshalPKCS8PrivateKey(k)
	}
	if err != nil {
		return "", nil, "", err
	}
	return strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}))), der, typ, nil
}

// parsePrivateKeyPEM decodes a PEM private key in PKCS#8, PKCS#1 or SEC 1.
func parsePrivateKeyPEM(s string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, fmt.Errorf("pki: no PEM private key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if sg, ok := k.(crypto.Signer); ok {
			return sg, nil
		}
		return nil, fmt.Errorf("pki: unsupported private key %T", k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("pki: cannot parse private key")
}

// pkcs8PEM encodes k as a PKCS#8 PEM block (the storage form of keys).
func pkcs8PEM(k crypto.Signer) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// subjectKeyID is the RFC 5280 §4.2.1.2 method (1) key identifier: the
// SHA-1 of the subjectPublicKey bit string.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// samePublicKey reports whether two public keys are equal.
func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// signatureAlgorithm picks the signature algorithm for a signer: Go's
// default (SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521,
// pure Ed25519) unless signature_bits asks for another hash with RSA.
func signatureAlgorithm(signer crypto.PublicKey, bits int) (x509.SignatureAlgorithm, error) {
	if bits == 0 {
		return x509.UnknownSignatureAlgorithm, nil
	}
	if _, ok := signer.(*rsa.PublicKey); !ok {
		return x509.UnknownSignatureAlgorithm, nil // fixed by the curve
	}
	switch bits {
	case 256:
		return x509.SHA256WithRSA, nil
	case 384:
		return x509.SHA384WithRSA, nil
	case 512:
		return x509.SHA512WithRSA, nil
	}
	return 0, core.Invalid("unsupported signature_bits %d: must be 256, 384 or 512", bits)
}

// newSerial returns a random, positive, non-zero 128-bit serial number.
func newSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// formatSerial renders a serial number as Vault does: lower-case hex byte
// pairs separated by colons ("1f:0a:...").
func formatSerial(n *big.Int) string {
	b := n.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}

// normalizeSerial parses a serial given as colon- or hyphen-separated hex
// pairs (either case), or as plain hex, and returns Vault's colon form. It
// returns a CodeInvalid error for anything else.
func normalizeSerial(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.ReplaceAll(t, "-", ":")
	plain := strings.ReplaceAll(t, ":", "")
	if plain == "" || len(plain) > 128 {
		return "", core.Invalid("invalid serial number %q", s)
	}
	n, ok := new(big.Int).SetString(plain, 16)
	if !ok || n.Sign() < 0 {
		return "", core.Invalid("invalid serial number %q", s)
	}
	if strings.Contains(t, ":") {
		for _, p := range strings.Split(t, ":") {
			if len(p) != 2 {
				return "", core.Invalid("invalid serial number %q: expected hex byte pairs", s)
			}
		}
	}
	return formatSerial(n), nil
}

// storageSerial is the storage form of a colon serial (hyphens, as Vault).
func storageSerial(colon string) string { return strings.ReplaceAll(colon, ":", "-") }

// colonSerial is the colon form of a storage serial.
func colonSerial(stored string) string { return strings.ReplaceAll(stored, "-", ":") }
