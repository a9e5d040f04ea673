package ssh

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/pem"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// caEntry is the stored CA key pair.
type caEntry struct {
	// PrivateKey is the OpenSSH PEM encoding of the CA key.
	PrivateKey string `json:"private_key"`
	// PublicKey is the authorized_keys line (with a trailing newline).
	PublicKey string `json:"public_key"`
}

func (b *Backend) configCARoute() framework.Route {
	return framework.Route{
		Pattern: `config/ca`,
		Fields: map[string]*framework.FieldSchema{
			"private_key":          {Type: framework.TypeString, Description: "CA private key to import (OpenSSH or PKCS#1/PKCS#8 PEM)."},
			"public_key":           {Type: framework.TypeString, Description: "CA public key to import; must match private_key when both are given."},
			"generate_signing_key": {Type: framework.TypeBool, Default: true, Description: "Generate the CA key when none is imported."},
			"key_type":             {Type: framework.TypeString, Default: "ssh-rsa", Description: "Generated key type: ssh-rsa, ecdsa-sha2-nistp256/384/521, ssh-ed25519 (or rsa, ec, ed25519)."},
			"key_bits":             {Type: framework.TypeInt, Description: "Generated key size (0: 4096 for RSA, 256 for ECDSA)."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.handler(b.readCA),
			core.OpUpdate: b.handler(b.writeCA),
			core.OpDelete: b.handler(b.deleteCA),
		},
		Help: "Configure the SSH certificate authority key.",
	}
}

func (b *Backend) publicKeyRoute() framework.Route {
	return framework.Route{
		Pattern:         `public_key`,
		Unauthenticated: true,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.handler(func(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
				ca, err := st.getCA(ctx)
				if err != nil {
					return nil, err
				}
				if ca == nil {
					return nil, core.Invalid("keys haven't been configured yet")
				}
				return &core.Response{Raw: &core.RawBody{ContentType: "text/plain", Body: []byte(ca.PublicKey)}}, nil
			}),
		},
		Help: "The CA public key in authorized_keys format (for sshd's TrustedUserCAKeys).",
	}
}

func (st *state) getCA(ctx context.Context) (*caEntry, error) {
	var ca caEntry
	ok, err := storage.GetJSON(ctx, st.storage, caKey, &ca)
	if err != nil || !ok {
		return nil, err
	}
	return &ca, nil
}

// signer returns the CA's signer.
func (ca *caEntry) signer() (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey([]byte(ca.PrivateKey))
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "ssh: stored CA key does not parse: %w", err)
	}
	return s, nil
}

func (b *Backend) readCA(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	ca, err := st.getCA(ctx)
	if err != nil {
		return nil, err
	}
	if ca == nil {
		return nil, core.Invalid("keys haven't been configured yet")
	}
	return &core.Response{Data: map[string]any{"public_key": ca.PublicKey}}, nil
}

func (b *Backend) deleteCA(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	b.caMu.Lock()
	defer b.caMu.Unlock()
	return nil, st.storage.Delete(ctx, caKey)
}

// writeCA imports or generates the CA key. A configured CA is never
// replaced: it must be deleted first, as in Vault, so that a typo cannot
// silently invalidate every certificate in use.
func (b *Backend) writeCA(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.caMu.Lock()
	defer b.caMu.Unlock()
	existing, err := st.getCA(ctx)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return nil, core.Invalid("keys are already configured; delete them before reconfiguring")
	}
	privPEM, pubText := strings.TrimSpace(d.String("private_key")), strings.TrimSpace(d.String("public_key"))
	var ca *caEntry
	switch {
	case privPEM != "":
		ca, err = importCA(privPEM, pubText)
	case pubText != "":
		return nil, core.Invalid("only public_key was given: the private key is needed to sign")
	case !d.Bool("generate_signing_key"):
		return nil, core.Invalid("missing private_key and public_key, and generate_signing_key is false")
	default:
		ca, err = generateCA(b.random(), d.String("key_type"), d.Int("key_bits"))
	}
	if err != nil {
		return nil, err
	}
	if err := storage.PutJSON(ctx, st.storage, caKey, ca); err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"public_key": ca.PublicKey}}, nil
}

// importCA checks an imported key pair. Errors are CodeInvalid and never
// include key material.
func importCA(privPEM, pubText string) (*caEntry, error) {
	raw, err := ssh.ParseRawPrivateKey([]byte(privPEM))
	if err != nil {
		return nil, core.Invalid("private_key does not parse as an SSH private key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(raw)
	if err != nil {
		return nil, core.Invalid("private_key: unsupported key: %v", err)
	}
	if pubText != "" {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pubText))
		if err != nil {
			return nil, core.Invalid("public_key does not parse: %v", err)
		}
		if string(pub.Marshal()) != string(signer.PublicKey().Marshal()) {
			return nil, core.Invalid("public_key does not match private_key")
		}
	}
	return caFromKey(raw, signer)
}

// generateCA makes a new CA key of the requested type.
func generateCA(rnd io.Reader, keyType string, bits int) (*caEntry, error) {
	key, err := generateKey(rnd, keyType, bits)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "ssh: %w", err)
	}
	return caFromKey(key, signer)
}

func caFromKey(key crypto.PrivateKey, signer ssh.Signer) (*caEntry, error) {
	blk, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return nil, core.Invalid("private_key: cannot be stored: %v", err)
	}
	return &caEntry{PrivateKey: string(pem.EncodeToMemory(blk)), PublicKey: string(ssh.MarshalAuthorizedKey(signer.PublicKey()))}, nil
}

// generateKey makes an RSA, ECDSA or Ed25519 key. keyType takes Vault's
// spellings: the SSH algorithm names and the short rsa, ec, ed25519.
func generateKey(rnd io.Reader, keyType string, bits int) (crypto.PrivateKey, error) {
	switch strings.ToLower(keyType) {
	case "", "rsa", ssh.KeyAlgoRSA:
		if bits == 0 {
			bits = 4096
		}
		if bits < 2048 {
			return nil, core.Invalid("key_bits %d is too small for RSA (minimum 2048)", bits)
		}
		if bits > 8192 {
			return nil, core.Invalid("key_bits %d is too large for RSA (maximum 8192)", bits)
		}
		k, err := rsa.GenerateKey(rnd, bits)
		if err != nil {
			return nil, core.Errorf(core.CodeInternal, "ssh: generate RSA key: %w", err)
		}
		return k, nil
	case "ec", "ecdsa", ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		switch strings.ToLower(keyType) {
		case ssh.KeyAlgoECDSA256:
			bits = 256
		case ssh.KeyAlgoECDSA384:
			bits = 384
		case ssh.KeyAlgoECDSA521:
			bits = 521
		}
		var curve elliptic.Curve
		switch bits {
		case 0, 256:
			curve = elliptic.P256()
		case 384:
			curve = elliptic.P384()
		case 521:
			curve = elliptic.P521()
		default:
			return nil, core.Invalid("key_bits %d is not valid for ECDSA (256, 384 or 521)", bits)
		}
		k, err := ecdsa.GenerateKey(curve, rnd)
		if err != nil {
			return nil, core.Errorf(core.CodeInternal, "ssh: generate ECDSA key: %w", err)
		}
		return k, nil
	case "ed25519", ssh.KeyAlgoED25519:
		_, k, err := ed25519.GenerateKey(rnd)
		if err != nil {
			return nil, core.Errorf(core.CodeInternal, "ssh: generate Ed25519 key: %w", err)
		}
		return k, nil
	}
	return nil, core.Invalid("unsupported key_type %q (ssh-rsa, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, ssh-ed25519)", keyType)
}
