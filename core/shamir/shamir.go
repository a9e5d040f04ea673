// Package shamir implements Shamir's secret sharing over GF(2^8), in the share
// format HashiCorp Vault uses: each share is the polynomial values for every
// secret byte (the y bytes) followed by one byte holding the share's x
// coordinate. Shares made here combine with Vault's shamir package and vice
// versa, because both use the AES field (x^8 + x^4 + x^3 + x + 1).
//
// Field arithmetic is branch-free and table-free, so timing does not depend
// on secret bytes. Every function is safe for concurrent use; Split draws its
// randomness from crypto/rand.
package shamir

import (
	"crypto/rand"
	mrand "math/rand/v2"

	"github.com/vigilsec/vigil/core"
)

// ShareOverhead is how many bytes longer a share is than the secret: the x
// coordinate appended to every share.
const ShareOverhead = 1

// Errors returned by Combine. All carry core.CodeInvalid; compare with errors.Is.
var (
	ErrTooFewParts   = &core.Error{Code: core.CodeInvalid, Msg: "shamir: less than two parts cannot be used to reconstruct the secret"}
	ErrPartTooShort  = &core.Error{Code: core.CodeInvalid, Msg: "shamir: parts must be at least two bytes"}
	ErrPartLengths   = &core.Error{Code: core.CodeInvalid, Msg: "shamir: all parts must be the same length"}
	ErrZeroX         = &core.Error{Code: core.CodeInvalid, Msg: "shamir: part has a zero x coordinate"}
	ErrDuplicatePart = &core.Error{Code: core.CodeInvalid, Msg: "shamir: duplicate part detected"}
)

// Split divides secret into parts shares, any threshold of which recombine to
// the secret with Combine, while fewer reveal nothing about it. Each share is
// len(secret)+ShareOverhead bytes; x coordinates are random, distinct and
// non-zero. It requires a non-empty secret and 2 <= threshold <= parts <= 255,
// and otherwise returns a core.CodeInvalid error.
func Split(secret []byte, parts, threshold int) ([][]byte, error) {
	switch {
	case len(secret) == 0:
		return nil, core.Invalid("shamir: cannot split an empty secret")
	case threshold < 2:
		return nil, core.Invalid("shamir: threshold must be at least 2, got %d", threshold)
	case parts < threshold:
		return nil, core.Invalid("shamir: parts (%d) cannot be less than threshold (%d)", parts, threshold)
	case parts > 255:
		return nil, core.Invalid("shamir: parts cannot exceed 255, got %d", parts)
	}

	// A ChaCha8 stream keyed from crypto/rand is a CSPRNG; it is used only
	// to pick the x coordinates, which are not secret but should not repeat
	// across splits in a predictable way.
	var seed [32]byte
	rand.Read(seed[:]) // never returns an error; the runtime aborts instead
	perm := mrand.New(mrand.NewChaCha8(seed)).Perm(255)
	xs := make([]byte, parts)
	for i := range xs {
		xs[i] = byte(perm[i] + 1)
	}

	coeffs := make([]byte, len(secret)*(threshold-1))
	rand.Read(coeffs)
	out := split(secret, xs, threshold, coeffs)
	clear(coeffs)
	return out, nil
}

// split is the deterministic core of Split. xs holds one distinct non-zero x
// coordinate per share; coeffs holds threshold-1 coefficients per secret byte:
// byte i uses coeffs[i*(threshold-1):(i+1)*(threshold-1)] for the terms of
// degree 1 .. threshold-1. Callers guarantee the sizes.
func split(secret, xs []byte, threshold int, coeffs []byte) [][]byte {
	deg := threshold - 1
	out := make([][]byte, len(xs))
	for p, x := range xs {
		share := make([]byte, len(secret)+ShareOverhead)
		share[len(secret)] = x
		for i, s := range secret {
			share[i] = evaluate(s, coeffs[i*deg:(i+1)*deg], x)
		}
		out[p] = share
	}
	return out
}

// evaluate returns intercept + c[0]x + c[1]x^2 + ... at x, by Horner's rule.
func evaluate(intercept byte, c []byte, x byte) byte {
	var acc byte
	for i := len(c) - 1; i >= 0; i-- {
		acc = mult(acc, x) ^ c[i]
	}
	return mult(acc, x) ^ intercept
}

// Combine reconstructs a secret from shares made by Split. Given at least the
// threshold number of shares it returns the secret; given fewer it returns
// bytes unrelated to the secret (it cannot tell the difference). It returns
// ErrTooFewParts, ErrPartTooShort, ErrPartLengths, ErrZeroX or
// ErrDuplicatePart for malformed input, and never panics.
func Combine(parts [][]byte) ([]byte, error) {
	if len(parts) < 2 {
		return nil, ErrTooFewParts
	}
	n := len(parts[0])
	if n < 2 {
		return nil, ErrPartTooShort
	}
	xs := make([]byte, len(parts))
	var seen [256]bool
	for i, p := range parts {
		if len(p) != n {
			return nil, ErrPartLengths
		}
		x := p[n-1]
		if x == 0 {
			return nil, ErrZeroX
		}
		if seen[x] {
			return nil, ErrDuplicatePart
		}
		seen[x] = true
		xs[i] = x
	}

	// Lagrange interpolation at x = 0. In GF(2^8) subtraction is XOR, so the
	// basis polynomial for share i at 0 is prod_{j != i} x_j / (x_i ^ x_j).
	secret := make([]byte, n-1)
	for i, p := range parts {
		basis := byte(1)
		for j, xj := range xs {
			if j != i {
				basis = mult(basis, div(xj, xs[i]^xj))
			}
		}
		for k := range secret {
			secret[k] ^= mult(p[k], basis)
		}
	}
	return secret, nil
}

// mult multiplies a and b in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1, in
// constant time.
func mult(a, b byte) byte {
	var r byte
	for i := 7; i >= 0; i-- {
		// r = r*x (reducing when the top bit falls off) + b_i * a.
		r = (-(r >> 7) & 0x1b) ^ (r << 1) ^ (-((b >> uint(i)) & 1) & a)
	}
	return r
}

// inverse returns a^-1 = a^254 in GF(2^8), in constant time; inverse(0) is 0.
func inverse(a byte) byte {
	b := mult(a, a)   // a^2
	c := mult(a, b)   // a^3
	b = mult(c, c)    // a^6
	b = mult(b, b)    // a^12
	c = mult(b, c)    // a^15
	b = mult(b, b)    // a^24
	b = mult(b, b)    // a^48
	b = mult(b, c)    // a^63
	b = mult(b, b)    // a^126
	b = mult(a, b)    // a^127
	return mult(b, b) // a^254
}

// div returns a / b in GF(2^8); b must be non-zero.
func div(a, b byte) byte { return mult(a, inverse(b)) }
