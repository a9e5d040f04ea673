package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("v.hcl", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c
}

func wantParseError(t *testing.T, src string, parts ...string) {
	t.Helper()
	_, err := Parse("v.hcl", []byte(src))
	if err == nil {
		t.Fatalf("accepted:\n%s", src)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
}

// TestIgnoredKeysWarnWithKeyAndLine: every documented key Vigil does not
// implement loads with one warning naming it, its line and the reason.
func TestIgnoredKeysWarnWithKeyAndLine(t *testing.T) {
	c := mustParse(t, `storage "raft" {
  path = "/d"
  autopilot_upgrade_version = "1.2.3"
}
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_disable = true
  max_request_duration = "30s"
  proxy_protocol_behavior = "use_always"
  require_request_header = false
  redact_version = false
  disable_unauthed_rekey_endpoints = false
}
cache_size = 10000
plugin_directory = "/etc/vault/plugins"
`)
	want := []string{
		`v.hcl:3: storage "raft": autopilot_upgrade_version is not implemented and is ignored`,
		`v.hcl:8: listener "tcp": max_request_duration is not implemented and is ignored`,
		`v.hcl:9: listener "tcp": proxy_protocol_behavior is not implemented and is ignored`,
		`v.hcl:14: cache_size is not implemented and is ignored`,
		`v.hcl:15: plugin_directory is not implemented and is ignored: external plugins are not supported`,
	}
	if len(c.Warnings) != len(want) {
		t.Fatalf("warnings:\n%s", strings.Join(c.Warnings, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(c.Warnings[i], w) {
			t.Errorf("warning %d = %q, want prefix %q", i, c.Warnings[i], w)
		}
	}
	// Every ignored key has a reason.
	for _, table := range []map[string]string{ignoredTop, ignoredListener, ignoredRaft, ignoredTelemetry, ignoredAuditOptions} {
		for k, why := range table {
			if why == "" {
				t.Errorf("%s: no reason", k)
			}
		}
	}
}

// TestSecurityKeysRefused: keys whose being ignored would weaken security
// stop the server instead of warning.
func TestSecurityKeysRefused(t *testing.T) {
	l := func(body string) string {
		return "listener \"tcp\" {\n  tls_disable = true\n  " + body + "\n}\n"
	}
	wantParseError(t, l(`require_request_header = true`), "v.hcl:3", "require_request_header is not implemented; refusing to start")
	wantParseError(t, l(`redact_addresses = true`), "redact_addresses", "refusing")
	wantParseError(t, l(`redact_version = "true"`), "redact_version", "refusing")
	wantParseError(t, l(`x_forwarded_for_authorized_addrs = "10.0.0.0/8"`), "x_forwarded_for_authorized_addrs", "CIDR-bound tokens")
	wantParseError(t, l(`x_forwarded_for_authorized_addrs = ["10.0.0.0/8"]`), "x_forwarded_for_authorized_addrs")
	wantParseError(t, l(`disable_unauthed_rekey_endpoints = true`), "disable_unauthed_rekey_endpoints", "without a token")
	wantParseError(t, l(`disable_unauthed_generate_root_endpoints = true`), "disable_unauthed_generate_root_endpoints", "without a token")
	wantParseError(t, l("telemetry {\n    metrics_only = true\n  }"), "v.hcl:4", "metrics_only", "whole API")
	wantParseError(t, `user_lockout "userpass" {
  lockout_threshold = "25"
}`, `user_lockout "userpass"`, "lockout is not implemented")
	wantParseError(t, l(`tls_require_and_verify_client_cert = true`), "needs TLS")
	wantParseError(t, "listener \"tcp\" {\n  tls_cert_file = \"c\"\n  tls_key_file = \"k\"\n  tls_require_and_verify_client_cert = true\n}", "needs tls_client_ca_file")
	// Turned off, they load without a warning.
	c := mustParse(t, l("require_request_header = false\n redact_cluster_name = false\n x_forwarded_for_authorized_addrs = []")+`user_lockout "all" {
  disable_lockout = true
}`)
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings: %v", c.Warnings)
	}
}

func TestTyposStillFail(t *testing.T) {
	wantParseError(t, "listener \"tcp\" {\n  adress = \"x\"\n}", `v.hcl:2: unknown key "adress" in listener "tcp" block`)
	wantParseError(t, "storage \"raft\" {\n  path = \"/d\"\n  retry_join {\n    leader_addr = \"x\"\n  }\n}", `v.hcl:4: unknown key "leader_addr" in retry_join block`)
	wantParseError(t, "telemetry {\n  prometheus_retention = \"1h\"\n}", `unknown key "prometheus_retention" in telemetry block`)
	wantParseError(t, "listener \"tcp\" {\n  telemetry {\n    unauthenticated_metric_access = true\n  }\n}", `unknown key "unauthenticated_metric_access"`)
	wantParseError(t, "ui = maybe\n", "v.hcl")
	wantParseError(t, "ui = \"maybe\"\n", "expected true or false")
	wantParseError(t, "storage \"file\" {\n  path = \"/d\"\n}\n", `unsupported storage type "file"`)
	wantParseError(t, "listener \"tcp\" {\n  tls_min_version = \"tls14\"\n}", "tls_min_version")
	wantParseError(t, "listener \"tcp\" {\n  tls_cipher_suites = \"TLS_RSA_WITH_RC4_128_SHA\"\n}", "unknown or insecure cipher suite")
	wantParseError(t, "storage \"raft\" {\n  path = \"/d\"\n  performance_multiplier = 11\n}", "performance_multiplier")
	wantParseError(t, "storage \"raft\" {\n  path = \"/d\"\n  retry_join {\n    leader_ca_cert_file = \"x\"\n  }\n}", "needs leader_api_addr or auto_join")
}

func TestListenerTimeouts(t *testing.T) {
	c := mustParse(t, `listener "tcp" {
  tls_disable = true
  http_read_header_timeout = "5s"
  http_read_timeout = "30s"
  http_write_timeout = 0
  http_idle_timeout = "5m"
}`)
	l := c.Listeners[0]
	if l.ReadHeaderTimeout != 5*time.Second || l.ReadTimeout != 30*time.Second || l.WriteTimeout != -1 || l.IdleTimeout != 5*time.Minute {
		t.Fatalf("timeouts: %+v", l)
	}
	wantParseError(t, "listener \"tcp\" {\n  http_read_header_timeout = 0\n}", "cannot be 0")
	wantParseError(t, "listener \"tcp\" {\n  http_idle_timeout = \"soon\"\n}", "http_idle_timeout")
	// Served, so no warning.
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings: %v", c.Warnings)
	}
}

// default_max_request_duration bounds every request; 0 would remove the
// bound and is refused.
func TestDefaultMaxRequestDuration(t *testing.T) {
	c := mustParse(t, "default_max_request_duration = \"2m\"\n")
	if c.DefaultMaxRequestDuration != 2*time.Minute || len(c.Warnings) != 0 {
		t.Fatalf("got %v, warnings %v", c.DefaultMaxRequestDuration, c.Warnings)
	}
	wantParseError(t, "default_max_request_duration = 0\n", "v.hcl:1", "cannot be 0")
	wantParseError(t, "default_max_request_duration = \"-5s\"\n", "default_max_request_duration")
}

func TestRaftSettings(t *testing.T) {
	c := mustParse(t, `storage "raft" {
  path = "/d"
  node_id = "n1"
  raft_bind_addr = "127.0.0.1:8201"
  performance_multiplier = 5
  trailing_logs = 100
  snapshot_threshold = 200
  snapshot_interval = "30s"
  max_entry_size = 2097152
  retry_join_as_non_voter = true
  retry_join {
    auto_join = "provider=k8s label_selector=\"app=vault\""
    auto_join_scheme = "http"
    auto_join_port = 8300
  }
}`)
	s := c.Storage
	if s.PerformanceMultiplier != 5 || s.TrailingLogs != 100 || s.SnapshotThreshold != 200 || s.SnapshotInterval != 30*time.Second ||
		s.MaxEntrySize != 2<<20 || !s.RetryJoinAsNonVoter || s.Options["raft_bind_addr"].Value != "127.0.0.1:8201" {
		t.Fatalf("storage: %+v", s)
	}
	if len(s.RetryJoin) != 1 || s.RetryJoin[0].AutoJoinPort != 8300 || !strings.Contains(s.RetryJoin[0].AutoJoin, "app=vault") {
		t.Fatalf("retry_join: %+v", s.RetryJoin)
	}
}

func TestAuditBlocksBothForms(t *testing.T) {
	c := mustParse(t, `audit "file" "vigil-form" {
  path  = "/var/log/a.log"
  fsync = "always"
}
audit "file" "openbao-form/" {
  description = "declared"
  local = true
  options {
    file_path = "/var/log/b.log"
    mode      = "0600"
    filter    = "operation == \"read\""
  }
}
audit "file" "attr-form" {
  options = {
    file_path = "stdout"
  }
}
unsafe_allow_api_audit_creation = false
`)
	if len(c.Audit) != 3 {
		t.Fatalf("audit: %+v", c.Audit)
	}
	b := c.Audit[1]
	if b.Name != "openbao-form" || b.Description != "declared" || !b.Local || b.Options["file_path"].Value != "/var/log/b.log" || b.Options["mode"].Value != "0600" {
		t.Fatalf("openbao form: %+v", b)
	}
	if _, kept := b.Options["filter"]; kept || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `audit "openbao-form": filter is not implemented`) {
		t.Fatalf("filter: %v %v", b.Options, c.Warnings)
	}
	if c.Audit[2].Options["file_path"].Value != "stdout" {
		t.Fatalf("attr form: %+v", c.Audit[2])
	}
	if v, _ := c.AuditSettings.Get("allow_api_changes"); v != "false" {
		t.Fatalf("unsafe_allow_api_audit_creation did not map to allow_api_changes: %+v", c.AuditSettings)
	}
	wantParseError(t, "audit_settings {\n  allow_api_changes = true\n}\nunsafe_allow_api_audit_creation = false\n", "contradicts")
}

