package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/raftstore"
)

// Request forwarding. Any node answers any request: a standby (unsealed,
// not the active node) sends it to the active node over the cluster RPC —
// the raft port's mutual TLS, so only a member reaches it — and returns the
// answer unchanged (status, headers, body). The active node executes and
// audits it in its own chain, under the request id the standby chose; the
// standby first records, durably in its own chain, that it forwarded that
// request id to that node (fail closed: a request the standby cannot record
// is not forwarded). When the standby answers a request itself with an
// error because the forward could not be completed, it records that
// outcome too (status and message, same request id).
//
// What a standby answers itself: the node's own status and lifecycle
// (sys/health, sys/seal-status, sys/leader, sys/init, sys/unseal,
// sys/storage/raft/join) and its metrics. Nothing is read from a standby's
// own copy of the data, so a client reads its writes through any node.

// rpcForward is the cluster RPC path forwarded requests arrive under.
const rpcForward = "/vigil/v1/forward"

// Headers a standby adds to a forwarded request. The active node trusts
// them only on the cluster RPC (an authenticated member sent them) and
// removes them from requests that arrive on a listener.
const (
	hdrForwardID       = "X-Vigil-Forwarded-Request-Id"
	hdrForwardFor      = "X-Vigil-Forwarded-For"
	hdrForwardCert     = "X-Vigil-Forwarded-Client-Cert"
	hdrForwardNotActve = "X-Vigil-Not-Active"
)

// ForwardWait bounds how long a standby waits for an active node (an
// election, a new active node starting) before it answers 503.
const ForwardWait = 15 * time.Second

// nodeLocal reports whether a /v1/ path is answered by the node that
// receives it.
func nodeLocal(path string) bool {
	switch strings.TrimSuffix(path, "/") {
	case "sys/health", "sys/seal-status", "sys/leader", "sys/init", "sys/unseal", "sys/storage/raft/join", "sys/metrics":
		return true
	}
	return false
}

// clusterHandler routes a listener's requests: served here on the active
// node (once its leadership is confirmed within the leader lease), on a
// sealed node and for node-local paths; forwarded from a standby.
func (s *Server) clusterHandler(local http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{hdrForwardID, hdrForwardFor, hdrForwardCert} {
			r.Header.Del(h) // only the cluster RPC may set them
		}
		p, isAPI := strings.CutPrefix(r.URL.Path, "/v1/")
		if !isAPI || nodeLocal(p) {
			local.ServeHTTP(w, r)
			return
		}
		if s.active.Load() {
			if s.raft.ConfirmLeader(r.Context()) == nil {
				local.ServeHTTP(w, r)
				return
			}
			// Leadership not confirmed (this node was paused or cut off
			// beyond its lease): another node may lead and have newer
			// data, so the request goes to whichever node leads now.
			s.forward(w, r, local)
			return
		}
		if !s.standby() {
			local.ServeHTTP(w, r) // sealed: the sealed API answers
			return
		}
		s.forward(w, r, local)
	})
}

// errBecameActive: while a standby waited for an active node, it became
// the active node itself.
var errBecameActive = errors.New("this node became the active node")

// standby reports whether this node is unsealed but not the active node.
func (s *Server) standby() bool { return s.unsealedFlag.Load() && !s.active.Load() }

