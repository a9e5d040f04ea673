//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/seal/pkcs11"
	"github.com/vigilsec/vigil/core/seal/sealtest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// hsm is the SoftHSM2 token set up by .ci/services/softhsm.sh.
type hsm struct{ lib, token, pin string }

func mustHSM(t *testing.T) hsm {
	t.Helper()
	testsvc.Env(t, "SOFTHSM2_CONF")
	return hsm{testsvc.Env(t, "VIGIL_TEST_PKCS11_LIB"), testsvc.Env(t, "VIGIL_TEST_PKCS11_TOKEN"), testsvc.Env(t, "VIGIL_TEST_PKCS11_PIN")}
}

func label() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "vigil-test-" + hex.EncodeToString(b)
}

func (h hsm) seal(t *testing.T, vals map[string]string) seal.Seal {
	t.Helper()
	o := map[string]string{"lib": h.lib, "token_label": h.token, "pin": h.pin, "generate_key": "true", "mechanism": "CKM_AES_GCM"}
	for k, v := range vals {
		o[k] = v
	}
	s, err := pkcs11.Factory(context.Background(), seal.Options{Type: pkcs11.Type, Values: o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.(*pkcs11.Seal).Close() })
	return s
}

// TestConformance runs the seal suite against SoftHSM2, a real PKCS#11 module.
func TestConformance(t *testing.T) {
	h := mustHSM(t)
	key, other := label(), label()
	sealtest.Run(t, sealtest.Harness{
		New:      func(t *testing.T) seal.Seal { return h.seal(t, map[string]string{"key_label": key}) },
		OtherKey: func(t *testing.T) seal.Seal { return h.seal(t, map[string]string{"key_label": other}) },
		Unreachable: func(t *testing.T) seal.Seal {
			return h.seal(t, map[string]string{"key_label": key, "token_label": "no-such-token"})
		},
		Auto: true,
	})
}

func TestMissingKeyWithoutGenerate(t *testing.T) {
	h := mustHSM(t)
	s := h.seal(t, map[string]string{"key_label": label(), "generate_key": "false"})
	err := s.Health(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Health with a missing key and generate_key=false: %v", err)
	}
}

func TestWrongPIN(t *testing.T) {
	h := mustHSM(t)
	s := h.seal(t, map[string]string{"key_label": label(), "pin": "0000"})
	if err := s.Health(context.Background()); err == nil || !strings.Contains(err.Error(), h.token) {
		t.Fatalf("Health with a wrong PIN: %v; want an error naming the token", err)
	}
}
