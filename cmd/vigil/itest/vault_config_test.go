package itest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/system"
)

// pki is a test CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type pki struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

func writePKI(t *testing.T, dir string) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name string, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kb)
	}
	p := pki{CA: write("ca.pem", "CERTIFICATE", caDER)}
	p.ServerCert, p.ServerKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	p.ClientCert, p.ClientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

// vaultStyleConfig is a production configuration as written for Vault or
// OpenBao: mutual TLS, raft with retry_join, keys Vigil ignores, OpenBao's
// declarative audit block and unauthenticated metrics on the listener.
func vaultStyleConfig(dir, addr string, p pki) string {
	return `
cluster_name  = "vault-prod"
api_addr      = "https://` + addr + `"
ui            = true
disable_mlock = true
cache_size    = 32000
log_level     = "info"
plugin_directory = "/etc/vault/plugins"
pid_file      = "` + filepath.Join(dir, "vault.pid") + `"

storage "raft" {
  path    = "` + filepath.Join(dir, "raft") + `"
  node_id = "vault-1"
  snapshot_threshold = 4096
  autopilot_reconcile_interval = "10s"
  retry_join {
    leader_api_addr     = "https://vault-2.example.com:8200"
    leader_ca_cert_file = "` + p.CA + `"
  }
}

listener "tcp" {
  address                            = "` + addr + `"
  cluster_address                    = "127.0.0.1:0"
  tls_cert_file                      = "` + p.ServerCert + `"
  tls_key_file                       = "` + p.ServerKey + `"
  tls_client_ca_file                 = "` + p.CA + `"
  tls_require_and_verify_client_cert = true
  tls_min_version                    = "tls12"
  http_idle_timeout                  = "5m"
  x_forwarded_for_reject_not_present = true
  custom_response_headers {
    "default" = {
      "Strict-Transport-Security" = ["max-age=31536000","includeSubDomains"],
    }
  }
  telemetry {
    unauthenticated_metrics_access = true
  }
}

telemetry {
  prometheus_retention_time = "24h"
  disable_hostname          = true
  statsd_address            = "127.0.0.1:8125"
}

audit "file" "declared/" {
  description = "declared in the configuration"
  options {
    file_path = "` + filepath.Join(dir, "audit.log") + `"
  }
}
`
}

