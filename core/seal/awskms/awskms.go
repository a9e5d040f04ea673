// Package awskms is the "awskms" seal: the root key is encrypted with an
// AWS KMS key (or any KMS-compatible server, through endpoint), using the
// AWS SDK for Go v2. Credentials come the usual AWS way (environment,
// shared config and credentials files, instance roles) unless access_key
// and secret_key are set.
//
//	seal "awskms" {
//	  region     = "us-east-1"
//	  kms_key_id = "alias/vigil-unseal"
//	  endpoint   = "https://kms.us-east-1.amazonaws.com"   # optional
//	}
package awskms

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/vigilsec/vigil/core/seal"
)

// Type is the seal type.
const Type = "awskms"

// callTimeout bounds one KMS call, retries included.
const callTimeout = 20 * time.Second

// encryptionContext binds ciphertexts to their use.
var encryptionContext = map[string]string{"vigil:purpose": "root-key"}

// Seal wraps with a KMS key. It is safe for concurrent use.
type Seal struct {
	client *kms.Client
	keyID  string
}

var _ seal.Seal = (*Seal)(nil)

// Factory builds the seal from a config block (seal.Factory).
func Factory(ctx context.Context, o seal.Options) (seal.Seal, error) {
	if err := o.Known("region", "kms_key_id", "endpoint", "access_key", "secret_key", "session_token", "shared_credentials_file", "profile"); err != nil {
		return nil, err
	}
	keyID, err := o.Require("kms_key_id", "VAULT_AWSKMS_SEAL_KEY_ID")
	if err != nil {
		return nil, err
	}
	region := o.Get("region", "AWS_REGION", "AWS_DEFAULT_REGION")
	if region == "" {
		region = "us-east-1"
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(region),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = 4
				so.MaxBackoff = 2 * time.Second
			})
		}),
	}
	if ak, sk := o.Get("access_key"), o.Get("secret_key"); ak != "" || sk != "" {
		if ak == "" || sk == "" {
			return nil, o.Errorf("access_key and secret_key go together")
		}
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, o.Get("session_token"))))
	}
	if f := o.Get("shared_credentials_file"); f != "" {
		loadOpts = append(loadOpts, awsconfig.WithSharedCredentialsFiles([]string{f}))
	}
	if p := o.Get("profile"); p != "" {
		loadOpts = append(loadOpts, awsconfig.WithSharedConfigProfile(p))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, o.Errorf("load AWS configuration: %v", err)
	}
	endpoint := o.Get("endpoint", "AWS_KMS_ENDPOINT")
	client := kms.NewFromConfig(cfg, func(ko *kms.Options) {
		if endpoint != "" {
			ko.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &Seal{client: client, keyID: keyID}, nil
}

// Type implements seal.Seal.
func (s *Seal) Type() string { return Type }

// Wrap implements seal.Seal with KMS Encrypt.
func (s *Seal) Wrap(ctx context.Context, plaintext []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := s.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(s.keyID), Plaintext: plaintext, EncryptionContext: encryptionContext})
	if err != nil {
		return nil, fmt.Errorf("kms key %s: encrypt: %w", s.keyID, err)
	}
	// The tag binds the whole stored blob to the plaintext, so a blob
	// altered anywhere fails even where a KMS implementation ignores a part
	// of its ciphertext (the key reference, for example).
	return append(out.CiphertextBlob, tag(plaintext, out.CiphertextBlob)...), nil
}

const tagSize = sha256.Size

func tag(plaintext, ct []byte) []byte {
	m := hmac.New(sha256.New, plaintext)
	m.Write([]byte("vigil awskms blob v1"))
	m.Write(ct)
	return m.Sum(nil)
}

// Unwrap implements seal.Seal with KMS Decrypt, pinned to the configured key.
func (s *Seal) Unwrap(ctx context.Context, b []byte) ([]byte, error) {
	if len(b) <= tagSize {
		return nil, errors.New("the wrapped key is not an awskms blob")
	}
	ct, want := b[:len(b)-tagSize], b[len(b)-tagSize:]
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := s.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(s.keyID), CiphertextBlob: ct, EncryptionContext: encryptionContext})
	if err != nil {
		return nil, fmt.Errorf("kms key %s: decrypt: %w", s.keyID, err)
	}
	if !hmac.Equal(tag(out.Plaintext, ct), want) {
		clear(out.Plaintext)
		return nil, fmt.Errorf("kms key %s: the stored blob was altered", s.keyID)
	}
	return out.Plaintext, nil
}

// Health implements seal.Seal: the key must exist, be enabled and encrypt.
func (s *Seal) Health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := s.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(s.keyID)})
	if err != nil {
		return fmt.Errorf("kms key %s: describe: %w", s.keyID, err)
	}
	if m := out.KeyMetadata; m == nil || !m.Enabled || m.KeyState != types.KeyStateEnabled {
		state := "unknown"
		if m != nil {
			state = string(m.KeyState)
		}
		return fmt.Errorf("kms key %s is not enabled (state %s)", s.keyID, state)
	}
	return nil
}
