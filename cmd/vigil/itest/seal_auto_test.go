package itest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/testsvc"
)

// brokenSeal is a seal block that cannot unseal, and what the error must say.
type brokenSeal struct {
	name string
	hcl  string
	want []string
}

var holders3 = []string{"alice", "bob", "carol"}

// autoSealLifecycle drives a real vigil process with an auto seal: init
// with recovery keys, unseal after restart without human input (timed),
// seal on request, and a clear failure naming the seal and the cause for
// each broken variant. It returns the unseal time after restart.
func autoSealLifecycle(t *testing.T, typ, sealHCL string, broken ...brokenSeal) time.Duration {
	p := newVigilProc(t, t.TempDir())
	p.Start(sealHCL)
	st, err := p.Client.Sys().SealStatus()
	if err != nil || st.Initialized || st.Type != typ || !st.RecoverySeal {
		t.Fatalf("fresh server status = %+v, %v", st, err)
	}
	res := initAuto(t, p.Client, 3, 2, holders3)
	if len(res.Keys) != 0 || len(res.RecoveryKeys) != 3 || res.RootToken == "" {
		t.Fatalf("init: %d unseal keys, %d recovery keys, root token %q", len(res.Keys), len(res.RecoveryKeys), res.RootToken)
	}
	p.WaitUnsealed(30 * time.Second)
	st, _ = p.Client.Sys().SealStatus()
	if st.Type != typ || !st.RecoverySeal || st.RecoverySealType != "shamir" || !st.Initialized || st.Sealed || st.T != 2 || st.N != 3 {
		t.Fatalf("status after init = %+v", st)
	}
	p.Client.SetToken(res.RootToken)
	mustKVSecret(t, p.Client)

	p.Stop()
	p.Start(sealHCL)
	took := p.WaitUnsealed(60 * time.Second)
	t.Logf("%s: unsealed %s after the process started, without human input", typ, took)
	mustReadSecret(t, p.Client)

	if err := p.Client.Sys().Seal(); err != nil {
		t.Fatalf("seal: %v", err)
	}
	if st, _ := p.Client.Sys().SealStatus(); !st.Sealed {
		t.Fatal("still unsealed after sys/seal")
	}
	wantSealedRefusal(t, p.Client, "secret/data/app")

	for _, b := range broken {
		p.Stop()
		p.Start(b.hcl)
		msg := p.WaitWarning(60*time.Second, append([]string{typ + " seal: unwrap the root key"}, b.want...)...)
		t.Logf("%s, %s: %s", typ, b.name, msg)
		wantSealedRefusal(t, p.Client, "secret/data/app")
	}
	p.Stop()
	p.Start(sealHCL)
	p.WaitUnsealed(60 * time.Second)
	mustReadSecret(t, p.Client)
	return took
}

func mustKVSecret(t *testing.T, c *vaultapi.Client) {
	t.Helper()
	if err := c.Sys().Mount("secret", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatalf("mount kv: %v", err)
	}
	if _, err := c.KVv2("secret").Put(context.Background(), "app", map[string]any{"password": "s3cr3t"}); err != nil {
		t.Fatalf("write secret: %v", err)
	}
}

func mustReadSecret(t *testing.T, c *vaultapi.Client) {
	t.Helper()
	s, err := c.KVv2("secret").Get(context.Background(), "app")
	if err != nil {
		t.Fatalf("read secret: %v", err)
	}
	if s.Data["password"] != "s3cr3t" {
		t.Fatalf("secret = %v", s.Data)
	}
}

// kmsKey creates a key on local-kms.
func kmsKey(t *testing.T, endpoint, region string) string {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	c := kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(endpoint) })
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("vigil " + t.Name())})
	if err != nil {
		t.Fatalf("local-kms CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

func awskmsHCL(endpoint, region, key string, extra ...string) string {
	return fmt.Sprintf(`seal "awskms" {
  region     = %q
  endpoint   = %q
  kms_key_id = %q
  access_key = "test"
  secret_key = "test"
  %s
}`, region, endpoint, key, strings.Join(extra, "\n  "))
}

// TestSealAWSKMSProcess: the awskms seal against a real local-kms process.
func TestSealAWSKMSProcess(t *testing.T) {
	endpoint := testsvc.Env(t, "VIGIL_TEST_AWSKMS_ENDPOINT")
	region := testsvc.Env(t, "VIGIL_TEST_AWSKMS_REGION")
	key, other := kmsKey(t, endpoint, region), kmsKey(t, endpoint, region)
	autoSealLifecycle(t, "awskms", awskmsHCL(endpoint, region, key),
		brokenSeal{"KMS unreachable", awskmsHCL("http://127.0.0.1:1", region, key), []string{key, "connection refused"}},
		brokenSeal{"wrong key", awskmsHCL(endpoint, region, other), []string{other, "decrypt"}})
}

func hsmLabel() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "vigil-itest-" + hex.EncodeToString(b)
}

func pkcs11HCL(lib, token, pin, key string) string {
	return fmt.Sprintf(`seal "pkcs11" {
  lib          = %q
  token_label  = %q
  pin          = %q
  key_label    = %q
  mechanism    = "CKM_AES_GCM"
  generate_key = "true"
}`, lib, token, pin, key)
}

// TestSealPKCS11Process: the pkcs11 seal against SoftHSM2, a real PKCS#11 module.
func TestSealPKCS11Process(t *testing.T) {
	testsvc.Env(t, "SOFTHSM2_CONF")
	lib, token, pin := testsvc.Env(t, "VIGIL_TEST_PKCS11_LIB"), testsvc.Env(t, "VIGIL_TEST_PKCS11_TOKEN"), testsvc.Env(t, "VIGIL_TEST_PKCS11_PIN")
	key, other := hsmLabel(), hsmLabel()
	autoSealLifecycle(t, "pkcs11", pkcs11HCL(lib, token, pin, key),
		brokenSeal{"HSM token unavailable", pkcs11HCL(lib, "no-such-token", pin, key), []string{"no-such-token"}},
		brokenSeal{"wrong PIN", pkcs11HCL(lib, token, "0000", key), []string{token}},
		brokenSeal{"wrong key", pkcs11HCL(lib, token, pin, other), []string{other, "decrypt"}})
}
