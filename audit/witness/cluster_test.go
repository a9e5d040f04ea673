package witness

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/core/clustertls"
	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/storage"
)

// leaderWrites is the storage each node's witness uses in this test: reads
// from the node's own replicated state, writes through whichever node
// leads. It stands in for forwarding a standby's writes to the active node
// over the cluster port, which the server does not do yet; everything
// else (replication, apply hooks, countersigning) is the real thing.
type leaderWrites struct {
	local *raftstore.Store
	all   func() []*raftstore.Store
}

func (l leaderWrites) leader() *raftstore.Store {
	for _, s := range l.all() {
		if s != nil && s.IsLeader() {
			return s
		}
	}
	return l.local
}
func (l leaderWrites) Get(ctx context.Context, k string) ([]byte, error) { return l.local.Get(ctx, k) }
func (l leaderWrites) List(ctx context.Context, p string) ([]string, error) {
	return l.local.List(ctx, p)
}
func (l leaderWrites) Put(ctx context.Context, k string, v []byte) error {
	return l.leader().Put(ctx, k, v)
}
func (l leaderWrites) Delete(ctx context.Context, k string) error { return l.leader().Delete(ctx, k) }

var _ storage.Storage = leaderWrites{}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond) // polling replicated state
	}
}

// node is one cluster member: its raft store, its witness and the audit
// log it writes.
type node struct {
	id      string
	addr    string
	dir     string
	store   *raftstore.Store
	witness *Cluster
	cancel  context.CancelFunc
	done    chan struct{}
}

type testCluster struct {
	mu    sync.Mutex
	nodes []*node
	key   ed25519.PrivateKey
	ca    *clustertls.CA // the nodes talk mutual TLS, as servers do
}

func (c *testCluster) identity(t *testing.T, id string) *raftstore.TLSIdentity {
	n, err := c.ca.Issue(id, clustertls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cert, pool, err := n.TLS()
	if err != nil {
		t.Fatal(err)
	}
	return &raftstore.TLSIdentity{Certificate: cert, CAs: pool, ServerName: clustertls.ServerName}
}

func (c *testCluster) stores() []*raftstore.Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*raftstore.Store
	for _, n := range c.nodes {
		out = append(out, n.store)
	}
	return out
}