func TestSeals(t *testing.T) {
	c := mustParse(t, `seal "pkcs11" {
  lib = "/usr/lib/softhsm/libsofthsm2.so"
  slot = 0
  pin = "1234"
  key_label = "vigil"
  disabled = "true"
}
seal "transit" {
  address = "https://a:8200"
  tls_skip_verify = false
}`)
	if len(c.Seals) != 2 || c.Seal == nil || c.Seal.Type != "transit" || c.Seals[0].Options["slot"].Value != "0" {
		t.Fatalf("seals: %+v active %+v", c.Seals, c.Seal)
	}
	if v, _ := c.Seal.Get("tls_skip_verify"); v != "false" {
		t.Fatalf("transit options: %+v", c.Seal.Options)
	}
}

func TestLogAndPidSettings(t *testing.T) {
	c := mustParse(t, "log_format = \"json\"\npid_file = \"/run/v.pid\"\nlog_level = \"WARN\"\n")
	if c.LogFormat != "json" || c.PidFile != "/run/v.pid" || c.LogLevel != "WARN" {
		t.Fatalf("%+v", c)
	}
	wantParseError(t, "log_format = \"xml\"\n", "log_format")
	wantParseError(t, "ui = true\nui = false\n", "already set")
}

// writeCA writes a self-signed CA certificate (used as server certificate
// and client CA alike) and its key.
func writeCA(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cf, kf := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	_ = os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cf, kf
}

