package itest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// clusterRetryJoin forms test clusters with retry_join blocks (false:
// with an explicit `sys/storage/raft/join` before the unseal).
var clusterRetryJoin = true

// testCluster is three (or more) `vigil server` processes on 127.0.0.1,
// each with its own ports, data folder, audit log and TLS listener (one
// test CA), formed with retry_join blocks that name every node.
type testCluster struct {
	t      testing.TB
	bin    string
	dir    string
	caFile string
	caPool *x509.CertPool
	nodes  []*clusterNode
	key    string // the single unseal key
	root   string // root token
}

// clusterNode is one node of a testCluster.
type clusterNode struct {
	id       string
	dir      string
	apiAddr  string // host:port
	cluster  string // host:port
	cfgFile  string
	auditLog string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	log    *bytes.Buffer
}

// url is the node's API URL.
func (n *clusterNode) url() string { return "https://" + n.apiAddr }

// writeClusterCA writes a CA and a certificate for 127.0.0.1 signed by it.
func writeClusterCA(t testing.TB, dir string) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for f, b := range map[string][]byte{
		caFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}),
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return caFile, certFile, keyFile, pool
}

// startCluster writes n nodes' configurations and starts every process. The
// nodes are not initialised: call init.
func startCluster(t testing.TB, n int) *testCluster { return startClusterWith(t, n, "", "node") }

