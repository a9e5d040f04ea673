// Package clustertls holds the cluster's transport identity: a cluster CA
// and one certificate per node, with which the raft transport on
// cluster_addr authenticates both ends of every connection (mutual TLS).
//
// Where things live. The CA's key and every node's key and certificate are
// stored in the barrier (encrypted, replicated by raft), under
// core/cluster/tls/. A node therefore has its identity only while it is
// unsealed: its raft transport refuses every connection while sealed, as
// a Vault node with integrated storage takes no part in the cluster while
// sealed. Nothing secret is kept in plain files.
//
// Life cycle.
//
//   - Init (first unseal of a new cluster, on the leader): Ensure creates the
//     CA and the first node's certificate.
//   - Every unseal: Load reads this node's certificate (Ensure on the
//     leader also issues one for a node that has none, e.g. a cluster
//     initialised before this package existed).
//   - Join (the join protocol, sys/storage/raft/join and retry_join, is to
//     be built on these pieces): the joining node proves to the leader that
//     it may join — as in Vault, by answering a challenge that only a node
//     holding the cluster's unseal keys can read — and only then does the
//     leader call Issue for it. The answer carries the NodeCert (its key
//     included, over the API's TLS and encrypted for the challenge); the
//     joining node installs it in its raft transport, and after it has the
//     replicated state it finds the same certificate with Load at every
//     later unseal. A node removed from the cluster is Revoked: its record
//     disappears and PeerCheck refuses its certificate from then on.
//
// All functions are safe for concurrent use; they read and write only the
// storage they are given.
package clustertls

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// ServerName is the DNS name every node certificate carries and every node
// dials with: a peer is authenticated by its CA, not by its address (which
// may be a load-balanced or NATed one).
const ServerName = "cluster.vigil.internal"

// Storage keys (in the barrier).
const (
	keyCA        = "core/cluster/tls/ca"
	keyNodesPath = "core/cluster/tls/nodes/"
)

// Lifetimes.
const (
	CALifetime   = 10 * 365 * 24 * time.Hour
	NodeLifetime = 5 * 365 * 24 * time.Hour
)

// ErrNoCA is returned when the cluster has no CA yet (not initialised).
var ErrNoCA = &core.Error{Code: core.CodeNotFound, Msg: "cluster TLS: the cluster has no CA yet"}

// ErrNoNode is returned when a node has no certificate.
var ErrNoNode = &core.Error{Code: core.CodeNotFound, Msg: "cluster TLS: the node has no certificate"}

// Options carry the clock and the randomness (defaults time.Now and
// crypto/rand).
type Options struct {
	Now  func() time.Time
	Rand io.Reader
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

func (o Options) rand() io.Reader {
	if o.Rand == nil {
		return rand.Reader
	}
	return o.Rand
}

// CA is the cluster CA.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// caRecord and nodeRecord are the stored forms (PEM).
type caRecord struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

// NodeCert is one node's identity: its certificate and key, and the CA
// certificate that peers' certificates must chain to. It is what the
// leader hands a node that has proven it may join.
type NodeCert struct {
	NodeID  string `json:"node_id"`
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
	CAPEM   string `json:"ca_pem"`
}

// NewCA creates a cluster CA (ECDSA P-256, self-signed).
func NewCA(clusterName string, o Options) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), o.rand())
	if err != nil {
		return nil, err
	}
	serial, err := newSerial(o.rand())
	if err != nil {
		return nil, err
	}
	now := o.now()
	name := "Vigil cluster CA"
	if clusterName != "" {
		name += " " + clusterName
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(o.rand(), tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("cluster TLS: create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Issue creates a key and a certificate for nodeID, for both ends of a
// connection (server and client auth), with ServerName and nodeID as DNS
// names and the node ID as the subject's common name.
func (ca *CA) Issue(nodeID string, o Options) (*NodeCert, error) {
	if err := validNodeID(nodeID); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), o.rand())
	if err != nil {
		return nil, err
	}
	serial, err := newSerial(o.rand())
	if err != nil {
		return nil, err
	}
	now := o.now()
	notAfter := now.Add(NodeLifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeID},
		DNSNames:     []string{ServerName},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(o.rand(), tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("cluster TLS: issue certificate for %q: %w", nodeID, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &NodeCert{
		NodeID:  nodeID,
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		CAPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})),
	}, nil
}

// validNodeID refuses IDs that cannot be a storage key segment or a
// certificate name.
func validNodeID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/\\ \t\r\n") || id == "." || id == ".." {
		return core.Invalid("cluster TLS: invalid node id %q", id)
	}
	return nil
}

func newSerial(r io.Reader) (*big.Int, error) {
	return rand.Int(r, new(big.Int).Lsh(big.NewInt(1), 127))
}

