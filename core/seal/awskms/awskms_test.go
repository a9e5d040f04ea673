package awskms_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/seal/awskms"
	"github.com/vigilsec/vigil/core/seal/sealtest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// MustKey creates a KMS key on the local-kms server at endpoint and returns its id.
func MustKey(tb testing.TB, endpoint, region string) string {
	tb.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		tb.Fatal(err)
	}
	c := kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(endpoint) })
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("vigil seal test " + tb.Name())})
	if err != nil {
		tb.Fatalf("local-kms CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

func factory(t *testing.T, endpoint, region, keyID string) seal.Seal {
	t.Helper()
	s, err := awskms.Factory(context.Background(), seal.Options{Type: awskms.Type, Values: map[string]string{
		"endpoint": endpoint, "region": region, "kms_key_id": keyID, "access_key": "test", "secret_key": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the seal suite against a real local-kms process
// (.ci/services/localkms.sh).
func TestConformance(t *testing.T) {
	endpoint := testsvc.Env(t, "VIGIL_TEST_AWSKMS_ENDPOINT")
	region := testsvc.Env(t, "VIGIL_TEST_AWSKMS_REGION")
	key, other := MustKey(t, endpoint, region), MustKey(t, endpoint, region)
	sealtest.Run(t, sealtest.Harness{
		New:         func(t *testing.T) seal.Seal { return factory(t, endpoint, region, key) },
		OtherKey:    func(t *testing.T) seal.Seal { return factory(t, endpoint, region, other) },
		Unreachable: func(t *testing.T) seal.Seal { return factory(t, "http://127.0.0.1:1", region, key) },
		Auto:        true,
	})
}

func TestFactoryOptions(t *testing.T) {
	ctx := context.Background()
	for name, vals := range map[string]map[string]string{
		"no key":        {"region": "us-east-1"},
		"unknown key":   {"kms_key_id": "k", "kmskeyid": "typo"},
		"half a secret": {"kms_key_id": "k", "access_key": "a"},
	} {
		if _, err := awskms.Factory(ctx, seal.Options{Type: awskms.Type, Values: vals, Getenv: func(string) string { return "" }}); err == nil {
			t.Errorf("%s: accepted %v", name, vals)
		}
	}
	s, err := awskms.Factory(ctx, seal.Options{Type: awskms.Type, Values: map[string]string{}, Getenv: func(k string) string {
		return map[string]string{"VAULT_AWSKMS_SEAL_KEY_ID": "alias/x", "AWS_REGION": "eu-west-1"}[k]
	}})
	if err != nil || s.Type() != "awskms" {
		t.Fatalf("environment fallback: %v", err)
	}
}
