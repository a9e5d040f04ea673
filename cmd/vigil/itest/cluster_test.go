package itest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit/chain"
)

// formCluster starts three nodes, initialises node1, shortens autopilot's
// stabilisation time, unseals the two others (their retry_join answers the
// leader's challenge with the key) and waits for three voters.
func formCluster(t *testing.T) *testCluster {
	t.Helper()
	return formClusterWith(t, "")
}

// formClusterWith is formCluster with extra configuration in every node's
// file.
func formClusterWith(t *testing.T, extra string) *testCluster {
	t.Helper()
	c := startClusterWith(t, 3, extra, "node")
	c.init()
	if _, err := c.client(c.nodes[0]).Logical().Write("sys/storage/raft/autopilot/configuration",
		map[string]any{"server_stabilization_time": "1s"}); err != nil {
		t.Fatalf("autopilot configuration: %v", err)
	}
	for _, nd := range c.nodes[1:] {
		c.unseal(nd)
	}
	c.eventually(90*time.Second, func() error {
		v := c.voters()
		if len(v) != 3 || !v["node1"] || !v["node2"] || !v["node3"] {
			return fmt.Errorf("voters %v", v)
		}
		return nil
	})
	if err := c.client(c.nodes[0]).Sys().Mount("secret", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	return c
}

// A 3-node cluster formed with retry_join: a write through any node is
// readable through every node at once; vault/api pointed at a standby works
// unchanged; standbys report themselves as Vault does; the standby records
// the forward and the active node the request, under one request id; a
// node that cannot answer the join challenge is refused and audited.
func TestClusterServesThroughAnyNode(t *testing.T) {
	c := formCluster(t)
	leader := c.active()
	for i, nd := range c.nodes {
		kv := c.client(nd).KVv2("secret")
		key := fmt.Sprintf("via-%s", nd.id)
		if _, err := kv.Put(context.Background(), key, map[string]any{"n": i, "by": nd.id}); err != nil {
			t.Fatalf("write through %s: %v", nd.id, err)
		}
		for _, other := range c.nodes { // read-after-write through every node, at once
			s, err := c.client(other).KVv2("secret").Get(context.Background(), key)
			if err != nil || s.Data["by"] != nd.id {
				t.Fatalf("read %s through %s: %v %v", key, other.id, s, err)
			}
		}
	}
	var standby *clusterNode
	for _, nd := range c.nodes {
		if nd != leader {
			standby = nd
			break
		}
	}
	sc := c.client(standby)
	// vault/api against a standby: tokens, policies, mounts, leader.
	tok, err := sc.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h"})
	if err != nil {
		t.Fatalf("token create through a standby: %v", err)
	}
	if _, err := c.client(leader).Auth().Token().Lookup(tok.Auth.ClientToken); err != nil {
		t.Fatalf("the token made through the standby is unknown to the active node: %v", err)
	}
	ls, err := sc.Sys().Leader()
	if err != nil || ls.IsSelf || !ls.HAEnabled || ls.LeaderAddress != leader.url() {
		t.Fatalf("sys/leader on a standby: %+v %v (want leader_address %s)", ls, err, leader.url())
	}
	if ll, err := c.client(leader).Sys().Leader(); err != nil || !ll.IsSelf {
		t.Fatalf("sys/leader on the active node: %+v %v", ll, err)
	}
	// As in Vault: perfstandbyok concerns performance standbys only (Vigil
	// has none), so a standby still answers 429 with it.
	for q, want := range map[string]int{"": 429, "?standbyok=true": 200, "?standbycode=473": 473, "?perfstandbyok=true": 429} {
		resp, err := c.httpClient().Get(standby.url() + "/v1/sys/health" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("standby sys/health%s: %d, want %d", q, resp.StatusCode, want)
		}
	}
	c.eventually(30*time.Second, func() error {
		st, err := sc.Sys().RaftAutopilotState()
		if err != nil || st == nil || !st.Healthy || len(st.Voters) != 3 || st.Leader != leader.id || st.FailureTolerance != 1 {
			return fmt.Errorf("autopilot state through a standby: %+v %v", st, err)
		}
		return nil
	})
	// One request id in both chains: forwarded by the standby, executed
	// (request and response) by the active node.
	a := kvPut(c.httpClient(), standby.url(), c.root, "traced", map[string]any{"v": 1})
	if a.status != 200 || a.id == "" {
		t.Fatalf("write through the standby: %+v", a)
	}
	c.eventually(30*time.Second, func() error {
		if !forwardedIn(t, standby.auditLog, a.id, leader.id) {
			return fmt.Errorf("the standby's log has no forward record of %s", a.id)
		}
		ids := byRequestID(readLog(t, leader.auditLog))
		if !ids[a.id]["request"] || !ids[a.id]["response"] {
			return fmt.Errorf("the active node's log has %v for %s", ids[a.id], a.id)
		}
		return nil
	})
	// A node that cannot open the challenge is refused, and the leader's
	// chain records the attempt.
	hc := c.httpClient()
	post := func(path string, body any) (int, []byte) {
		b, _ := json.Marshal(body)
		resp, err := hc.Post(leader.url()+"/v1/"+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, rb
	}
	if code, b := post("sys/storage/raft/bootstrap/challenge", map[string]any{"server_id": "intruder"}); code != 200 {
		t.Fatalf("challenge: %d %s", code, b)
	}
	code, b := post("sys/storage/raft/bootstrap/answer", map[string]any{"server_id": "intruder",
		"answer": base64.StdEncoding.EncodeToString([]byte("a guess of thirty-two bytes.....")), "cluster_addr": "127.0.0.1:1"})
	if code != http.StatusForbidden || !strings.Contains(string(b), "join refused") {
		t.Fatalf("a wrong answer: %d %s", code, b)
	}
	if v := c.voters(); len(v) != 3 {
		t.Fatalf("the intruder became a member: %v", v)
	}
	c.eventually(30*time.Second, func() error {
		for _, l := range readLog(t, leader.auditLog) {
			if l.Type == "response" && l.Request["path"] == "sys/storage/raft/bootstrap/answer" && strings.Contains(l.Error, "join refused") {
				return nil
			}
		}
		return fmt.Errorf("no audited refusal in the leader's log")
	})
}

// forwardedIn reports whether the log at path records that requestID was
// forwarded to node.
func forwardedIn(t *testing.T, path, requestID, node string) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte(`{"type":"vigil.forward"`)) {
			continue
		}
		var v struct {
			Forward struct {
				RequestID string `json:"request_id"`
				ToNode    string `json:"to_node"`
			} `json:"forward"`
		}
		if json.Unmarshal(line, &v) == nil && v.Forward.RequestID == requestID && v.Forward.ToNode == node {
			return true
		}
	}
	return false
}