// TLS returns the node's certificate and the pool of CAs its peers'
// certificates must chain to.
func (n *NodeCert) TLS() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.X509KeyPair([]byte(n.CertPEM), []byte(n.KeyPEM))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("cluster TLS: node %q: %w", n.NodeID, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(n.CAPEM)) {
		return tls.Certificate{}, nil, fmt.Errorf("cluster TLS: node %q: no CA certificate", n.NodeID)
	}
	return cert, pool, nil
}

// Serial is the serial number of the node's certificate.
func (n *NodeCert) Serial() (*big.Int, error) {
	b, _ := pem.Decode([]byte(n.CertPEM))
	if b == nil {
		return nil, fmt.Errorf("cluster TLS: node %q: certificate is not PEM", n.NodeID)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, err
	}
	return c.SerialNumber, nil
}

// LoadCA reads the cluster CA (ErrNoCA when there is none).
func LoadCA(ctx context.Context, s storage.Storage) (*CA, error) {
	var rec caRecord
	ok, err := storage.GetJSON(ctx, s, keyCA, &rec)
	if err != nil {
		return nil, fmt.Errorf("cluster TLS: read CA: %w", err)
	}
	if !ok {
		return nil, ErrNoCA
	}
	cb, _ := pem.Decode([]byte(rec.CertPEM))
	kb, _ := pem.Decode([]byte(rec.KeyPEM))
	if cb == nil || kb == nil {
		return nil, errors.New("cluster TLS: stored CA is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cluster TLS: stored CA: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cluster TLS: stored CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("cluster TLS: stored CA key cannot sign")
	}
	return &CA{Cert: cert, Key: signer}, nil
}

func putCA(ctx context.Context, s storage.Storage, ca *CA) error {
	kd, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return err
	}
	return storage.PutJSON(ctx, s, keyCA, caRecord{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})),
	})
}

// Load reads nodeID's certificate (ErrNoNode when it has none).
func Load(ctx context.Context, s storage.Storage, nodeID string) (*NodeCert, error) {
	if err := validNodeID(nodeID); err != nil {
		return nil, err
	}
	var n NodeCert
	ok, err := storage.GetJSON(ctx, s, keyNodesPath+nodeID, &n)
	if err != nil {
		return nil, fmt.Errorf("cluster TLS: read node %q: %w", nodeID, err)
	}
	if !ok {
		return nil, ErrNoNode
	}
	return &n, nil
}

// Issue creates and stores a certificate for nodeID with the stored CA,
// replacing any earlier one (whose certificate PeerCheck then refuses). It
// is the leader's half of a join: call it only after the node has proven
// that it may join. The result goes to the joining node.
func Issue(ctx context.Context, s storage.Storage, nodeID string, o Options) (*NodeCert, error) {
	ca, err := LoadCA(ctx, s)
	if err != nil {
		return nil, err
	}
	n, err := ca.Issue(nodeID, o)
	if err != nil {
		return nil, err
	}
	if err := storage.PutJSON(ctx, s, keyNodesPath+nodeID, n); err != nil {
		return nil, fmt.Errorf("cluster TLS: store node %q: %w", nodeID, err)
	}
	return n, nil
}

// Ensure returns nodeID's certificate, creating the CA (when the cluster has
// none) and the certificate (when the node has none). It writes, so it runs
// on the leader: at init, and at unseal for a node without a certificate.
func Ensure(ctx context.Context, s storage.Storage, clusterName, nodeID string, o Options) (*NodeCert, error) {
	n, err := Load(ctx, s, nodeID)
	if err == nil {
		return n, nil
	}
	if !errors.Is(err, ErrNoNode) {
		return nil, err
	}
	if _, err := LoadCA(ctx, s); errors.Is(err, ErrNoCA) {
		ca, err := NewCA(clusterName, o)
		if err != nil {
			return nil, err
		}
		if err := putCA(ctx, s, ca); err != nil {
			return nil, fmt.Errorf("cluster TLS: store CA: %w", err)
		}
	} else if err != nil {
		return nil, err
	}
	return Issue(ctx, s, nodeID, o)
}

// Revoke deletes nodeID's certificate record: PeerCheck refuses the
// certificate from then on. Call it when a node leaves the cluster.
func Revoke(ctx context.Context, s storage.Storage, nodeID string) error {
	if err := validNodeID(nodeID); err != nil {
		return err
	}
	return s.Delete(ctx, keyNodesPath+nodeID)
}

// PeerCheck returns a check for a peer's verified certificate (its chain to
// the CA already checked by TLS): the certificate must be the one stored for
// the node it names. A revoked node, or an older certificate of a node that
// was issued a new one, is refused.
func PeerCheck(s storage.Storage) func(cert *x509.Certificate) error {
	return func(cert *x509.Certificate) error {
		id := cert.Subject.CommonName
		n, err := Load(context.Background(), s, id)
		if err != nil {
			return fmt.Errorf("peer %q: %w", id, err)
		}
		b, _ := pem.Decode([]byte(n.CertPEM))
		if b == nil || !bytes.Equal(b.Bytes, cert.Raw) {
			return fmt.Errorf("peer %q: not the node's current cluster certificate", id)
		}
		return nil
	}
}
