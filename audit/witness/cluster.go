package witness

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/core/storage"
)

// Storage keys of the cluster witness, under the barrier.
const (
	KeyCheckpoints  = "sys/audit/checkpoints/"  // <node>/<device>: each node's newest checkpoint per device
	KeyCountersign  = "sys/audit/countersign/"  // <node>/<device>/<witness>: countersignatures
	KeyWitnessNodes = "sys/audit/witness-keys/" // <node>: each node's countersigning key
)

// CheckpointKey is where node's newest checkpoint of device is kept.
func CheckpointKey(node, device string) string { return KeyCheckpoints + node + "/" + device }

// nodeKey is a node's countersigning key as stored.
type nodeKey struct {
	Seed    []byte    `json:"seed"`
	Public  []byte    `json:"public"`
	Created time.Time `json:"created"`
}

// ClusterConfig configures a Cluster.
type ClusterConfig struct {
	// Storage is replicated to every node (the barrier over Raft).
	Storage storage.Storage
	NodeID  string
	// ClusterKey returns the checkpoint key that signs every node's
	// checkpoints (nil while sealed).
	ClusterKey func() ed25519.PublicKey
	Now        func() time.Time
	Logger     *slog.Logger
	Rand       io.Reader
}

// Cluster countersigns other nodes' checkpoints as they are replicated
// and answers what the cluster holds for a node. Its storage writes go
// through Raft: a standby's are forwarded to the leader over the cluster
// port; while there is no leader they fail (counted in Errors, never
// fatal) and the next checkpoint is countersigned instead. Safe for
// concurrent use.
type Cluster struct {
	cfg ClusterConfig

	mu      sync.Mutex
	key     ed25519.PrivateKey
	pending map[string]bool
	wake    chan struct{}

	Countersigned atomic.Uint64
	Errors        atomic.Uint64
	lastErr       atomic.Pointer[string]
}

// NewCluster returns a cluster witness; call Start once unsealed.
func NewCluster(cfg ClusterConfig) *Cluster {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Cluster{cfg: cfg, pending: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// LastError returns the last countersigning error ("" if none).
func (c *Cluster) LastError() string {
	if p := c.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

func (c *Cluster) noteErr(err error) {
	c.Errors.Add(1)
	msg := err.Error()
	prev := c.lastErr.Swap(&msg)
	if prev != nil && *prev == msg {
		c.cfg.Logger.Debug("audit witness: countersigning failed", "error", err) // said already
		return
	}
	c.cfg.Logger.Warn("audit witness: countersigning failed", "error", err)
}

// LoadKey loads this node's countersigning key, creating it on first use.
func (c *Cluster) LoadKey(ctx context.Context) (ed25519.PublicKey, error) {
	var k nodeKey
	ok, err := storage.GetJSON(ctx, c.cfg.Storage, KeyWitnessNodes+c.cfg.NodeID, &k)
	if err != nil {
		return nil, err
	}
	if !ok || len(k.Seed) != ed25519.SeedSize {
		pub, priv, err := ed25519.GenerateKey(c.cfg.Rand)
		if err != nil {
			return nil, err
		}
		k = nodeKey{Seed: priv.Seed(), Public: pub, Created: c.cfg.Now().UTC()}
		if err := storage.PutJSON(ctx, c.cfg.Storage, KeyWitnessNodes+c.cfg.NodeID, k); err != nil {
			return nil, fmt.Errorf("store witness key: %w", err)
		}
	}
	priv := ed25519.NewKeyFromSeed(k.Seed)
	c.mu.Lock()
	c.key = priv
	c.mu.Unlock()
	return priv.Public().(ed25519.PublicKey), nil
}

// NodeKey returns node's countersigning public key (nil if it has none).
func (c *Cluster) NodeKey(ctx context.Context, node string) (ed25519.PublicKey, error) {
	var k nodeKey
	ok, err := storage.GetJSON(ctx, c.cfg.Storage, KeyWitnessNodes+node, &k)
	if err != nil || !ok {
		return nil, err
	}
	if len(k.Public) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("witness key of %s is malformed", node)
	}
	return ed25519.PublicKey(k.Public), nil
}

// OnApply is a storage apply hook: it queues every other node's new
// checkpoint for countersigning. It never blocks.
func (c *Cluster) OnApply(keys []string) {
	queued := false
	c.mu.Lock()
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, KeyCheckpoints)
		if !ok {
			continue
		}
		node, _, ok := strings.Cut(rest, "/")
		if ok && node != c.cfg.NodeID {
			c.pending[k] = true
			queued = true
		}
	}
	c.mu.Unlock()
	if queued {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// Run countersigns queued checkpoints until ctx ends. Only the newest
// checkpoint per (node, device) is countersigned when several arrive at
// once.
func (c *Cluster) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		c.mu.Lock()
		keys := make([]string, 0, len(c.pending))
		for k := range c.pending {
			keys = append(keys, k)
		}
		clear(c.pending)
		c.mu.Unlock()
		for _, k := range keys {
			if err := c.countersign(ctx, k); err != nil && ctx.Err() == nil {
				c.noteErr(err)
			}
		}
	}
}

// checkpointRecord is the stored form of a node's checkpoint (the audit
// subsystem writes it with more members; these are the ones used here).
type checkpointRecord struct {
	NodeID    string    `json:"node_id"`
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	TreeSize  uint64    `json:"tree_size"`
	Root      string    `json:"root"`
	Time      time.Time `json:"time"`
	Signature string    `json:"signature"`
	KeyID     string    `json:"key_id"`
	Device    string    `json:"device"`
	Path      string    `json:"path"`
}