func mtlsClient(t *testing.T, addr string, p pki, withCert bool) *vaultapi.Client {
	t.Helper()
	vc := vaultapi.DefaultConfig()
	vc.Address = "https://" + addr
	vc.MaxRetries = 0
	tc := &vaultapi.TLSConfig{CACert: p.CA}
	if withCert {
		tc.ClientCert, tc.ClientKey = p.ClientCert, p.ClientKey
	}
	if err := vc.ConfigureTLS(tc); err != nil {
		t.Fatal(err)
	}
	c, err := vaultapi.NewClient(vc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestVaultConfigFileServes: a Vault-style configuration loads with a
// warning per ignored key, and the server it describes works through the
// vault/api client: client certificates are required, the declared audit
// device records, metrics are open to scrapers.
func TestVaultConfigFileServes(t *testing.T) {
	dir := t.TempDir()
	p := writePKI(t, dir)
	addr := freeAddr(t)
	cfg, err := config.Parse("vault.hcl", []byte(vaultStyleConfig(dir, addr, p)))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(cfg.Warnings, "\n")
	// retry_join and autopilot_reconcile_interval are implemented: no
	// warning for them.
	for _, key := range []string{"cache_size", "plugin_directory",
		"x_forwarded_for_reject_not_present", "custom_response_headers", "statsd_address"} {
		if !strings.Contains(joined, key) {
			t.Errorf("no warning names %s:\n%s", key, joined)
		}
	}
	opts, err := wire.Options(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	if err := srv.Listen(""); err != nil {
		t.Fatal(err)
	}
	c := mtlsClient(t, addr, p, true)
	res, err := c.Sys().Init(&vaultapi.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("init with a client certificate: %v", err)
	}
	if st, err := c.Sys().Unseal(res.Keys[0]); err != nil || st.Sealed {
		t.Fatalf("unseal: %v %+v", err, st)
	}
	c.SetToken(res.RootToken)
	if err := c.Sys().Mount("kv", &vaultapi.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("kv").Put(context.Background(), "app", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	// tls_require_and_verify_client_cert: no certificate, no connection.
	if _, err := mtlsClient(t, addr, p, false).Sys().Health(); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	// The listener's telemetry block opens sys/metrics without a token.
	anon := mtlsClient(t, addr, p, true)
	anon.ClearToken()
	resp, err := anon.Logical().ReadRawWithData("sys/metrics", map[string][]string{"format": {"prometheus"}})
	if err != nil {
		t.Fatalf("metrics without a token: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte("go_goroutines")) {
		t.Fatalf("metrics body: %.200s", body)
	}
	// OpenBao's declarative audit block: the device records requests.
	logged, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil || !bytes.Contains(logged, []byte("kv/data/app")) {
		t.Fatalf("declared audit device: %v, %d bytes", err, len(logged))
	}
	if devs, err := c.Sys().ListAudit(); err != nil || devs["declared/"] == nil {
		t.Fatalf("audit devices: %v %v", devs, err)
	}
}

// TestServerBinaryWarnsAndWritesPid runs the binary on a Vault-style
// configuration: it starts, names each ignored key on standard error, and
// writes its pid file.
func TestServerBinaryWarnsAndWritesPid(t *testing.T) {
	bin := vigilBinary(t)
	dir := t.TempDir()
	p := writePKI(t, dir)
	addr := freeAddr(t)
	cfgFile := filepath.Join(dir, "vault.hcl")
	if err := os.WriteFile(cfgFile, []byte(vaultStyleConfig(dir, addr, p)), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer // written by the process's copier while the test reads it
	cmd := exec.Command(bin, "server", "-config", cfgFile)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	c := mtlsClient(t, addr, p, true)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := c.Sys().SealStatus(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	pid, err := os.ReadFile(filepath.Join(dir, "vault.pid"))
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(cmd.Process.Pid) {
		t.Fatalf("pid file: %q %v (pid %d)", pid, err, cmd.Process.Pid)
	}
	for _, want := range []string{"cache_size is not implemented and is ignored", "plugin_directory is not implemented", "statsd_address is not implemented"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	if _, err := os.Stat(filepath.Join(dir, "vault.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left behind after shutdown: %v", err)
	}
}

// TestListenerClusterAddressBindsRaft: the listener's cluster_address is
// where the node accepts cluster (raft) traffic, as in Vault.
func TestListenerClusterAddressBindsRaft(t *testing.T) {
	dir := t.TempDir()
	clusterAddr := freeAddr(t)
	cfg, err := config.Parse("vault.hcl", []byte(`
storage "raft" {
  path    = "`+filepath.Join(dir, "raft")+`"
  node_id = "n1"
}
listener "tcp" {
  address         = "127.0.0.1:0"
  cluster_address = "`+clusterAddr+`"
  tls_disable     = true
}
`))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := wire.Options(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	// A node without raft state has no leader until it is initialised (it
	// bootstraps then) or joins a cluster.
	if _, err := srv.Init(context.Background(), system.InitRequest{SecretShares: 1, SecretThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Leader(context.Background()).LeaderClusterAddress; got != clusterAddr {
		t.Fatalf("raft listens on %s, want the listener's cluster_address %s", got, clusterAddr)
	}
	conn, err := net.DialTimeout("tcp", clusterAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("nothing accepts cluster traffic at %s: %v", clusterAddr, err)
	}
	conn.Close()
}

// lockedBuffer is a bytes.Buffer safe to read while another goroutine
// writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
