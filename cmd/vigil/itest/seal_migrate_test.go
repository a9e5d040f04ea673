package itest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/testsvc"
)

// initShamir initialises a Shamir server with 3 shares, threshold 2, and
// unseals it.
func initShamir(t *testing.T, p *vigilProc) *vaultapi.InitResponse {
	t.Helper()
	res, err := p.Client.Sys().Init(&vaultapi.InitRequest{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	for _, k := range res.Keys[:2] {
		if _, err := p.Client.Sys().Unseal(k); err != nil {
			t.Fatalf("unseal: %v", err)
		}
	}
	p.WaitUnsealed(10 * time.Second)
	p.Client.SetToken(res.RootToken)
	return res
}

func migrateKey(t *testing.T, p *vigilProc, key string) *vaultapi.SealStatusResponse {
	t.Helper()
	st, err := p.Client.Sys().UnsealWithOptions(&vaultapi.UnsealOpts{Key: key, Migrate: true})
	if err != nil {
		t.Fatalf("unseal -migrate: %v", err)
	}
	return st
}

// cliMigrate runs `vigil operator unseal -migrate KEY` against p.
func cliMigrate(t *testing.T, p *vigilProc, key string) string {
	t.Helper()
	cmd := exec.Command(sealBinary(t), "operator", "unseal", "-migrate", key)
	cmd.Env = append(os.Environ(), "VIGIL_ADDR="+p.URL, "VAULT_ADDR="+p.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vigil operator unseal -migrate: %v\n%s", err, out)
	}
	return string(out)
}

// TestSealMigrationShamirAWSKMSShamir migrates a real process from Shamir
// to awskms (interrupted half-way by a crash, then resumed) and back to
// Shamir with `vigil operator unseal -migrate`; every secret stays
// readable and the same three shares serve throughout.
func TestSealMigrationShamirAWSKMSShamir(t *testing.T) {
	endpoint := testsvc.Env(t, "VIGIL_TEST_AWSKMS_ENDPOINT")
	region := testsvc.Env(t, "VIGIL_TEST_AWSKMS_REGION")
	kmsHCL := awskmsHCL(endpoint, region, kmsKey(t, endpoint, region))
	p := newVigilProc(t, t.TempDir())
	p.Start("")
	res := initShamir(t, p)
	mustKVSecret(t, p.Client)

	// Shamir → awskms.
	p.Stop()
	p.Start(kmsHCL)
	st, _ := p.Client.Sys().SealStatus()
	if !st.Sealed || !st.Migration || st.Type != "shamir" || st.T != 2 {
		t.Fatalf("status with a new seal configured = %+v", st)
	}
	if _, err := p.Client.Sys().Unseal(res.Keys[0]); err == nil || !strings.Contains(err.Error(), "migrat") {
		t.Fatalf("plain unseal during a pending migration: %v", err)
	}
	if st := migrateKey(t, p, res.Keys[0]); st.Progress != 1 || !st.Sealed {
		t.Fatalf("after one share: %+v", st)
	}
	p.Kill() // interrupted half-way
	p.Start(kmsHCL)
	st, _ = p.Client.Sys().SealStatus()
	if !st.Migration || st.Progress != 0 || !st.Sealed {
		t.Fatalf("after the crash: %+v", st)
	}
	migrateKey(t, p, res.Keys[1])
	if st := migrateKey(t, p, res.Keys[2]); st.Sealed || st.Migration || st.Type != "awskms" || !st.RecoverySeal || st.T != 2 || st.N != 3 {
		t.Fatalf("after the migration: %+v", st)
	}
	mustReadSecret(t, p.Client)
	p.Stop()
	p.Start(kmsHCL)
	took := p.WaitUnsealed(60 * time.Second)
	t.Logf("awskms after migration: unsealed %s after start", took)
	mustReadSecret(t, p.Client)

	// awskms → Shamir: the old block stays, disabled; the recovery keys
	// (the former unseal keys) are given with the CLI.
	p.Stop()
	p.Start(strings.Replace(kmsHCL, "seal \"awskms\" {", "seal \"awskms\" {\n  disabled = \"true\"", 1))
	st, _ = p.Client.Sys().SealStatus()
	if !st.Sealed || !st.Migration || st.Type != "awskms" {
		t.Fatalf("status migrating away from awskms = %+v", st)
	}
	cliMigrate(t, p, res.KeysB64[2])
	out := cliMigrate(t, p, res.Keys[0])
	if !strings.Contains(out, "false") {
		t.Logf("CLI output: %s", out)
	}
	p.WaitUnsealed(10 * time.Second)
	if st, _ := p.Client.Sys().SealStatus(); st.Type != "shamir" || st.RecoverySeal || st.T != 2 || st.N != 3 {
		t.Fatalf("after migrating back: %+v", st)
	}
	mustReadSecret(t, p.Client)

	p.Stop()
	p.Start("")
	if st, _ := p.Client.Sys().SealStatus(); !st.Sealed || st.Migration || st.Type != "shamir" {
		t.Fatalf("Shamir restart: %+v", st)
	}
	for _, k := range res.Keys[1:] {
		if _, err := p.Client.Sys().Unseal(k); err != nil {
			t.Fatal(err)
		}
	}
	mustReadSecret(t, p.Client)
}

// TestSealMigrationShamirPKCS11 migrates a real process from Shamir to the
// pkcs11 seal (SoftHSM2).
func TestSealMigrationShamirPKCS11(t *testing.T) {
	testsvc.Env(t, "SOFTHSM2_CONF")
	lib, token, pin := testsvc.Env(t, "VIGIL_TEST_PKCS11_LIB"), testsvc.Env(t, "VIGIL_TEST_PKCS11_TOKEN"), testsvc.Env(t, "VIGIL_TEST_PKCS11_PIN")
	hsmHCL := pkcs11HCL(lib, token, pin, hsmLabel())
	p := newVigilProc(t, t.TempDir())
	p.Start("")
	res := initShamir(t, p)
	mustKVSecret(t, p.Client)
	p.Stop()
	p.Start(hsmHCL)
	migrateKey(t, p, res.Keys[1])
	if st := migrateKey(t, p, res.Keys[2]); st.Sealed || st.Type != "pkcs11" || !st.RecoverySeal {
		t.Fatalf("after the migration: %+v", st)
	}
	mustReadSecret(t, p.Client)
	log, err := os.ReadFile(filepath.Join(p.dir, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"path":"sys/seal-migration".*"response":\{.*"from":"shamir".*"to":"pkcs11"`).Match(log) {
		t.Fatal("the audit log has no record of the migration")
	}
	p.Stop()
	p.Start(hsmHCL)
	p.WaitUnsealed(60 * time.Second)
	mustReadSecret(t, p.Client)
}