func TestListenerTLSConfig(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCA(t, dir)
	c := mustParse(t, `listener "tcp" {
  tls_cert_file = "`+cert+`"
  tls_key_file = "`+key+`"
  tls_client_ca_file = "`+cert+`"
  tls_require_and_verify_client_cert = true
  tls_min_version = "tls13"
  tls_max_version = "tls13"
}
listener "tcp" {
  tls_cert_file = "`+cert+`"
  tls_key_file = "`+key+`"
  tls_cipher_suites = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
}
listener "tcp" {
  tls_cert_file = "`+cert+`"
  tls_key_file = "`+key+`"
  tls_client_ca_file = "`+cert+`"
  tls_disable_client_certs = true
}
listener "tcp" {
  tls_disable = true
}
listener "tcp" {
  address = "127.0.0.1:8300"
}`)
	mtls, err := c.Listeners[0].TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if mtls.ClientAuth != tls.RequireAndVerifyClientCert || mtls.ClientCAs == nil || mtls.MinVersion != tls.VersionTLS13 || mtls.MaxVersion != tls.VersionTLS13 {
		t.Fatalf("mTLS listener: %+v", mtls)
	}
	// Without tls_client_ca_file a certificate is asked for, not verified:
	// the cert auth method verifies it.
	suites, err := c.Listeners[1].TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(suites.CipherSuites) != 2 || suites.CipherSuites[0] != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 || suites.MinVersion != tls.VersionTLS12 || suites.ClientAuth != tls.RequestClientCert {
		t.Fatalf("suites listener: %+v", suites)
	}
	off, err := c.Listeners[2].TLSConfig()
	if err != nil || off.ClientAuth != tls.NoClientCert || off.ClientCAs != nil {
		t.Fatalf("disable_client_certs: %+v %v", off, err)
	}
	if plain, err := c.Listeners[3].TLSConfig(); plain != nil || err != nil {
		t.Fatalf("tls_disable: %v %v", plain, err)
	}
	if _, err := c.Listeners[4].TLSConfig(); err == nil || !strings.Contains(err.Error(), "tls_cert_file and tls_key_file are required") {
		t.Fatalf("listener without certificate: %v", err)
	}
	bad := c.Listeners[0]
	bad.TLSClientCAFile = filepath.Join(dir, "missing.pem")
	if _, err := bad.TLSConfig(); err == nil || !strings.Contains(err.Error(), "tls_client_ca_file") {
		t.Fatalf("missing client CA file: %v", err)
	}
}

