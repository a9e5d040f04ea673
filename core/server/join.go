package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/barrier"
	"github.com/vigilsec/vigil/core/clustertls"
	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/storage"
	"github.com/vigilsec/vigil/core/system"
)

// The join protocol. A node that joins a cluster must prove that it holds
// what unseals the cluster — a threshold of its Shamir unseal keys, or
// access to its auto-unseal key — before the leader gives it a cluster
// certificate and adds it to raft:
//
//  1. The joiner asks the leader's API for a challenge
//     (sys/storage/raft/bootstrap/challenge, server_id). The leader draws 32
//     random bytes, encrypts them with its keyring (barrier.Encrypt, bound to
//     the node's id) and returns them with the seal records: the seal
//     configuration, the wrapped root key and the keyring (each as stored,
//     that is encrypted). It keeps the challenge for JoinChallengeTTL.
//  2. The joiner builds a scratch barrier over those records and unseals it
//     the usual way: with the key shares an operator gives to its
//     sys/unseal, or with its auto-unseal key. Only then can it open the
//     challenge; it sends the plaintext back (bootstrap/answer, with its
//     cluster address).
//  3. The leader compares (in constant time, once: a challenge answers one
//     attempt), issues the node's cluster certificate (clustertls.Issue),
//     adds the node to raft as a non-voter (autopilot promotes it once it is
//     stable and caught up) and returns the certificate, encrypted like the
//     challenge, with the raft index the node must reach.
//  4. The joiner installs the certificate on its raft transport, waits
//     until it has applied that index (the cluster's state, keyring
//     included, has arrived) and unseals its own barrier with the same
//     keys.
//
// Both leader endpoints are audited on the leader: a refused attempt
// (unknown, expired or wrong answer) is in its chain with the error. The
// API connection is the listener's TLS (verified with leader_ca_cert).

// JoinChallengeTTL is how long a challenge can be answered.
const JoinChallengeTTL = 2 * time.Minute

// Barrier keys the join encrypts under (never stored).
const (
	joinChallengeKey = "core/cluster/join/challenge/"
	joinCertKey      = "core/cluster/join/certificate/"
)

// joinRecords are the physical records a joiner needs to unseal a scratch
// barrier with the cluster's keys.
var joinRecords = []string{seal.ConfigPath, seal.RootKeyPath, barrier.KeyringPath}

// challenge is an outstanding join challenge on the leader.
type challenge struct {
	plain   []byte
	expires time.Time
}

// joinState is the server's half of the join protocol: the leader's
// outstanding challenges and, on a joining node, the join in progress.
type joinState struct {
	mu         sync.Mutex
	challenges map[string]*challenge
	pending    *pendingJoin
}

// pendingJoin is a join this node has started and not completed.
type pendingJoin struct {
	req       system.JoinRequest
	client    *http.Client
	challenge []byte
	mem       *storage.Memory
	barrier   *barrier.Barrier
	seal      *seal.Manager
	shares    []string // given to the scratch seal, replayed into the real one
	started   time.Time
}

// --- leader side ---

// JoinChallenge is the leader's step 1 (see the protocol above).
func (s *Server) JoinChallenge(ctx context.Context, nodeID string) (*system.JoinChallenge, error) {
	if err := validNodeID(nodeID); err != nil {
		return nil, err
	}
	if nodeID == s.NodeID() {
		return nil, core.Invalid("join refused: %q is this node's own id", nodeID)
	}
	if !s.raft.IsLeader() {
		return nil, core.Errorf(core.CodeUnavailable, "join: this node is not the active node")
	}
	plain := make([]byte, 32)
	if _, err := rand.Read(plain); err != nil {
		return nil, err
	}
	blob, err := s.barrier.Encrypt(joinChallengeKey+nodeID, plain)
	if err != nil {
		return nil, err
	}
	recs := map[string][]byte{}
	for _, k := range joinRecords {
		v, err := s.raft.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, core.Errorf(core.CodeInternal, "join: seal record %s is missing", k)
		}
		recs[k] = v
	}
	s.join.mu.Lock()
	if s.join.challenges == nil {
		s.join.challenges = map[string]*challenge{}
	}
	now := s.now()
	for id, c := range s.join.challenges {
		if now.After(c.expires) {
			delete(s.join.challenges, id)
		}
	}
	s.join.challenges[nodeID] = &challenge{plain: plain, expires: now.Add(JoinChallengeTTL)}
	s.join.mu.Unlock()
	return &system.JoinChallenge{Challenge: blob, Records: recs}, nil
}