// forward sends r to the active node and copies its answer to w. If this
// node becomes the active node meanwhile, local serves r here.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, local http.Handler) {
	ctx, cancel := context.WithTimeout(r.Context(), ForwardWait)
	defer cancel()
	reqID := uuid.NewString()
	record := func(toNode, toAddr string, status int, msg string) *core.ForwardRecord {
		return &core.ForwardRecord{RequestID: reqID, Time: s.now(), Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, "/v1/"),
			RemoteAddr: r.RemoteAddr, ToNode: toNode, ToAddress: toAddr, Status: status, Error: msg}
	}
	// fail answers the error and records it as the forward's outcome. The
	// answer is an error whether or not the record could be written (the
	// request was not executed here).
	fail := func(toNode, toAddr string, status int, msg string) {
		if err := s.forwardAuditor.LogForward(context.WithoutCancel(r.Context()), record(toNode, toAddr, status, msg)); err != nil {
			s.log.Error("audit: the outcome of a forward could not be recorded", "request_id", reqID, "status", status, "error", err)
		}
		writeJSONError(w, status, msg)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.forwardLimit()+1))
	if err != nil {
		fail("", "", http.StatusBadRequest, "failed to read request body: "+err.Error())
		return
	}
	if int64(len(body)) > s.forwardLimit() {
		fail("", "", http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	recorded := false
	delay := 10 * time.Millisecond
	for {
		id, addr, err := s.activeNode(ctx)
		if errors.Is(err, errBecameActive) {
			r.Body = io.NopCloser(bytes.NewReader(body))
			local.ServeHTTP(w, r)
			return
		}
		if err != nil {
			fail("", "", http.StatusServiceUnavailable, "no active node to forward the request to: "+err.Error())
			return
		}
		if !recorded {
			if err := s.forwardAuditor.LogForward(r.Context(), record(id, addr, 0, "")); err != nil {
				s.log.Error("audit: the forward could not be recorded; request refused", "request_id", reqID, "error", err)
				writeJSONError(w, http.StatusInternalServerError, "audit: the forwarding of the request could not be recorded, so it was not forwarded; it is safe to retry: "+err.Error())
				return
			}
			recorded = true
		}
		resp, err := s.sendForward(ctx, r, addr, reqID, body)
		if err != nil {
			// The request may or may not have reached the active node.
			fail(id, addr, http.StatusBadGateway, "forwarding to the active node "+id+" failed (the request may or may not have been executed): "+err.Error())
			return
		}
		if resp.Header.Get(hdrForwardNotActve) != "" {
			// Not executed there: that node is not (yet) active.
			resp.Body.Close()
			select {
			case <-ctx.Done():
				fail(id, addr, http.StatusServiceUnavailable, "no active node to forward the request to: "+ctx.Err().Error())
				return
			case <-time.After(delay):
			}
			delay = min(delay*2, 250*time.Millisecond)
			continue
		}
		copyResponse(w, resp)
		return
	}
}

// forwardLimit caps a forwarded body (the listener's raw limit: snapshot
// uploads are the largest requests).
func (s *Server) forwardLimit() int64 { return 4 << 30 }

// activeNode waits until a leader other than this node is known and returns
// its id and cluster address.
func (s *Server) activeNode(ctx context.Context) (id, addr string, err error) {
	for {
		id, addr := s.raft.Leader()
		if id != "" && id != s.NodeID() {
			return id, addr, nil
		}
		if id == s.NodeID() && s.active.Load() && s.raft.ConfirmLeader(ctx) == nil {
			return "", "", errBecameActive
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sendForward makes the cluster RPC call.
func (s *Server) sendForward(ctx context.Context, r *http.Request, addr, reqID string, body []byte) (*http.Response, error) {
	client := s.raft.RPCClient()
	if client == nil {
		return nil, errors.New("no cluster RPC")
	}
	u := raftstore.RPCURL(addr, rpcForward+r.URL.RequestURI())
	out, err := http.NewRequestWithContext(ctx, r.Method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out.Header = r.Header.Clone()
	out.Header.Set(hdrForwardID, reqID)
	out.Header.Set(hdrForwardFor, r.RemoteAddr)
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		var ders []string
		for _, c := range r.TLS.PeerCertificates {
			ders = append(ders, base64.StdEncoding.EncodeToString(c.Raw))
		}
		out.Header.Set(hdrForwardCert, strings.Join(ders, ","))
	}
	out.ContentLength = int64(len(body))
	return client.Do(out)
}

// copyResponse writes the active node's answer, unchanged.
func copyResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// serveForwarded executes a request a standby forwarded (cluster RPC).
func (s *Server) serveForwarded(w http.ResponseWriter, r *http.Request) {
	if !s.active.Load() || s.raft.ConfirmLeader(r.Context()) != nil {
		w.Header().Set(hdrForwardNotActve, "1")
		writeJSONError(w, http.StatusServiceUnavailable, "this node is not the active node")
		return
	}
	from := raftstore.PeerNode(r)
	in := r.Clone(core.WithForwarded(r.Context(), core.Forwarded{RequestID: r.Header.Get(hdrForwardID), FromNode: from}))
	in.URL.Path = strings.TrimPrefix(r.URL.Path, rpcForward)
	in.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, rpcForward)
	in.RequestURI = strings.TrimPrefix(r.RequestURI, rpcForward)
	in.RemoteAddr = r.Header.Get(hdrForwardFor)
	in.TLS = nil
	if v := r.Header.Get(hdrForwardCert); v != "" {
		var certs []*x509.Certificate
		for _, b := range strings.Split(v, ",") {
			der, err := base64.StdEncoding.DecodeString(b)
			if err != nil {
				continue
			}
			if c, err := x509.ParseCertificate(der); err == nil {
				certs = append(certs, c)
			}
		}
		in.TLS = &tls.ConnectionState{PeerCertificates: certs, HandshakeComplete: true}
	}
	for _, h := range []string{hdrForwardID, hdrForwardFor, hdrForwardCert} {
		in.Header.Del(h)
	}
	s.apiHandler.ServeHTTP(w, in)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string][]string{"errors": {msg}})
}

// LogForward makes noAudit a ForwardAuditor (no audit subsystem: nothing
// to record).
func (noAudit) LogForward(context.Context, *core.ForwardRecord) error { return nil }
