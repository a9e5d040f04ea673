//go:build compat

package compat

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestCLI runs the README's commands with the compatibility CLI against a
// real (non-dev) Vigil server: init and unseal with key shares, then every
// engine and auth method the README shows, plus SSH and TOTP.
func TestCLI(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "vigil.hcl")
	if err := os.WriteFile(cfg, []byte(`
storage "raft" {
  path    = "`+filepath.Join(dir, "raft")+`"
  node_id = "compat-1"
}
listener "tcp" {
  address     = "`+addr+`"
  tls_disable = true
}
audit "file" "primary" {
  path = "`+filepath.Join(dir, "audit.log")+`"
}
audit_settings {
  allow_api_changes = true
  allowed_dirs      = ["`+dir+`"]
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	startVigil(t, addr, "server", "-config", cfg)
	c := &cli{t: t, bin: compatBin(t), addr: "http://" + addr}

	// Running a real server: init with 5 shares, threshold 3, unseal thrice.
	init := c.jsonOut("operator", "init", "-key-shares=5", "-key-threshold=3", "-format=json")
	keys, _ := init["unseal_keys_b64"].([]any)
	if len(keys) != 5 {
		t.Fatalf("operator init: %v", init)
	}
	for i := 0; i < 3; i++ {
		c.ok([]string{"operator", "unseal", str(keys[i])})
	}
	c.ok([]string{"status"}, "Sealed", "false")
	c.token = str(init["root_token"])

	// Quick start: KV v2.
	c.ok([]string{"secrets", "enable", "-path=secret", "-version=2", "kv"})
	c.ok([]string{"kv", "put", "secret/db", "password=s3cr3t"}, "version")
	c.ok([]string{"kv", "get", "secret/db"}, "password", "s3cr3t")
	if got := strings.TrimSpace(c.ok([]string{"kv", "get", "-field=password", "secret/db"})); got != "s3cr3t" {
		t.Fatalf("kv get -field: %q", got)
	}
	c.ok([]string{"kv", "metadata", "put", "-custom-metadata=phi=true", "secret/ward/7"})
	c.ok([]string{"kv", "metadata", "get", "secret/ward/7"}, "phi")

	// Policies and tokens.
	if _, errOut, code := c.run(`path "secret/data/db" { capabilities = ["read"] }`, "policy", "write", "app", "-"); code != 0 {
		t.Fatalf("policy write: %s", errOut)
	}
	c.ok([]string{"policy", "read", "app"}, "secret/data/db")
	tok := c.jsonOut("token", "create", "-policy=app", "-ttl=1h", "-format=json")
	appToken := str(tok["auth"].(map[string]any)["client_token"])
	app := &cli{t: t, bin: c.bin, addr: c.addr, token: appToken}
	app.ok([]string{"kv", "get", "-field=password", "secret/db"}, "s3cr3t")
	if _, _, code := app.run("", "kv", "put", "secret/db", "password=x"); code == 0 {
		t.Fatal("a read-only token wrote")
	}
	c.ok([]string{"token", "lookup", appToken}, "app")

	// Transit.
	c.ok([]string{"secrets", "enable", "transit"})
	c.ok([]string{"write", "-f", "transit/keys/orders"})
	plain := base64.StdEncoding.EncodeToString([]byte("4111 1111 1111 1111"))
	ct := strings.TrimSpace(c.ok([]string{"write", "-field=ciphertext", "transit/encrypt/orders", "plaintext=" + plain}, "vault:v1:"))
	if got := strings.TrimSpace(c.ok([]string{"write", "-field=plaintext", "transit/decrypt/orders", "ciphertext=" + ct})); got != plain {
		t.Fatalf("transit round trip: %q", got)
	}

	// PKI.
	c.ok([]string{"secrets", "enable", "pki"})
	c.ok([]string{"secrets", "tune", "-max-lease-ttl=87600h", "pki"})
	c.ok([]string{"write", "pki/root/generate/internal", "common_name=example.com", "ttl=87600h"}, "BEGIN CERTIFICATE")
	c.ok([]string{"write", "pki/roles/web", "allowed_domains=example.com", "allow_subdomains=true", "max_ttl=72h"})
	c.ok([]string{"write", "pki/issue/web", "common_name=www.example.com", "ttl=24h"}, "private_key", "serial_number")

	// Database: a real PostgreSQL user, leased, then revoked.
	pg, err := url.Parse(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	// rotate-root below changes the configured user's password: give the
	// engine a user of its own, never the shared administrator.
	rootUser, rootPW := scratchAdmin(t, pg)
	c.ok([]string{"secrets", "enable", "database"})
	c.ok([]string{"write", "database/config/app", "plugin_name=postgresql-database-plugin",
		"connection_url=postgresql://{{username}}:{{password}}@" + pg.Host + pg.Path + "?sslmode=disable",
		"username=" + rootUser, "password=" + rootPW, "allowed_roles=readonly"})
	c.ok([]string{"write", "database/roles/readonly", "db_name=app", "default_ttl=1h", "max_ttl=24h",
		`creation_statements=CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`})
	c.revokeAllCreds()
	creds := c.jsonOut("read", "-format=json", "database/creds/readonly")
	leaseID := str(creds["lease_id"])
	if !strings.HasPrefix(leaseID, "database/creds/readonly/") {
		t.Fatalf("creds: %v", creds)
	}
	c.ok([]string{"lease", "lookup", leaseID}, "expire_time")
	c.ok([]string{"lease", "renew", leaseID}, leaseID)
	c.ok([]string{"lease", "revoke", leaseID})
	c.ok([]string{"write", "-f", "database/rotate-root/app"})

	// Auth methods.
	c.ok([]string{"auth", "enable", "userpass"})
	c.ok([]string{"write", "auth/userpass/users/alice", "password=pw-alice", "token_policies=app"})
	login := &cli{t: t, bin: c.bin, addr: c.addr}
	login.ok([]string{"login", "-method=userpass", "-no-store", "username=alice", "password=pw-alice"}, "token_policies", "app")
	c.ok([]string{"auth", "list"}, "userpass/", "token/")
	c.ok([]string{"auth", "enable", "approle"})
	c.ok([]string{"write", "auth/approle/role/ci", "token_policies=app"})
	c.ok([]string{"read", "auth/approle/role/ci/role-id"}, "role_id")

	// Audit devices.
	c.ok([]string{"audit", "list"}, "primary")
	c.ok([]string{"audit", "enable", "-path=second", "file", "file_path=" + filepath.Join(dir, "audit2.log")})
	c.ok([]string{"audit", "list"}, "second/")

	// Mount options and tuning.
	c.ok([]string{"secrets", "enable", "-path=phi", "-options=phi=true", "-options=version=2", "kv"})
	c.ok([]string{"secrets", "tune", "-options=regulated=true", "phi/"})
	c.ok([]string{"secrets", "list", "-detailed"}, "phi/", "regulated")

	// Unsupported engines are refused naming what exists.
	if _, errOut, code := c.run("", "secrets", "enable", "kubernetes"); code == 0 || !strings.Contains(errOut, "supports secrets engines") {
		t.Fatalf("enable kubernetes: exit %d: %s", code, errOut)
	}

	// SSH: a CA, a role, a signed key.
	c.ok([]string{"secrets", "enable", "-path=ssh-client-signer", "ssh"})
	c.ok([]string{"write", "ssh-client-signer/config/ca", "generate_signing_key=true", "key_type=ed25519"}, "public_key")
	c.ok([]string{"write", "ssh-client-signer/roles/dev", "key_type=ca", "allow_user_certificates=true", "allowed_users=alice", "default_user=alice", "ttl=30m"})
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sp, _ := ssh.NewPublicKey(pub)
	keyFile := filepath.Join(dir, "id.pub")
	if err := os.WriteFile(keyFile, ssh.MarshalAuthorizedKey(sp), 0o600); err != nil {
		t.Fatal(err)
	}
	signed := c.ok([]string{"write", "-field=signed_key", "ssh-client-signer/sign/dev", "public_key=@" + keyFile}, "ssh-ed25519-cert-v01@openssh.com")
	if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(signed)); err != nil {
		t.Fatalf("signed key: %v", err)
	} else if cert := k.(*ssh.Certificate); cert.ValidPrincipals[0] != "alice" {
		t.Fatalf("principals %v", cert.ValidPrincipals)
	}
	c.ok([]string{"read", "-field=public_key", "ssh-client-signer/config/ca"}, "ssh-ed25519")

	// TOTP: generate a key, read a code, validate it.
	c.ok([]string{"secrets", "enable", "totp"})
	c.ok([]string{"write", "totp/keys/alice", "generate=true", "issuer=Vigil", "account_name=alice@example.com"}, "otpauth://totp/", "barcode")
	code := strings.TrimSpace(c.ok([]string{"read", "-field=code", "totp/code/alice"}))
	c.ok([]string{"write", "totp/code/alice", "code=" + code}, "valid", "true")
}
