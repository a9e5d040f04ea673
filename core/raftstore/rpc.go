package raftstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/vigilsec/vigil/core"
)

// The cluster RPC is a small HTTP/1.1 API between the nodes of one cluster,
// on the raft port (ALPN ALPNRPC) and so behind the same mutual TLS: only a
// node holding a current certificate of the cluster reaches it, and a
// handler learns which node calls with PeerNode. The store serves
//
//	POST /raft/v1/apply       a follower's write (an encoded command), applied
//	                          by the leader; answers {"index": N}
//	GET  /raft/v1/read-index  the leader's applied index, after it confirmed
//	                          its leadership with a quorum
//	GET  /raft/v1/stats       this node's raft position (autopilot's health)
//
// and the server adds its own handlers with HandleRPC (request forwarding).
// Stores opened with Config.Plaintext have no cluster RPC: their followers
// refuse writes as before.
const (
	rpcApply     = "/raft/v1/apply"
	rpcReadIndex = "/raft/v1/read-index"
	rpcStats     = "/raft/v1/stats"
)

// rpcState is the cluster RPC's server and client.
type rpcState struct {
	mux    *http.ServeMux
	srv    *http.Server
	client *http.Client
	tr     *http.Transport
	done   chan struct{}
}

// rpcError is the body of a failed cluster RPC.
type rpcError struct {
	Code  core.Code `json:"code"`
	Error string    `json:"error"`
}

// startRPC serves the cluster RPC on the TLS stream's RPC connections.
func (s *Store) startRPC() {
	t, ok := s.stream.(*tlsStream)
	if !ok {
		return
	}
	mux := http.NewServeMux()
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return t.dial(ctx, addr, ALPNRPC)
		},
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // forwarded requests may take long; callers bound them with ctx
	}
	r := &rpcState{
		mux: mux,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: HandshakeTimeout, IdleTimeout: 5 * time.Minute,
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				if pc, ok := c.(peerConn); ok {
					ctx = context.WithValue(ctx, peerKey{}, pc.peer)
				}
				return ctx
			}},
		client: &http.Client{Transport: tr},
		tr:     tr,
		done:   make(chan struct{}),
	}
	mux.HandleFunc("POST "+rpcApply, s.serveApply)
	mux.HandleFunc("GET "+rpcReadIndex, s.serveReadIndex)
	mux.HandleFunc("GET "+rpcStats, s.serveStats)
	s.rpc = r
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(rpcListener{t})
	}()
}

// stopRPC stops the cluster RPC server (after the stream closed its
// connections) and the client's idle connections.
func (s *Store) stopRPC() {
	if s.rpc == nil {
		return
	}
	_ = s.rpc.srv.Close()
	s.rpc.tr.CloseIdleConnections()
}

// HandleRPC adds a handler to the cluster RPC (see http.ServeMux for
// patterns). Handlers see only authenticated cluster members; PeerNode names
// the caller. A no-op on a plaintext store.
func (s *Store) HandleRPC(pattern string, h http.Handler) {
	if s.rpc != nil {
		s.rpc.mux.Handle(pattern, h)
	}
}

// RPCClient returns the client of the cluster RPC: its connections are made
// to cluster addresses ("https://" + address + path, see RPCURL) with this
// node's current identity. Nil on a plaintext store.
func (s *Store) RPCClient() *http.Client {
	if s.rpc == nil {
		return nil
	}
	return s.rpc.client
}

// RPCURL is the cluster RPC URL of path on the node at cluster address addr.
func RPCURL(addr, path string) string { return "https://" + addr + path }

// PeerNode returns the node ID of the cluster member that made a cluster RPC
// request (the common name of its verified certificate), or "".
func PeerNode(r *http.Request) string {
	id, _ := r.Context().Value(peerKey{}).(string)
	return id
}

type peerKey struct{}

// peerConn is an authenticated RPC connection as http.Server sees it: not a
// *tls.Conn, so that the server does not look for an ALPN handler of its
// own, with the peer's node ID carried to the request context.
type peerConn struct {
	net.Conn
	peer string
}