// refused is the error for a node that did not prove it may join (403).
func refused(format string, args ...any) error {
	return core.Errorf(core.CodePermissionDenied, "join refused: "+format, args...)
}

// joinErr keeps err's code (and so its HTTP status) and says which step
// of the join failed.
func joinErr(err error, format string, args ...any) error {
	return core.Errorf(core.CodeOf(err), format+": %w", append(args, err)...)
}

// JoinAnswer is the leader's step 3.
func (s *Server) JoinAnswer(ctx context.Context, req system.JoinAnswerRequest) (*system.JoinAnswer, error) {
	if err := validNodeID(req.NodeID); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(req.ClusterAddr); err != nil {
		return nil, core.Invalid("cluster_addr %q is not host:port", req.ClusterAddr)
	}
	if req.NonVoter {
		return nil, core.Invalid("non_voter joins are not supported: autopilot promotes every node once it is stable")
	}
	s.join.mu.Lock()
	c := s.join.challenges[req.NodeID]
	delete(s.join.challenges, req.NodeID) // one attempt per challenge
	s.join.mu.Unlock()
	switch {
	case c == nil:
		return nil, refused("no outstanding challenge for node %q (ask for one first)", req.NodeID)
	case s.now().After(c.expires):
		return nil, refused("the challenge of node %q expired", req.NodeID)
	case subtle.ConstantTimeCompare(c.plain, req.Answer) != 1:
		s.log.Warn("join refused: wrong answer to the challenge", "node", req.NodeID, "cluster_addr", req.ClusterAddr)
		return nil, refused("node %q did not answer the challenge (it does not hold the cluster's unseal keys)", req.NodeID)
	}
	if !s.raft.IsLeader() {
		return nil, core.Errorf(core.CodeUnavailable, "join: this node is no longer the active node")
	}
	nc, err := s.IssueClusterCertificate(ctx, req.NodeID)
	if err != nil {
		return nil, joinErr(err, "join")
	}
	if err := s.raft.AddNonvoter(ctx, req.NodeID, req.ClusterAddr); err != nil {
		return nil, joinErr(err, "join")
	}
	if err := s.raft.Barrier(ctx); err != nil {
		return nil, joinErr(err, "join")
	}
	js, err := json.Marshal(nc)
	if err != nil {
		return nil, err
	}
	blob, err := s.barrier.Encrypt(joinCertKey+req.NodeID, js)
	if err != nil {
		return nil, err
	}
	s.log.Info("node joined the cluster as a non-voter", "node", req.NodeID, "cluster_addr", req.ClusterAddr)
	return &system.JoinAnswer{Certificate: blob, Index: s.raft.AppliedIndex(), LeaderID: s.NodeID(), LeaderAddr: s.raft.Addr()}, nil
}

func validNodeID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/\\ \t\r\n") || id == "." || id == ".." {
		return core.Invalid("invalid server_id %q", id)
	}
	return nil
}

// --- joining side ---

