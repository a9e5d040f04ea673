package transit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // registers crypto.SHA1 for sign/verify/hmac
	_ "crypto/sha256"
	_ "crypto/sha3" // registers crypto.SHA3_*
	_ "crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core"
)

// signHashes are the hash_algorithm values sign, verify and hmac accept.
// "none" (signing only) is crypto.Hash(0).
var signHashes = map[string]crypto.Hash{
	"sha1":     crypto.SHA1,
	"sha2-224": crypto.SHA224,
	"sha2-256": crypto.SHA256,
	"sha2-384": crypto.SHA384,
	"sha2-512": crypto.SHA512,
	"sha3-224": crypto.SHA3_224,
	"sha3-256": crypto.SHA3_256,
	"sha3-384": crypto.SHA3_384,
	"sha3-512": crypto.SHA3_512,
	"none":     0,
}

// signOptions are the knobs of sign and verify.
type signOptions struct {
	hash       crypto.Hash // 0 = none (prehashed PKCS#1 v1.5 only)
	prehashed  bool
	rsaAlg     string // "pss" or "pkcs1v15"
	saltLength int    // rsa.PSSSaltLengthAuto, rsa.PSSSaltLengthEqualsHash or a length
	jws        bool   // marshaling_algorithm=jws
}

// parseSaltLength reads salt_length: "auto", "hash" or a byte count.
func parseSaltLength(s string) (int, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return rsa.PSSSaltLengthAuto, nil
	case "hash":
		return rsa.PSSSaltLengthEqualsHash, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, core.Invalid("salt length neither 'auto', 'hash', nor an int: %s", s)
	}
	if n < rsa.PSSSaltLengthEqualsHash {
		return 0, core.Invalid("salt length is invalid: %d", n)
	}
	return n, nil
}

// digest returns what the key signs: the input itself for Ed25519 and for
// prehashed input, otherwise its hash.
func (p *policy) digest(input []byte, o signOptions) []byte {
	if !p.Type.hashesInput() || o.prehashed || o.hash == 0 {
		return input
	}
	h := o.hash.New()
	h.Write(input)
	return h.Sum(nil)
}

// ecSig is an ECDSA signature's ASN.1 shape.
type ecSig struct{ R, S *big.Int }

// sign signs input with version ver (0 = latest). It returns the
// "vault:v<N>:..." signature, the version used and, for derived Ed25519
// keys, the derived public key. Errors about the request are CodeInvalid.
func (p *policy) sign(ver int, context, input []byte, o signOptions) (string, int, []byte, error) {
	if !p.Type.signing() {
		return "", 0, nil, core.Invalid("key type %s does not support signing", p.Type)
	}
	ver, err := p.writeVersion(ver, "signing")
	if err != nil {
		return "", 0, nil, err
	}
	e, err := p.entry(ver)
	if err != nil {
		return "", 0, nil, err
	}
	digest := p.digest(input, o)
	var sig, pub []byte
	switch {
	case p.Type.isECDSA():
		if sig, err = ecdsa.SignASN1(rand.Reader, e.ec, digest); err != nil {
			return "", 0, nil, core.Invalid("failed to sign: %v", err)
		}
		if o.jws {
			var s ecSig
			if _, err := asn1.Unmarshal(sig, &s); err != nil {
				return "", 0, nil, core.Errorf(core.CodeInternal, "transit: re-encode signature: %w", err)
			}
			n := (p.Type.curve().Params().BitSize + 7) / 8
			sig = make([]byte, 2*n)
			s.R.FillBytes(sig[:n])
			s.S.FillBytes(sig[n:])
		}
	case p.Type == typeEd25519:
		priv, err := p.ed25519Key(ver, context)
		if err != nil {
			return "", 0, nil, err
		}
		sig = ed25519.Sign(priv, input)
		if p.Derived {
			pub = priv.Public().(ed25519.PublicKey)
		}
	case p.Type.isRSA():
		switch o.rsaAlg {
		case "pss":
			if o.hash == 0 {
				return "", 0, nil, core.Invalid("hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15")
			}
			if maxSalt := (e.rsa.N.BitLen()-1+7)/8 - 2 - o.hash.Size(); o.saltLength > maxSalt {
				return "", 0, nil, core.Invalid("requested salt length %d is invalid", o.saltLength)
			}
			sig, err = rsa.SignPSS(rand.Reader, e.rsa, o.hash, digest, &rsa.PSSOptions{SaltLength: o.saltLength})
		case "pkcs1v15":
			sig, err = rsa.SignPKCS1v15(rand.Reader, e.rsa, o.hash, digest)
		default:
			return "", 0, nil, core.Invalid("unsupported rsa signature algorithm %s", o.rsaAlg)
		}
		if err != nil {
			return "", 0, nil, core.Invalid("failed to sign: %v", err)
		}
	}
	enc := base64.StdEncoding
	if o.jws {
		enc = base64.RawURLEncoding
	}
	return prefix(ver) + enc.EncodeToString(sig), ver, pub, nil
}

// verify checks a "vault:v<N>:..." signature over input. A well-formed
// signature that does not match is (false, nil); malformed signatures and
// versions below min_decryption_version are CodeInvalid errors.
func (p *policy) verify(signature string, context, input []byte, o signOptions) (bool, error) {
	if !p.Type.signing() {
		return false, core.Invalid("key type %s does not support verification", p.Type)
	}
	ver, payload, err := parseVersioned(signature, "signature")
	if err != nil {
		return false, err
	}
	if err := p.checkReadable(ver, "signature"); err != nil {
		return false, err
	}
	enc := base64.StdEncoding
	if o.jws {
		enc = base64.RawURLEncoding
	}
	sig, err := enc.DecodeString(payload)
	if err != nil {
		return false, core.Invalid("invalid base64 signature value")
	}
	e, err := p.entry(ver)
	if err != nil {
		return false, err
	}
	digest := p.digest(input, o)
	switch {
	case p.Type.isECDSA():
		if o.jws {
			n := (p.Type.curve().Params().BitSize + 7) / 8
			if len(sig) != 2*n {
				return false, nil
			}
			der, err := asn1.Marshal(ecSig{R: new(big.Int).SetBytes(sig[:n]), S: new(big.Int).SetBytes(sig[n:])})
			if err != nil {
				return false, core.Errorf(core.CodeInternal, "transit: encode signature: %w", err)
			}
			sig = der
		}
		return ecdsa.VerifyASN1(&e.ec.PublicKey, digest, sig), nil
	case p.Type == typeEd25519:
		priv, err := p.ed25519Key(ver, context)
		if err != nil {
			return false, err
		}
		return ed25519.Verify(priv.Public().(ed25519.PublicKey), input, sig), nil
	default: // RSA
		switch o.rsaAlg {
		case "pss":
			if o.hash == 0 {
				return false, core.Invalid("hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15")
			}
			return rsa.VerifyPSS(&e.rsa.PublicKey, o.hash, digest, sig, &rsa.PSSOptions{SaltLength: o.saltLength}) == nil, nil
		case "pkcs1v15":
			return rsa.VerifyPKCS1v15(&e.rsa.PublicKey, o.hash, digest, sig) == nil, nil
		}
		return false, core.Invalid("unsupported rsa signature algorithm %s", o.rsaAlg)
	}
}