func writeRPC(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeRPCError(w http.ResponseWriter, err error) {
	code := core.CodeOf(err)
	writeRPC(w, core.HTTPStatus(code), rpcError{Code: code, Error: err.Error()})
}

// decodeRPC reads a cluster RPC answer into out, or returns the coded error
// it carries.
func decodeRPC(resp *http.Response, out any) error {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return core.Errorf(core.CodeUnavailable, "cluster RPC: read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e rpcError
		if json.Unmarshal(body, &e) == nil && e.Code != "" {
			return core.Errorf(e.Code, "%s", e.Error)
		}
		return core.Errorf(core.CodeUnavailable, "cluster RPC: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return core.Errorf(core.CodeInternal, "cluster RPC: decode answer: %w", err)
	}
	return nil
}

// --- forwarded writes ---

type applyAnswer struct {
	Index uint64 `json:"index"`
}

// serveApply applies a follower's write on the leader.
func (s *Store) serveApply(w http.ResponseWriter, r *http.Request) {
	cmd, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.MaxEntrySize)+1))
	if err != nil {
		writeRPCError(w, core.Errorf(core.CodeInvalid, "read command: %v", err))
		return
	}
	if len(cmd) > s.cfg.MaxEntrySize {
		writeRPCError(w, core.Errorf(core.CodeTooLarge, "raft: write exceeds the %d byte entry limit", s.cfg.MaxEntrySize))
		return
	}
	if _, err := decodeCommand(cmd); err != nil {
		writeRPCError(w, core.Invalid("raft: forwarded write is malformed: %v", err))
		return
	}
	idx, err := s.applyLocal(cmd)
	if err != nil {
		writeRPCError(w, err)
		return
	}
	writeRPC(w, http.StatusOK, applyAnswer{Index: idx})
}

// applyLocal applies an encoded command on this node, which must lead, and
// returns its log index once applied here.
func (s *Store) applyLocal(cmd []byte) (uint64, error) {
	if err := s.fsm.failure(); err != nil {
		return 0, err
	}
	if s.raft.State() != raft.Leader {
		return 0, s.notLeader()
	}
	f := s.raft.Apply(cmd, s.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return 0, s.raftErr("apply", err)
	}
	if err, ok := f.Response().(error); ok {
		return 0, err
	}
	return f.Index(), nil
}