func (r checkpointRecord) checkpoint() (chain.Checkpoint, error) {
	return chain.SignedCheckpoint{NodeID: r.NodeID, Seq: r.Seq, Hash: r.Hash, TreeSize: r.TreeSize, Root: r.Root,
		Time: r.Time, Signature: r.Signature, KeyID: r.KeyID}.Checkpoint()
}

// countersign signs the checkpoint stored at key (a KeyCheckpoints key)
// if the cluster key signed it and it is newer than what this node
// countersigned before.
func (c *Cluster) countersign(ctx context.Context, key string) error {
	c.mu.Lock()
	priv := c.key
	c.mu.Unlock()
	if priv == nil {
		// Not loaded at unseal (a standby without a leader then): load
		// or create it now that a checkpoint arrived through Raft.
		if _, err := c.LoadKey(ctx); err != nil {
			return fmt.Errorf("no countersigning key: %w", err)
		}
		c.mu.Lock()
		priv = c.key
		c.mu.Unlock()
	}
	var rec checkpointRecord
	ok, err := storage.GetJSON(ctx, c.cfg.Storage, key, &rec)
	if err != nil || !ok {
		return err
	}
	cp, err := rec.checkpoint()
	if err != nil {
		return err
	}
	rest := strings.TrimPrefix(key, KeyCheckpoints)
	node, device, _ := strings.Cut(rest, "/")
	if cp.NodeID != node {
		return fmt.Errorf("%s holds a checkpoint of node %q", key, cp.NodeID)
	}
	pub := c.cfg.ClusterKey()
	if pub == nil {
		return errors.New("sealed: no checkpoint key")
	}
	if err := cp.Verify(pub); err != nil {
		return fmt.Errorf("not countersigning %s's checkpoint at seq %d: %w", node, cp.Seq, err)
	}
	csKey := KeyCountersign + node + "/" + device + "/" + c.cfg.NodeID
	var prev Countersignature
	if ok, err := storage.GetJSON(ctx, c.cfg.Storage, csKey, &prev); err == nil && ok {
		switch {
		case prev.Checkpoint.Seq > cp.Seq:
			// A node that goes back in its own chain: keep what was seen.
			return fmt.Errorf("%s's checkpoint of %s went back from seq %d to %d; keeping the countersignature of seq %d",
				node, device, prev.Checkpoint.Seq, cp.Seq, prev.Checkpoint.Seq)
		case prev.Checkpoint.Seq == cp.Seq:
			return nil
		}
	}
	cs := Countersignature{Device: device, Path: rec.Path, Checkpoint: cp.JSON(), Witness: c.cfg.NodeID, Time: c.cfg.Now().UTC()}
	if err := cs.Sign(priv); err != nil {
		return err
	}
	if err := storage.PutJSON(ctx, c.cfg.Storage, csKey, cs); err != nil {
		return fmt.Errorf("store countersignature of %s/%s: %w", node, device, err)
	}
	c.Countersigned.Add(1)
	return nil
}

// Holdings returns what the cluster holds for (node, device) whose log is
// at path ("": any): the node's own stored checkpoint and every
// countersigned copy whose countersignature verifies, each with Source
// naming where it came from. The checkpoints' own signatures are not
// checked here (see Verified).
func (c *Cluster) Holdings(ctx context.Context, node, device, path string) ([]chain.Checkpoint, error) {
	var out []chain.Checkpoint
	var rec checkpointRecord
	ok, err := storage.GetJSON(ctx, c.cfg.Storage, CheckpointKey(node, device), &rec)
	if err != nil {
		return nil, err
	}
	if ok && (path == "" || rec.Path == "" || rec.Path == path) {
		if cp, err := rec.checkpoint(); err == nil {
			cp.Source = "raft storage"
			out = append(out, cp)
		}
	}
	prefix := KeyCountersign + node + "/" + device + "/"
	names, err := c.cfg.Storage.List(ctx, prefix)
	if err != nil {
		return out, err
	}
	for _, w := range names {
		if strings.HasSuffix(w, "/") {
			continue
		}
		var cs Countersignature
		if ok, err := storage.GetJSON(ctx, c.cfg.Storage, prefix+w, &cs); err != nil || !ok {
			continue
		}
		pub, err := c.NodeKey(ctx, cs.Witness)
		if err != nil || pub == nil || cs.Witness != w {
			c.cfg.Logger.Warn("audit witness: countersignature without a known witness key", "witness", w)
			continue
		}
		if err := cs.Verify(pub); err != nil {
			c.cfg.Logger.Warn("audit witness: countersignature does not verify", "witness", w, "error", err)
			continue
		}
		if path != "" && cs.Path != "" && cs.Path != path {
			continue // another log the device wrote before its path changed
		}
		cp, err := cs.Checkpoint.Checkpoint()
		if err != nil {
			continue
		}
		cp.Source = "node " + w + " (countersigned)"
		out = append(out, cp)
	}
	return out, nil
}

// Countersignatures returns the verified countersignatures of (node, device).
func (c *Cluster) Countersignatures(ctx context.Context, node, device string) ([]Countersignature, error) {
	prefix := KeyCountersign + node + "/" + device + "/"
	names, err := c.cfg.Storage.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []Countersignature
	for _, w := range names {
		var cs Countersignature
		if ok, err := storage.GetJSON(ctx, c.cfg.Storage, prefix+w, &cs); err != nil || !ok {
			continue
		}
		out = append(out, cs)
	}
	return out, nil
}