// start opens n's raft store (bootstrapping the first node) and its
// witness.
func (c *testCluster) start(t *testing.T, n *node, bootstrap bool) {
	t.Helper()
	var w *Cluster
	st, err := raftstore.Open(raftstore.Config{Dir: filepath.Join(n.dir, "raft"), NodeID: n.id, BindAddr: n.addr, Bootstrap: bootstrap,
		TLS:              c.identity(t, n.id),
		HeartbeatTimeout: 150 * time.Millisecond, ElectionTimeout: 150 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond,
		OnApply: func(keys []string) {
			c.mu.Lock()
			ww := w
			c.mu.Unlock()
			if ww != nil {
				ww.OnApply(keys)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	pub := c.key.Public().(ed25519.PublicKey)
	c.mu.Lock()
	n.store = st
	w = NewCluster(ClusterConfig{Storage: leaderWrites{local: st, all: c.stores}, NodeID: n.id, ClusterKey: func() ed25519.PublicKey { return pub }})
	n.witness = w
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go func() { defer close(n.done); w.Run(ctx) }()
	if bootstrap {
		if err := st.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *testCluster) stop(n *node) {
	n.cancel()
	<-n.done
	_ = n.store.Close()
}

// A three-node cluster: each node's checkpoints are replicated through
// Raft and countersigned by the two others. When one node's files (its
// Raft state and its audit log) are rolled back to an older copy, it
// catches up from the cluster, finds newer checkpoints of its own chain
// there — its own record and the others' countersignatures — and its audit
// log is refused.
func TestClusterRefusesRolledBackNode(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	ca, err := clustertls.NewCA("witness-test", clustertls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{key: key, ca: ca}
	for i := 1; i <= 3; i++ {
		c.nodes = append(c.nodes, &node{id: fmt.Sprintf("n%d", i), addr: freePort(t), dir: t.TempDir()})
	}
	c.start(t, c.nodes[0], true)
	for _, n := range c.nodes[1:] {
		c.start(t, n, false)
		if err := c.nodes[0].store.AddVoter(context.Background(), n.id, n.store.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, n := range c.nodes {
			c.stop(n)
		}
	}()
	ctx := context.Background()
	for _, n := range c.nodes {
		if _, err := n.witness.LoadKey(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// n2 writes its audit log; every checkpoint goes to the cluster.
	victim := c.nodes[1]
	logPath := filepath.Join(victim.dir, "audit", "audit.log")
	cfg := chain.Config{Path: logPath, NodeID: victim.id, Signer: key, CheckpointEvery: 5, CheckpointInterval: -1, WatchInterval: -1,
		CheckpointSink: func(cp chain.Checkpoint) error {
			rec := checkpointRecord{NodeID: cp.NodeID, Seq: cp.Seq, Hash: cp.Hash, TreeSize: cp.TreeSize, Root: cp.Root, Time: cp.Time,
				Signature: cp.JSON().Signature, KeyID: cp.KeyID, Device: "file", Path: logPath}
			return storage.PutJSON(ctx, victim.witness.cfg.Storage, CheckpointKey(victim.id, "file"), rec)
		}}
	w, err := chain.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	write := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := w.Append(ctx, []byte(fmt.Sprintf(`{"type":"request","request":{"id":"%d"}}`, i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(12)
	w.Close()
	seqAt := func() uint64 { s, _ := w.Head(); return s }
	oldHead := seqAt()
	waitCountersigned(t, c, victim.id, oldHead-1)
	// Keep n2's files as they are now, then go on.
	c.stop(victim)
	backup := t.TempDir()
	copyDir(t, victim.dir, backup)
	c.start(t, victim, false)
	if w, err = chain.Open(cfg); err != nil {
		t.Fatal(err)
	}
	write(20)
	w.Close()
	newHead := seqAt()
	waitCountersigned(t, c, victim.id, newHead-1)
	// Roll n2's files back and restart it: raft catches up from the
	// others, and what the cluster holds is newer than n2's log.
	c.stop(victim)
	os.RemoveAll(victim.dir)
	copyDir(t, backup, victim.dir)
	c.start(t, victim, false)
	var trusted []chain.Checkpoint
	eventually(t, "the rolled-back node catches up with the cluster's checkpoints of its chain", func() error {
		held, err := victim.witness.Holdings(ctx, victim.id, "file", logPath)
		if err != nil {
			return err
		}
		ok, bad := Verified(key.Public().(ed25519.PublicKey), victim.id, held)
		if len(bad) > 0 {
			return fmt.Errorf("unverifiable: %v", bad)
		}
		counter := 0
		for _, cp := range ok {
			if cp.Seq == newHead-1 && cp.Source != "raft storage" {
				counter++
			}
		}
		if counter < 2 {
			return fmt.Errorf("%d countersigned copies of seq %d so far (holdings %v)", counter, newHead-1, ok)
		}
		trusted = ok
		return nil
	})
	cfg.TrustedCheckpoints = trusted
	_, err = chain.Open(cfg)
	var re *chain.RefusalError
	if !errors.As(err, &re) || re.Failure.Kind != chain.KindTruncated {
		t.Fatalf("a rolled-back node's log opened against the cluster's checkpoints: %v", err)
	}
	t.Logf("refused: %v", err)
	// The others countersigned; none of them went back when n2's own
	// record did not (the cluster log replays the newer record anyway).
	if n := c.nodes[0].witness.Countersigned.Load() + c.nodes[2].witness.Countersigned.Load(); n < 4 {
		t.Fatalf("countersignatures written by n1 and n3: %d", n)
	}
}

// waitCountersigned waits until both other nodes countersigned node's
// checkpoint at seq.
func waitCountersigned(t *testing.T, c *testCluster, id string, seq uint64) {
	t.Helper()
	eventually(t, "countersignatures", func() error {
		for _, n := range c.nodes {
			if n.id == id {
				continue
			}
			var cs Countersignature
			ok, err := storage.GetJSON(context.Background(), n.store, KeyCountersign+id+"/file/"+n.id, &cs)
			if err != nil || !ok || cs.Checkpoint.Seq != seq {
				got := uint64(0)
				if ok {
					got = cs.Checkpoint.Seq
				}
				return fmt.Errorf("%s countersigned seq %d, want %d (%v)", n.id, got, seq, err)
			}
			pub, err := n.witness.NodeKey(context.Background(), n.id)
			if err != nil || pub == nil || cs.Verify(pub) != nil {
				return fmt.Errorf("%s's countersignature does not verify", n.id)
			}
		}
		return nil
	})
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