// Kill -9 the active node under concurrent writes through all three nodes,
// several rounds: every write answered 2xx is readable afterwards through
// every node, every acknowledged request is in some node's verified chain,
// and no lease is revoked twice. Failover times are logged (figures for the
// report; the benchmark is BenchmarkClusterFailover).
func TestClusterFailoverKill9(t *testing.T) {
	c := formCluster(t)
	lc := c.client(c.active())
	if err := lc.Sys().Mount("pki", &vaultapi.MountInput{Type: "pki", Config: vaultapi.MountConfigInput{MaxLeaseTTL: "24h"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Logical().Write("pki/root/generate/internal", map[string]any{"common_name": "test", "ttl": "24h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Logical().Write("pki/roles/short", map[string]any{"allow_any_name": true, "ttl": "4s", "max_ttl": "4s", "generate_lease": true}); err != nil {
		t.Fatal(err)
	}
	type ack struct{ key, value, id string }
	var mu sync.Mutex
	var acked []ack
	var leases []string
	hc := c.httpClient()
	const rounds = 3
	var failovers []time.Duration
	var kills []string
	for round := 0; round < rounds; round++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w, nd := range c.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					key := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					a := kvPut(hc, nd.url(), c.root, key, map[string]any{"v": key})
					if a.status >= 200 && a.status < 300 {
						mu.Lock()
						acked = append(acked, ack{key, key, a.id})
						mu.Unlock()
					} else if a.status == -1 {
						time.Sleep(50 * time.Millisecond) // the node is down
					}
					if i%10 == 0 {
						if s, err := issue(hc, nd.url(), c.root); err == nil {
							mu.Lock()
							leases = append(leases, s)
							mu.Unlock()
						}
					}
				}
			}()
		}
		time.Sleep(1500 * time.Millisecond)
		victim := c.active()
		var others []*clusterNode
		for _, nd := range c.nodes {
			if nd != victim {
				others = append(others, nd)
			}
		}
		killed := time.Now()
		kills = append(kills, victim.id+"@"+killed.UTC().Format(time.RFC3339Nano))
		c.kill(victim)
		next := c.active(others...)
		took := time.Since(killed)
		failovers = append(failovers, took)
		t.Logf("round %d: killed %s; %s active after %v", round, victim.id, next.id, took)
		time.Sleep(time.Second)
		c.start(victim)
		c.unseal(victim)
		close(stop)
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 100 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	// Every acknowledged write, through every node.
	for _, nd := range c.nodes {
		kv := c.client(nd).KVv2("secret")
		for _, a := range acked {
			s, err := kv.Get(context.Background(), a.key)
			if err != nil || s == nil || s.Data["v"] != a.value {
				t.Fatalf("acknowledged write %s not readable through %s: %v %v", a.key, nd.id, s, err)
			}
		}
	}
	// The short leases expire and are revoked: wait until the active node
	// lists none (a lease is deleted after its revocation's response entry
	// is durable).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		left, err := c.client(c.active()).Logical().List("sys/leases/lookup/pki/issue/short/")
		if err == nil && left == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leases not revoked: %v %v", left, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Every acknowledged request in some node's chain, every chain verifying.
	seen := map[string]bool{}
	revoked := map[string]int{}        // independent revocations (not resumptions)
	revokedBy := map[string][]string{} // lease: node@time of each revocation
	revokeReqs := map[string]string{}  // revoke request id: its lease
	resumed := map[string]string{}     // resumed revocation's lease: the request it resumes
	for _, nd := range c.nodes {
		pub := fetchKeyTLS(t, hc, nd.url(), c.root)
		rep, err := chain.VerifyLog(context.Background(), nd.auditLog, chain.VerifyOptions{PublicKey: pub, NodeID: nd.id, Strict: true})
		if err != nil || !rep.OK {
			t.Fatalf("%s's chain: %v %v", nd.id, rep, err)
		}
		for _, l := range readLog(t, nd.auditLog) {
			if l.Type == "response" && l.Error == "" {
				seen[l.requestID()] = true
				if l.Request["operation"] == "revoke" {
					if d, ok := l.Request["data"].(map[string]any); ok {
						lid := fmt.Sprint(d["lease_id"])
						by := nd.id + "@" + l.Time
						// A revocation that completes one interrupted by a
						// crash names it; it is the same revocation.
						flags, _ := l.Vigil["flags"].(map[string]any)
						if r, ok := flags["resumes_request_id"].(string); ok && r != "" {
							resumed[lid] = r
							by += " (resumes " + r + ")"
						} else {
							revoked[lid]++
						}
						revokedBy[lid] = append(revokedBy[lid], by)
					}
				}
			}
			if l.Type == "request" && l.Request["operation"] == "revoke" {
				if d, ok := l.Request["data"].(map[string]any); ok {
					revokeReqs[l.requestID()] = fmt.Sprint(d["lease_id"])
				}
			}
		}
	}
	for lid, r := range resumed {
		if other, ok := revokeReqs[r]; ok && other != lid {
			t.Fatalf("revocation of lease %s resumes request %s, a revocation of lease %s", lid, r, other)
		}
		if revoked[lid] == 0 {
			revoked[lid] = 1 // its first request crashed before its response
		}
		t.Logf("lease %s: revocation %s resumed after a crash (its response recorded: %v): %v (kills at %v)", lid, r, seen[r], revokedBy[lid], kills)
	}
	for _, a := range acked {
		if !seen[a.id] {
			t.Fatalf("acknowledged request %s (%s) is in no node's chain", a.id, a.key)
		}
	}
	for id, n := range revoked {
		if n > 1 {
			t.Fatalf("lease %s revoked %d times: %v (kills at %v)", id, n, revokedBy[id], kills)
		}
	}
	if len(leases) > 0 && len(revoked) == 0 {
		t.Fatalf("%d leases issued, none revoked", len(leases))
	}
	sort.Slice(failovers, func(i, j int) bool { return failovers[i] < failovers[j] })
	t.Logf("%d acknowledged writes, %d leases (%d revoked, none twice); failover p50 %v max %v",
		len(acked), len(leases), len(revoked), failovers[len(failovers)/2], failovers[len(failovers)-1])
}

// issue asks for a short-lived certificate (a lease) and returns its lease id.
func issue(hc *http.Client, url, token string) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/pki/issue/short", strings.NewReader(`{"common_name":"x.example"}`))
	req.Header.Set("X-Vault-Token", token)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		LeaseID string `json:"lease_id"`
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", err
	}
	if v.LeaseID == "" {
		return "", fmt.Errorf("no lease id")
	}
	return v.LeaseID, nil
}