// startClusterWith is startCluster with extra configuration (a seal block)
// in every node's file, and node ids prefix1..prefixN.
func startClusterWith(t testing.TB, n int, extra, prefix string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, bin: vigilBinary(t), dir: t.TempDir()}
	var certFile, keyFile string
	c.caFile, certFile, keyFile, c.caPool = writeClusterCA(t, c.dir)
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%s%d", prefix, i)
		d := filepath.Join(c.dir, id)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, &clusterNode{id: id, dir: d, apiAddr: freeAddr(t), cluster: freeAddr(t),
			auditLog: filepath.Join(d, "audit", "audit.log")})
	}
	var joins strings.Builder
	for _, o := range c.nodes {
		if !clusterRetryJoin {
			break
		}
		fmt.Fprintf(&joins, "  retry_join {\n    leader_api_addr = %q\n    leader_ca_cert_file = %q\n  }\n", o.url(), c.caFile)
	}
	for _, nd := range c.nodes {
		cfg := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = %q
  autopilot_update_interval    = "200ms"
  autopilot_reconcile_interval = "200ms"
%s}
listener "tcp" {
  address       = %q
  tls_cert_file = %q
  tls_key_file  = %q
}
api_addr      = %q
cluster_addr  = "https://%s"
disable_mlock = true
log_level     = "debug"
audit "file" "primary" {
  path = %q
}
%s
`, filepath.Join(nd.dir, "data"), nd.id, joins.String(), nd.apiAddr, certFile, keyFile, nd.url(), nd.cluster, nd.auditLog, extra)
		nd.cfgFile = filepath.Join(nd.dir, "vigil.hcl")
		if err := os.WriteFile(nd.cfgFile, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		c.start(nd)
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			c.kill(nd)
			if t.Failed() {
				t.Logf("=== %s log (tail) ===\n%s", nd.id, tail(nd.log.String(), 6000))
			}
		}
	})
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// start runs nd's process and waits until its API answers.
func (c *testCluster) start(nd *clusterNode) {
	c.t.Helper()
	nd.mu.Lock()
	nd.log = &bytes.Buffer{}
	cmd := exec.Command(c.bin, "server", "-config", nd.cfgFile)
	cmd.Stdout, cmd.Stderr = syncWriter{&nd.mu, nd.log}, syncWriter{&nd.mu, nd.log}
	if err := cmd.Start(); err != nil {
		nd.mu.Unlock()
		c.t.Fatal(err)
	}
	exited := make(chan struct{})
	nd.cmd, nd.exited = cmd, exited
	nd.mu.Unlock()
	go func() { _ = cmd.Wait(); close(exited) }()
	hc := c.httpClient()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := hc.Get(nd.url() + "/v1/sys/seal-status")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-exited:
			nd.mu.Lock()
			out := nd.log.String()
			nd.mu.Unlock()
			c.t.Fatalf("%s exited at start:\n%s", nd.id, out)
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s did not start: %v\n%s", nd.id, err, nd.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL to nd and waits for it.
func (c *testCluster) kill(nd *clusterNode) {
	nd.mu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.cmd = nil
	nd.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// signal sends sig to nd's process.
func (c *testCluster) signal(nd *clusterNode, sig syscall.Signal) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		_ = nd.cmd.Process.Signal(sig)
	}
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (c *testCluster) httpClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: c.caPool}, MaxIdleConnsPerHost: 32}}
}

// client is a vault/api client of nd with the root token.
func (c *testCluster) client(nd *clusterNode) *vaultapi.Client {
	c.t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = nd.url()
	cfg.HttpClient = c.httpClient()
	cfg.MaxRetries = 0
	cl, err := vaultapi.NewClient(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	cl.SetToken(c.root)
	return cl
}

// init initialises node1 (one key share) and unseals it.
func (c *testCluster) init() {
	c.t.Helper()
	cl := c.client(c.nodes[0])
	res, err := cl.Sys().Init(&vaultapi.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		c.t.Fatalf("init: %v", err)
	}
	c.key, c.root = res.Keys[0], res.RootToken
	c.unseal(c.nodes[0])
	c.eventually(60*time.Second, func() error { return c.isActive(c.nodes[0]) })
}

// unseal gives nd the unseal key once it knows the cluster's seal (a
// joining node knows it once its retry_join got a challenge).
func (c *testCluster) unseal(nd *clusterNode) {
	c.t.Helper()
	cl := c.client(nd)
	if !clusterRetryJoin && nd != c.nodes[0] {
		if st, err := cl.Sys().SealStatus(); err == nil && !st.Initialized {
			if _, err := cl.Sys().RaftJoin(&vaultapi.RaftJoinRequest{LeaderAPIAddr: c.active().url(), LeaderCACert: string(mustRead(c.t, c.caFile))}); err != nil {
				c.t.Fatalf("join %s: %v", nd.id, err)
			}
		}
	}
	c.eventually(60*time.Second, func() error {
		st, err := cl.Sys().SealStatus()
		if err != nil {
			return err
		}
		if !st.Initialized {
			return fmt.Errorf("%s: not initialised (no challenge yet)", nd.id)
		}
		if !st.Sealed {
			return nil
		}
		_, err = cl.Sys().Unseal(c.key)
		return err
	})
	c.eventually(90*time.Second, func() error {
		st, err := cl.Sys().SealStatus()
		if err != nil {
			return err
		}
		if st.Sealed {
			return fmt.Errorf("%s still sealed", nd.id)
		}
		return nil
	})
}

// isActive returns nil when nd is the active node.
func (c *testCluster) isActive(nd *clusterNode) error {
	resp, err := c.httpClient().Get(nd.url() + "/v1/sys/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: sys/health %d", nd.id, resp.StatusCode)
	}
	return nil
}

// active returns the active node among those running.
func (c *testCluster) active(among ...*clusterNode) *clusterNode {
	c.t.Helper()
	if len(among) == 0 {
		among = c.nodes
	}
	var found *clusterNode
	c.eventually(60*time.Second, func() error {
		for _, nd := range among {
			if c.isActive(nd) == nil {
				found = nd
				return nil
			}
		}
		return fmt.Errorf("no active node")
	})
	return found
}

// voters returns the raft configuration's voters as the active node sees it.
func (c *testCluster) voters() map[string]bool {
	c.t.Helper()
	s, err := c.client(c.active()).Logical().Read("sys/storage/raft/configuration")
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]bool{}
	conf, _ := s.Data["config"].(map[string]any)
	servers, _ := conf["servers"].([]any)
	for _, x := range servers {
		m, _ := x.(map[string]any)
		v, _ := m["voter"].(bool)
		out[fmt.Sprint(m["node_id"])] = v
	}
	return out
}

// appliedIndex is nd's raft applied index (sys/leader, node-local).
func (c *testCluster) appliedIndex(nd *clusterNode) (uint64, error) {
	resp, err := c.httpClient().Get(nd.url() + "/v1/sys/leader")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var v struct {
		Applied uint64 `json:"raft_applied_index"`
	}
	return v.Applied, json.NewDecoder(resp.Body).Decode(&v)
}

func (c *testCluster) eventually(d time.Duration, f func() error) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not reached after %v: %v", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
