package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The active node is stopped (SIGSTOP: partitioned away, its raft state
// frozen as leader), the two others elect a new one, and a write is
// acknowledged there. Requests that reach the old active node while it is
// stopped are answered once it runs again: none may return the value from
// before the write (a stale leader must not serve its own copy), and none
// may acknowledge a write that is then lost. The old node then follows the
// new leader and serves the new value.
func TestClusterStoppedLeaderServesNoStaleData(t *testing.T) {
	c := formCluster(t)
	old := c.active()
	kv := c.client(old).KVv2("secret")
	if _, err := kv.Put(context.Background(), "k", map[string]any{"v": "before"}); err != nil {
		t.Fatal(err)
	}
	var others []*clusterNode
	for _, nd := range c.nodes {
		if nd != old {
			others = append(others, nd)
		}
	}
	c.signal(old, syscall.SIGSTOP)
	next := c.active(others...)
	if _, err := c.client(next).KVv2("secret").Put(context.Background(), "k", map[string]any{"v": "after"}); err != nil {
		t.Fatalf("write through the new active node: %v", err)
	}

	// Requests queued at the stopped node (its listener's backlog).
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: c.httpClient().Transport.(*http.Transport).TLSClientConfig, DisableKeepAlives: true}}
	type got struct {
		status int
		value  string
		err    error
	}
	results := make(chan got, 16)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%4 == 3 { // a write: if acknowledged, it must survive
				a := kvPut(hc, old.url(), c.root, fmt.Sprintf("queued-%d", i), map[string]any{"v": i})
				results <- got{status: a.status, value: fmt.Sprintf("put queued-%d", i)}
				return
			}
			req, _ := http.NewRequest(http.MethodGet, old.url()+"/v1/secret/data/k", nil)
			req.Header.Set("X-Vault-Token", c.root)
			resp, err := hc.Do(req)
			if err != nil {
				results <- got{err: err}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var env struct {
				Data struct {
					Data map[string]any `json:"data"`
				} `json:"data"`
			}
			_ = json.Unmarshal(b, &env)
			results <- got{status: resp.StatusCode, value: fmt.Sprint(env.Data.Data["v"])}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the requests reach the stopped node's backlog
	c.signal(old, syscall.SIGCONT)
	wg.Wait()
	close(results)
	var fresh, refused int
	var acked []string
	for r := range results {
		switch {
		case r.err != nil || r.status < 200 || r.status >= 300:
			refused++
		case r.value == "before":
			t.Errorf("the old active node served the value from before the new leader's write")
		case r.value == "after":
			fresh++
		default:
			acked = append(acked, r.value)
		}
	}
	t.Logf("after SIGCONT: %d reads served the new value, %d requests refused, acknowledged writes %v", fresh, refused, acked)
	for _, a := range acked {
		var i int
		if _, err := fmt.Sscanf(a, "put queued-%d", &i); err != nil {
			t.Fatalf("unexpected answer %q", a)
		}
		for _, nd := range c.nodes {
			c.eventually(30*time.Second, func() error {
				_, err := c.client(nd).KVv2("secret").Get(context.Background(), fmt.Sprintf("queued-%d", i))
				return err
			})
		}
	}
	c.eventually(60*time.Second, func() error {
		s, err := c.client(old).KVv2("secret").Get(context.Background(), "k")
		if err != nil {
			return err
		}
		if s.Data["v"] != "after" {
			return fmt.Errorf("the old active node serves %v", s.Data["v"])
		}
		return nil
	})
}