func TestUnauthenticatedMetrics(t *testing.T) {
	if mustParse(t, "listener \"tcp\" {\n tls_disable = true\n}\n").UnauthenticatedMetrics() {
		t.Fatal("metrics open by default")
	}
	if !mustParse(t, "listener \"tcp\" {\n tls_disable = true\n telemetry {\n  unauthenticated_metrics_access = true\n }\n}\n").UnauthenticatedMetrics() {
		t.Fatal("listener telemetry setting ignored")
	}
	if !mustParse(t, "telemetry {\n unauthenticated_metrics_access = true\n}\n").UnauthenticatedMetrics() {
		t.Fatal("telemetry setting ignored")
	}
}

// FuzzParse: no input crashes the parser; accepted input has a storage
// path or none, never a listener without an address.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/docs/*.*")
	for _, fn := range files {
		if strings.HasSuffix(fn, ".golden") {
			continue
		}
		if b, err := os.ReadFile(fn); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(full))
	f.Add([]byte(`{"listener":{"tcp":{"address":"x"}}}`))
	f.Add([]byte("a = \"\\u\""))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("f.hcl", src)
		if err != nil {
			return
		}
		for _, l := range c.Listeners {
			if l.Address == "" {
				t.Fatal("listener without address")
			}
		}
	})
}

// TestLogFileSettings: Vault's log_file and log_rotate_* keys are read, not
// ignored, and bad values are refused with the key named.
func TestLogFileSettings(t *testing.T) {
	c := mustParse(t, "log_file = \"/var/log/vigil/\"\nlog_rotate_bytes = 1048576\nlog_rotate_duration = \"1h\"\nlog_rotate_max_files = -1\n")
	if c.LogFile != "/var/log/vigil/" || c.LogRotateBytes != 1<<20 || c.LogRotateDuration != time.Hour || c.LogRotateMaxFiles != -1 {
		t.Fatalf("%+v", c)
	}
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings: %v", c.Warnings)
	}
	wantParseError(t, "log_rotate_bytes = \"lots\"\n", "log_rotate_bytes")
	wantParseError(t, "log_rotate_max_files = -2\n", "log_rotate_max_files")
	wantParseError(t, "log_rotate_duration = \"soon\"\n", "log_rotate_duration")
}