// Join starts joining the cluster led by req.LeaderAPIAddr (step 1). The
// node must be sealed. It fetches the challenge and keeps the join pending:
// the unseal keys given next (Unseal) answer it.
func (s *Server) Join(ctx context.Context, req system.JoinRequest) error {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if !s.barrier.Sealed() {
		return core.Invalid("join: this node is unsealed: it is already a member of a cluster")
	}
	client, err := joinClient(req)
	if err != nil {
		return err
	}
	var ch struct {
		Data struct {
			Challenge string            `json:"challenge"`
			Records   map[string]string `json:"records"`
		} `json:"data"`
	}
	if err := postJSON(ctx, client, req.LeaderAPIAddr, "sys/storage/raft/bootstrap/challenge", map[string]any{"server_id": s.NodeID()}, &ch); err != nil {
		return joinErr(err, "join: challenge from %s", req.LeaderAPIAddr)
	}
	blob, err := base64.StdEncoding.DecodeString(ch.Data.Challenge)
	if err != nil || len(blob) == 0 {
		return core.Errorf(core.CodeUnavailable, "join: %s sent no challenge", req.LeaderAPIAddr)
	}
	mem := storage.NewMemory()
	for _, k := range joinRecords {
		v, err := base64.StdEncoding.DecodeString(ch.Data.Records[k])
		if err != nil || len(v) == 0 {
			return core.Errorf(core.CodeUnavailable, "join: %s sent no %s record", req.LeaderAPIAddr, k)
		}
		if err := mem.Put(ctx, k, v); err != nil {
			return err
		}
	}
	b := barrier.New(mem)
	pj := &pendingJoin{req: req, client: client, challenge: blob, mem: mem, barrier: b,
		seal: seal.New(mem, b, s.sealOpts...), started: s.now()}
	if pj.seal.Auto() {
		// Auto-unseal: this node's seal opens the cluster's root key (or
		// does not, and the node cannot join).
		if err := pj.seal.AutoUnseal(ctx); err != nil {
			return joinErr(err, "join: this node's seal does not open the cluster's root key")
		}
		if err := s.answerJoin(ctx, pj); err != nil {
			pj.barrier.Seal()
			return err
		}
		s.join.mu.Lock()
		s.join.pending = pj
		s.join.mu.Unlock()
		return nil
	}
	s.join.mu.Lock()
	s.join.pending = pj
	s.join.mu.Unlock()
	s.log.Info("joining the cluster: unseal this node to prove it holds the cluster's keys", "leader", req.LeaderAPIAddr)
	return nil
}

// joinPending returns the join in progress, or nil.
func (s *Server) joinPending() *pendingJoin {
	s.join.mu.Lock()
	defer s.join.mu.Unlock()
	return s.join.pending
}

func (s *Server) dropJoin(pj *pendingJoin) {
	s.join.mu.Lock()
	if s.join.pending == pj {
		s.join.pending = nil
	}
	s.join.mu.Unlock()
	pj.barrier.Seal()
	for i := range pj.shares {
		pj.shares[i] = ""
	}
}

// joinUnsealLocked gives one key share to the pending join (step 2); when
// the scratch barrier opens, the challenge is answered (step 3) and the
// node finishes the join in the background (step 4). Caller holds stateMu.
func (s *Server) joinUnsealLocked(ctx context.Context, pj *pendingJoin, key string) (*system.SealStatus, error) {
	st, err := pj.seal.Unseal(ctx, key)
	if err != nil {
		return s.joinStatus(st), err
	}
	pj.shares = append(pj.shares, key)
	if pj.barrier.Sealed() {
		return s.joinStatus(st), nil
	}
	if err := s.answerJoin(ctx, pj); err != nil {
		s.dropJoin(pj)
		return s.joinStatus(seal.Status{Type: seal.Type, Initialized: true, Sealed: true, T: st.T, N: st.N}), err
	}
	return s.joinStatus(seal.Status{Type: seal.Type, Initialized: true, Sealed: true, T: st.T, N: st.N}), nil
}

func (s *Server) joinStatus(st seal.Status) *system.SealStatus {
	return &system.SealStatus{Type: st.Type, Initialized: st.Initialized, Sealed: true, T: st.T, N: st.N,
		Progress: st.Progress, Nonce: st.Nonce, Version: Version, StorageType: "raft", ClusterName: s.clusterName(),
		RecoverySeal: st.RecoverySeal}
}