// fetchKeyTLS reads the audit checkpoint key through a TLS listener.
func fetchKeyTLS(t *testing.T, hc *http.Client, url, token string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/sys/audit/checkpoint-key", nil)
	req.Header.Set("X-Vault-Token", token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data struct {
			PublicKey string `json:"public_key"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(env.Data.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A node stopped with SIGSTOP (partitioned away) catches up once it runs
// again; a removed node cannot take part, nor rejoin by itself, until it is
// joined anew with the unseal key.
func TestClusterPartitionAndRemoval(t *testing.T) {
	c := formCluster(t)
	leader := c.active()
	var victim *clusterNode
	for _, nd := range c.nodes {
		if nd != leader {
			victim = nd
		}
	}
	c.signal(victim, syscall.SIGSTOP)
	kv := c.client(leader).KVv2("secret")
	for i := range 50 {
		if _, err := kv.Put(context.Background(), fmt.Sprintf("while-stopped-%02d", i), map[string]any{"i": i}); err != nil {
			t.Fatalf("write with one node stopped: %v", err)
		}
	}
	want, err := c.appliedIndex(leader)
	if err != nil {
		t.Fatal(err)
	}
	c.signal(victim, syscall.SIGCONT)
	c.eventually(60*time.Second, func() error {
		got, err := c.appliedIndex(victim)
		if err != nil || got < want {
			return fmt.Errorf("%s at index %d, leader at %d (%v)", victim.id, got, want, err)
		}
		return nil
	})

	// Removal: the node's certificate is revoked; restarted and unsealed it
	// cannot serve, and stays out of the configuration.
	if out, err := c.cli(leader, "operator", "raft", "remove-peer", victim.id); err != nil {
		t.Fatalf("remove-peer: %v\n%s", err, out)
	}
	c.kill(victim)
	c.start(victim)
	c.unseal(victim)
	time.Sleep(3 * time.Second)
	if v := c.voters(); len(v) != 2 || v[victim.id] {
		t.Fatalf("a removed node is back in the configuration: %v", v)
	}
	a := kvPut(c.httpClient(), victim.url(), c.root, "from-removed", map[string]any{"v": 1})
	if a.status >= 200 && a.status < 300 {
		t.Fatalf("a removed node served a write: %+v", a)
	}
	// Re-added: sealed again, joined with the unseal key.
	c.kill(victim)
	c.start(victim)
	if out, err := c.cli(victim, "operator", "raft", "join", "-leader-ca-cert", c.caFile, leader.url()); err != nil {
		t.Fatalf("join: %v\n%s", err, out)
	}
	c.unseal(victim)
	c.eventually(90*time.Second, func() error {
		if v := c.voters(); len(v) != 3 || !v[victim.id] {
			return fmt.Errorf("voters %v", v)
		}
		return nil
	})
	if _, err := c.client(victim).KVv2("secret").Put(context.Background(), "rejoined", map[string]any{"v": 1}); err != nil {
		t.Fatalf("write through the rejoined node: %v", err)
	}
	out, err := c.cli(victim, "operator", "raft", "list-peers")
	if err != nil || !strings.Contains(out, victim.id) || !strings.Contains(out, "leader") {
		t.Fatalf("list-peers: %v\n%s", err, out)
	}
}

// cli runs the vigil CLI against nd.
func (c *testCluster) cli(nd *clusterNode, args ...string) (string, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "VIGIL_ADDR="+nd.url(), "VIGIL_TOKEN="+c.root, "VIGIL_CACERT="+c.caFile)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// With auto-unseal (a transit seal served by another vigil process), the
// nodes join by themselves: the configured seal opens the challenge, no
// key is typed. A node whose seal uses another key cannot open it and
// never becomes a member.
func TestClusterAutoUnsealJoin(t *testing.T) {
	a := newVigilProc(t, t.TempDir())
	a.StartDev()
	if err := a.Client.Sys().Mount("transit", &vaultapiMountTransit); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"autounseal", "other"} {
		if _, err := a.Client.Logical().Write("transit/keys/"+k, nil); err != nil {
			t.Fatal(err)
		}
	}
	c := startClusterWith(t, 3, transitHCL(a.URL, "autounseal"), "node")
	res := initAuto(t, c.client(c.nodes[0]), 3, 2, holders3)
	c.root = res.RootToken
	c.eventually(60*time.Second, func() error { return c.isActive(c.nodes[0]) })
	if _, err := c.client(c.nodes[0]).Logical().Write("sys/storage/raft/autopilot/configuration",
		map[string]any{"server_stabilization_time": "1s"}); err != nil {
		t.Fatal(err)
	}
	c.eventually(90*time.Second, func() error {
		if v := c.voters(); len(v) != 3 || !v["node1"] || !v["node2"] || !v["node3"] {
			return fmt.Errorf("voters %v", v)
		}
		return nil
	})
	for _, nd := range c.nodes {
		st, err := c.client(nd).Sys().SealStatus()
		if err != nil || st.Sealed || !st.RecoverySeal {
			t.Fatalf("%s: %+v %v", nd.id, st, err)
		}
	}
	// A fourth node with the wrong transit key: refused for good.
	wrong := startClusterWith(t, 1, transitHCL(a.URL, "other"), "stranger")
	nd := wrong.nodes[0]
	cl := wrong.client(nd)
	if _, err := cl.Sys().RaftJoin(&vaultapi.RaftJoinRequest{LeaderAPIAddr: c.active().url(), LeaderCACert: string(mustRead(t, c.caFile))}); err == nil {
		t.Fatal("a node whose seal cannot open the cluster's root key joined")
	} else if !strings.Contains(err.Error(), "does not open the cluster's root key") {
		t.Fatalf("join with the wrong seal: %v", err)
	}
	if v := c.voters(); len(v) != 3 {
		t.Fatalf("configuration changed: %v", v)
	}
}
