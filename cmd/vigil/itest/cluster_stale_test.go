package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
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
	// Connections to the old active node opened (TLS done) beforehand, so
	// that requests sent while it is stopped wait in its sockets and reach
	// its handlers the moment it runs again.
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: c.httpClient().Transport.(*http.Transport).TLSClientConfig, MaxIdleConnsPerHost: 32}}
	var warm sync.WaitGroup
	for range 16 {
		warm.Add(1)
		go func() {
			defer warm.Done()
			if a := kvGet(hc, old.url(), c.root, "k"); a != "before" {
				t.Errorf("warm-up read: %q", a)
			}
		}()
	}
	warm.Wait()
	c.signal(old, syscall.SIGSTOP)
	next := c.active(others...)
	if _, err := c.client(next).KVv2("secret").Put(context.Background(), "k", map[string]any{"v": "after"}); err != nil {
		t.Fatalf("write through the new active node: %v", err)
	}

	// Requests queued at the stopped node.
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
			v := kvGet(hc, old.url(), c.root, "k")
			if strings.HasPrefix(v, "status ") {
				results <- got{status: 500}
				return
			}
			results <- got{status: 200, value: v}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the requests reach the stopped node's sockets
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

// kvGet reads secret/data/key's "v" through url: the value, or "status N"
// / the transport error.
func kvGet(hc *http.Client, url, token, key string) string {
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/secret/data/"+key, nil)
	req.Header.Set("X-Vault-Token", token)
	resp, err := hc.Do(req)
	if err != nil {
		return "status -1: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("status %d: %s", resp.StatusCode, b)
	}
	var env struct {
		Data struct {
			Data map[string]any `json:"data"`
		} `json:"data"`
	}
	_ = json.Unmarshal(b, &env)
	return fmt.Sprint(env.Data.Data["v"])
}