// answerJoin opens the challenge with the scratch barrier, sends the answer,
// installs the certificate and starts waiting for the cluster's state.
func (s *Server) answerJoin(ctx context.Context, pj *pendingJoin) error {
	plain, err := pj.barrier.Decrypt(joinChallengeKey+s.NodeID(), pj.challenge)
	if err != nil {
		return core.Errorf(core.CodeInvalid, "join: the unseal keys do not open the cluster's challenge: %w", err)
	}
	var ans struct {
		Data struct {
			Certificate string `json:"certificate"`
			Index       uint64 `json:"index"`
			LeaderID    string `json:"leader_id"`
		} `json:"data"`
	}
	body := map[string]any{"server_id": s.NodeID(), "answer": base64.StdEncoding.EncodeToString(plain),
		"cluster_addr": s.raft.Addr(), "non_voter": pj.req.NonVoter}
	if err := postJSON(ctx, pj.client, pj.req.LeaderAPIAddr, "sys/storage/raft/bootstrap/answer", body, &ans); err != nil {
		return joinErr(err, "join: answer to %s", pj.req.LeaderAPIAddr)
	}
	blob, err := base64.StdEncoding.DecodeString(ans.Data.Certificate)
	if err != nil {
		return core.Errorf(core.CodeUnavailable, "join: the leader sent no certificate")
	}
	js, err := pj.barrier.Decrypt(joinCertKey+s.NodeID(), blob)
	if err != nil {
		return core.Errorf(core.CodeInternal, "join: the leader's certificate does not open: %w", err)
	}
	var nc clustertls.NodeCert
	if err := json.Unmarshal(js, &nc); err != nil || nc.NodeID != s.NodeID() {
		return core.Errorf(core.CodeUnavailable, "join: the leader sent a certificate for %q", nc.NodeID)
	}
	cert, pool, err := nc.TLS()
	if err != nil {
		return err
	}
	// Until the cluster's state (and with it the certificate records)
	// has arrived, a peer is accepted on the CA alone.
	s.raft.SetTLSIdentity(&raftstore.TLSIdentity{Certificate: cert, CAs: pool, ServerName: clustertls.ServerName})
	s.log.Info("join answered; waiting for the cluster's state", "leader", ans.Data.LeaderID, "index", ans.Data.Index)
	s.bgDone.Add(1)
	go s.finishJoin(pj, ans.Data.Index)
	return nil
}

// finishJoin waits until the node has applied index (the cluster's state
// has arrived) and unseals the node with the join's keys.
func (s *Server) finishJoin(pj *pendingJoin, index uint64) {
	defer s.bgDone.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for s.raft.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			s.log.Error("join: the cluster's state did not arrive; join again", "index", index, "applied", s.raft.AppliedIndex())
			s.raft.SetTLSIdentity(nil)
			s.dropJoin(pj)
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	defer s.dropJoin(pj)
	if !s.barrier.Sealed() {
		return // auto-unsealed meanwhile
	}
	s.seal.Reload()
	if s.seal.Auto() {
		if err := s.seal.AutoUnseal(ctx); err != nil {
			s.log.Error("join: auto-unseal failed", "error", err)
			return
		}
	}
	for _, k := range pj.shares {
		if _, err := s.seal.Unseal(ctx, k); err != nil {
			s.log.Error("join: unsealing with the join's keys failed", "error", err)
			return
		}
	}
	if s.barrier.Sealed() {
		s.log.Error("join: the node is still sealed after the join")
		return
	}
	if err := s.unsealedLocked(ctx); err != nil {
		s.log.Error("join: unseal failed", "error", err)
		return
	}
	s.log.Info("joined the cluster")
}

// joinClient is the HTTP client for the leader's API with the join's TLS
// settings.
func joinClient(req system.JoinRequest) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: req.LeaderTLSServerName}
	if req.LeaderCACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(req.LeaderCACert)) {
			return nil, core.Invalid("join: leader_ca_cert holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if req.LeaderClientCert != "" || req.LeaderClientKey != "" {
		c, err := tls.X509KeyPair([]byte(req.LeaderClientCert), []byte(req.LeaderClientKey))
		if err != nil {
			return nil, core.Invalid("join: leader_client_cert/leader_client_key: %v", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, Proxy: nil}}, nil
}

// postJSON POSTs body to addr's /v1/path and decodes the answer into out.
func postJSON(ctx context.Context, c *http.Client, addr, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(addr, "/")+"/v1/"+path, bytes.NewReader(b))
	if err != nil {
		return core.Invalid("join: leader address %q: %v", addr, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return core.Errorf(core.CodeUnavailable, "%v", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Errors []string `json:"errors"`
		}
		msg := resp.Status
		if json.Unmarshal(rb, &e) == nil && len(e.Errors) > 0 {
			msg = strings.Join(e.Errors, "; ")
		}
		code := core.CodeUnavailable
		if resp.StatusCode == http.StatusForbidden {
			code = core.CodePermissionDenied
		}
		return core.Errorf(code, "%s", msg)
	}
	if err := json.Unmarshal(rb, out); err != nil {
		return core.Errorf(core.CodeUnavailable, "decode answer: %v", err)
	}
	return nil
}
