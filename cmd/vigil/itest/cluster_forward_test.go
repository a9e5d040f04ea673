package itest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// A standby that cannot reach any active node (the two others stopped
// with SIGSTOP: no quorum) answers an error within the forward wait, and
// its chain records the outcome under the request's id: the status it
// answered and why. Once the others run again, the same request succeeds
// through it.
func TestClusterStandbyRecordsFailedForward(t *testing.T) {
	c := formCluster(t)
	leader := c.active()
	var standby, other *clusterNode
	for _, nd := range c.nodes {
		switch {
		case nd == leader:
		case standby == nil:
			standby = nd
		default:
			other = nd
		}
	}
	c.signal(leader, syscall.SIGSTOP)
	c.signal(other, syscall.SIGSTOP)
	hc := c.httpClient()
	hc.Timeout = 2 * time.Minute
	start := time.Now()
	a := kvPut(hc, standby.url(), c.root, "unreachable", map[string]any{"v": 1})
	took := time.Since(start)
	c.signal(leader, syscall.SIGCONT)
	c.signal(other, syscall.SIGCONT)
	if a.status != 502 && a.status != 503 {
		t.Fatalf("a write through a standby without an active node: %+v", a)
	}
	t.Logf("answered %d after %v: %s", a.status, took, a.body)

	type fwd struct {
		RequestID string `json:"request_id"`
		Path      string `json:"path"`
		ToNode    string `json:"to_node"`
		Status    int    `json:"status"`
		Error     string `json:"error"`
	}
	var recs []fwd
	data, err := os.ReadFile(standby.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte(`{"type":"vigil.forward"`)) {
			continue
		}
		var v struct {
			Forward fwd `json:"forward"`
		}
		if json.Unmarshal(line, &v) == nil && v.Forward.Path == "secret/data/unreachable" {
			recs = append(recs, v.Forward)
		}
	}
	var outcome *fwd
	for i := range recs {
		if recs[i].Status != 0 {
			outcome = &recs[i]
		}
	}
	if outcome == nil || outcome.Status != a.status || outcome.Error == "" || outcome.RequestID == "" {
		t.Fatalf("%s's chain has no outcome record of the failed forward: %+v", standby.id, recs)
	}
	if len(recs) == 2 && (recs[0].RequestID != outcome.RequestID || recs[0].Status != 0 || recs[0].ToNode != leader.id) {
		t.Fatalf("the forward and its outcome: %+v", recs)
	}

	c.eventually(60*time.Second, func() error {
		if a := kvPut(c.httpClient(), standby.url(), c.root, "unreachable", map[string]any{"v": 2}); a.status != 200 {
			return fmt.Errorf("write through %s once the others run: %+v", standby.id, a)
		}
		return nil
	})
}