// forwardTxn sends a write to the leader over the cluster RPC and waits until
// this node has applied it, so that a read here that follows sees it. Without
// a cluster RPC (plaintext) or identity, it refuses as a follower always did.
func (s *Store) forwardTxn(ctx context.Context, cmd []byte) error {
	if s.rpc == nil || !s.TLSReady() || !s.member() {
		return s.notLeader()
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	addr, self, err := s.leaderAddr(ctx)
	if err != nil {
		return err
	}
	if self {
		_, err := s.applyLocal(cmd)
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, RPCURL(addr, rpcApply), bytes.NewReader(cmd))
	if err != nil {
		return core.Errorf(core.CodeInternal, "raft: forward write: %w", err)
	}
	resp, err := s.rpc.client.Do(req)
	if err != nil {
		return core.Errorf(core.CodeUnavailable, "raft: forward write to the leader at %s: %v (the write may or may not be applied)", addr, err)
	}
	var ans applyAnswer
	if err := decodeRPC(resp, &ans); err != nil {
		return err
	}
	return s.waitApplied(ctx, ans.Index)
}

// member reports whether this node knows a raft configuration: a node that
// never joined a cluster waits for no leader.
func (s *Store) member() bool {
	f := s.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

// leaderAddr waits (within ctx) until a leader is known and returns its
// address, or self when this node leads.
func (s *Store) leaderAddr(ctx context.Context) (addr string, self bool, err error) {
	delay := 5 * time.Millisecond
	for {
		if s.IsLeader() {
			return "", true, nil
		}
		if id, a := s.Leader(); id != "" && a != "" {
			return a, false, nil
		}
		select {
		case <-ctx.Done():
			return "", false, core.Errorf(core.CodeUnavailable, "raft: no leader: %v", ctx.Err())
		case <-s.done:
			return "", false, errClosed
		case <-time.After(delay):
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// waitApplied waits until this node's state includes log index idx.
func (s *Store) waitApplied(ctx context.Context, idx uint64) error {
	delay := time.Millisecond
	for s.fsm.appliedIndex.Load() < idx {
		if err := s.fsm.failure(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return core.Errorf(core.CodeUnavailable, "raft: this node has not applied index %d yet (at %d): %v", idx, s.fsm.appliedIndex.Load(), ctx.Err())
		case <-s.done:
			return errClosed
		case <-time.After(delay):
		}
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
	return nil
}

// --- read index ---

type readIndexAnswer struct {
	Index uint64 `json:"index"`
}

func (s *Store) serveReadIndex(w http.ResponseWriter, r *http.Request) {
	idx, err := s.leaderReadIndex(r.Context())
	if err != nil {
		writeRPCError(w, err)
		return
	}
	writeRPC(w, http.StatusOK, readIndexAnswer{Index: idx})
}

// leaderReadIndex confirms this node still leads (a quorum answers) and
// returns its applied index: every write acknowledged before the call is at
// or below it.
func (s *Store) leaderReadIndex(ctx context.Context) (uint64, error) {
	if s.raft.State() != raft.Leader {
		return 0, s.notLeader()
	}
	idx := s.fsm.appliedIndex.Load()
	if err := wait(ctx, s.raft.VerifyLeader()); err != nil {
		return 0, s.raftErr("verify leader", err)
	}
	return idx, nil
}

// ReadIndex makes this node's state at least as new as the leader's when the
// call started: on the leader it confirms leadership; on a follower it asks
// the leader for its applied index over the cluster RPC and waits until it
// has applied as much. After it returns, local reads see every write
// acknowledged (by any node) before the call. Errors are CodeUnavailable
// when there is no reachable leader within ctx.
func (s *Store) ReadIndex(ctx context.Context) error {
	addr, self, err := s.leaderAddr(ctx)
	if err != nil {
		return err
	}
	if self {
		_, err := s.leaderReadIndex(ctx)
		return err
	}
	if s.rpc == nil || !s.TLSReady() {
		return core.Errorf(core.CodeUnavailable, "raft: read index: no cluster RPC (node sealed or plaintext transport)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, RPCURL(addr, rpcReadIndex), nil)
	if err != nil {
		return core.Errorf(core.CodeInternal, "raft: read index: %w", err)
	}
	resp, err := s.rpc.client.Do(req)
	if err != nil {
		return core.Errorf(core.CodeUnavailable, "raft: read index from the leader at %s: %v", addr, err)
	}
	var ans readIndexAnswer
	if err := decodeRPC(resp, &ans); err != nil {
		return err
	}
	return s.waitApplied(ctx, ans.Index)
}

// --- stats ---

// PeerStats is what a node reports of its own raft position over the
// cluster RPC.
type PeerStats struct {
	NodeID       string `json:"node_id"`
	State        string `json:"state"`
	LastIndex    uint64 `json:"last_index"`
	LastTerm     uint64 `json:"last_term"`
	AppliedIndex uint64 `json:"applied_index"`
	// LastContactMS is how long ago this node last heard from a leader
	// (0 on the leader, -1 when never).
	LastContactMS int64 `json:"last_contact_ms"`
}

func (s *Store) localStats() PeerStats {
	st := PeerStats{NodeID: s.cfg.NodeID, State: s.State(), LastIndex: s.raft.LastIndex(),
		AppliedIndex: s.fsm.appliedIndex.Load(), LastContactMS: -1}
	if t := s.raft.Stats()["last_log_term"]; t != "" {
		_, _ = fmt.Sscan(t, &st.LastTerm)
	}
	if s.IsLeader() {
		st.LastContactMS = 0
	} else if lc := s.raft.LastContact(); !lc.IsZero() {
		st.LastContactMS = time.Since(lc).Milliseconds()
	}
	return st
}

func (s *Store) serveStats(w http.ResponseWriter, r *http.Request) {
	writeRPC(w, http.StatusOK, s.localStats())
}

// FetchStats asks the node at cluster address addr for its PeerStats.
func (s *Store) FetchStats(ctx context.Context, addr string) (PeerStats, error) {
	var st PeerStats
	if s.rpc == nil {
		return st, core.Errorf(core.CodeUnavailable, "raft: no cluster RPC on a plaintext transport")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, RPCURL(addr, rpcStats), nil)
	if err != nil {
		return st, err
	}
	resp, err := s.rpc.client.Do(req)
	if err != nil {
		return st, core.Errorf(core.CodeUnavailable, "raft: stats of %s: %v", addr, err)
	}
	return st, decodeRPC(resp, &st)
}
