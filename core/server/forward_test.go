package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// nodeLocal holds the list of paths a standby answers itself.
func TestNodeLocal(t *testing.T) {
	for p, want := range map[string]bool{
		"sys/health": true, "sys/seal-status": true, "sys/leader": true, "sys/init": true, "sys/unseal": true,
		"sys/storage/raft/join": true, "sys/metrics": true, "sys/health/": true,
		"secret/data/x": false, "sys/mounts": false, "sys/storage/raft/bootstrap/answer": false,
		"sys/storage/raft/configuration": false, "sys/seal": false, "auth/token/create": false,
	} {
		if got := nodeLocal(p); got != want {
			t.Errorf("nodeLocal(%q) = %v, want %v", p, got, want)
		}
	}
}

// A client cannot pose as a forwarding node: the forwarding headers are
// removed from every request that arrives on a listener, and the request
// id the API uses comes only from the cluster port's handler.
func TestListenerDropsForwardingHeaders(t *testing.T) {
	var seen http.Header
	s := &Server{}
	h := s.clusterHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	req := httptest.NewRequest(http.MethodGet, "/v1/secret/data/x", nil)
	req.Header.Set(hdrForwardID, "chosen-by-the-client")
	req.Header.Set(hdrForwardFor, "10.0.0.1:1")
	req.Header.Set(hdrForwardCert, "Zm9v")
	h.ServeHTTP(httptest.NewRecorder(), req)
	for _, k := range []string{hdrForwardID, hdrForwardFor, hdrForwardCert} {
		if seen.Get(k) != "" {
			t.Errorf("header %s reached the API", k)
		}
	}
}
