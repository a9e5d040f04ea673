// Package tools serves Vault's general-purpose tools, random bytes and
// hashing, in the shapes of both sys/tools/ and the transit engine, which
// share them.
package tools

import (
	"context"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strconv"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// MaxRandomBytes caps random/:bytes, as Vault's API does.
const MaxRandomBytes = 128 * 1024

// RandomRoute serves random bytes at pattern (e.g. "random" in transit,
// "tools/random" in sys/), with Vault's optional /:source and /:bytes path
// segments. rand is the entropy source (crypto/rand.Reader in production).
func RandomRoute(pattern string, rand func() io.Reader) framework.Route {
	return framework.Route{
		Pattern: pattern + "(/" + framework.GenericNameRegex("source") + ")?(/" + framework.GenericNameRegex("urlbytes") + ")?",
		Fields: map[string]*framework.FieldSchema{
			"source":   {Type: framework.TypeString, Default: "platform", Description: `Entropy source: "platform", "seal" or "all" (all are the platform source here).`},
			"urlbytes": {Type: framework.TypeString, Description: "Number of bytes, from the path."},
			"bytes":    {Type: framework.TypeInt, Default: 32, Description: "Number of bytes (default 32)."},
			"format":   {Type: framework.TypeString, Default: "base64", Description: `"base64" or "hex".`},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: random(rand)},
		Help:       "Generate random bytes.",
	}
}

// random handles random, random/:bytes, random/:source and
// random/:source/:bytes. A single path segment is a source when it names
// one, else a byte count — Vault's parsing.
func random(rand func() io.Reader) framework.HandlerFunc {
	return func(_ context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
		source, urlBytes, n := d.String("source"), d.String("urlbytes"), d.Int("bytes")
		switch {
		case urlBytes != "":
			v, err := strconv.Atoi(urlBytes)
			if err != nil {
				return nil, core.Invalid("error parsing url-set byte count: %v", err)
			}
			n = v
		case source == "":
			source = "platform"
		case source != "platform" && source != "seal" && source != "all":
			v, err := strconv.Atoi(source)
			if err != nil {
				return nil, core.Invalid("unsupported entropy source %q; must be \"platform\" or \"seal\", or \"all\"", source)
			}
			n, source = v, "platform"
		}
		switch {
		case n < 1:
			return nil, core.Invalid(`"bytes" cannot be less than 1`)
		case n > MaxRandomBytes:
			return nil, core.Invalid(`"bytes" should be less than %d`, MaxRandomBytes)
		}
		format := d.String("format")
		if format != "hex" && format != "base64" {
			return nil, core.Invalid("unsupported encoding format %q; must be \"hex\" or \"base64\"", format)
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(rand(), buf); err != nil {
			return nil, fmt.Errorf("random: %w", err)
		}
		resp := &core.Response{Data: map[string]any{"random_bytes": encode(buf, format)}}
		if source == "seal" {
			resp.AddWarning("no seal/entropy augmentation available, using platform entropy source")
		}
		return resp, nil
	}
}

// encode renders b as hex or standard base64.
func encode(b []byte, format string) string {
	if format == "hex" {
		return hex.EncodeToString(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// hashFuncs are the algorithms of hash/:algorithm.
var hashFuncs = map[string]func() hash.Hash{
	"sha2-224": sha256.New224,
	"sha2-256": sha256.New,
	"sha2-384": sha512.New384,
	"sha2-512": sha512.New,
	"sha3-224": func() hash.Hash { return sha3.New224() },
	"sha3-256": func() hash.Hash { return sha3.New256() },
	"sha3-384": func() hash.Hash { return sha3.New384() },
	"sha3-512": func() hash.Hash { return sha3.New512() },
}

// HashRoute serves hashing of base64 input at pattern (e.g. "hash" in
// transit, "tools/hash" in sys/), with Vault's optional /:algorithm segment.
func HashRoute(pattern string) framework.Route {
	return framework.Route{
		Pattern: pattern + "(/" + framework.GenericNameRegex("urlalgorithm") + ")?",
		Fields: map[string]*framework.FieldSchema{
			"urlalgorithm": {Type: framework.TypeString, Description: "Hash algorithm, from the path."},
			"algorithm":    {Type: framework.TypeString, Default: "sha2-256", Description: "sha2-224, sha2-256, sha2-384, sha2-512, sha3-224, sha3-256, sha3-384 or sha3-512."},
			"input":        {Type: framework.TypeString, Description: "Base64 input."},
			"format":       {Type: framework.TypeString, Default: "hex", Description: `"hex" or "base64".`},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: hashInput},
		Help:       "Hash base64 input.",
	}
}

// hash handles hash(/:algorithm).
func hashInput(_ context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	input, err := base64.StdEncoding.DecodeString(d.String("input"))
	if err != nil {
		return nil, core.Invalid("unable to decode input as base64: %v", err)
	}
	format := d.String("format")
	if format != "hex" && format != "base64" {
		return nil, core.Invalid("unsupported encoding format %s; must be \"hex\" or \"base64\"", format)
	}
	algorithm := d.String("urlalgorithm")
	if algorithm == "" {
		algorithm = d.String("algorithm")
	}
	newHash, ok := hashFuncs[algorithm]
	if !ok {
		return nil, core.Invalid("unsupported algorithm %s", algorithm)
	}
	h := newHash()
	h.Write(input)
	return &core.Response{Data: map[string]any{"sum": encode(h.Sum(nil), format)}}, nil
}
