package chain

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/audit/merkle"
)

// ErrNoProof is returned when a proof cannot be made: no Merkle store, the
// store is incomplete, or the line or checkpoint asked for is not in the
// log.
var ErrNoProof = errors.New("audit chain: no proof available")

// proofState is what proof requests read while the writer appends.
type proofState struct {
	mu         sync.RWMutex
	chainStart uint64
	lastCP     Checkpoint // the newest durable checkpoint
	storeErr   error      // why the store cannot serve proofs

	// The writer goroutine queues each durable batch's tree nodes; the
	// store goroutine writes them, off the write path.
	qmu   sync.Mutex
	queue []storedNode
	wake  chan struct{}
	off   atomic.Bool // the store was dropped: queue nothing
}

// storeNodes queues a durable batch's tree nodes for the store goroutine.
func (w *Writer) storeNodes(nodes []storedNode) {
	if w.proofs.wake == nil || w.proofs.off.Load() {
		return
	}
	w.proofs.qmu.Lock()
	w.proofs.queue = append(w.proofs.queue, nodes...)
	w.proofs.qmu.Unlock()
	select {
	case w.proofs.wake <- struct{}{}:
	default:
	}
}

// The store goroutine writes when storeBatch nodes are queued or
// storeLinger after the first one.
const (
	storeBatch  = 4096
	storeLinger = 10 * time.Millisecond
)

// storeLoop writes queued nodes to the store. A store that fails is
// dropped (proofs then report why); the log is unaffected.
func (w *Writer) storeLoop() {
	defer w.bg.Done()
	var batch []storedNode
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		stop := false
		select {
		case <-w.proofs.wake:
		case <-w.stopBg:
			stop = true
		}
		// Let small batches gather for a moment: one write per level for
		// many batches instead of one per batch.
		w.proofs.qmu.Lock()
		small := len(w.proofs.queue) < storeBatch
		w.proofs.qmu.Unlock()
		if small && !stop {
			linger.Reset(storeLinger)
			select {
			case <-linger.C:
			case <-w.stopBg:
				linger.Stop()
				stop = true
			}
		}
		w.proofs.qmu.Lock()
		batch, w.proofs.queue = w.proofs.queue, batch[:0]
		w.proofs.qmu.Unlock()
		w.proofs.mu.RLock()
		st := w.store
		w.proofs.mu.RUnlock()
		if st != nil && len(batch) > 0 {
			for _, n := range batch {
				st.Add(n.level, n.index, n.h)
			}
			if err := st.Flush(); err != nil {
				w.log.Error("audit chain: Merkle store write failed; proofs are unavailable until the next start rebuilds it", "err", err)
				w.proofs.mu.Lock()
				w.proofs.storeErr = err
				w.proofs.mu.Unlock()
				w.closeStore()
			}
		}
		if stop {
			return
		}
	}
}

func (w *Writer) noteCheckpoint(cp Checkpoint, chainStart uint64) {
	w.proofs.mu.Lock()
	w.proofs.lastCP, w.proofs.chainStart = cp, chainStart
	w.proofs.mu.Unlock()
}

func (w *Writer) closeStore() {
	w.proofs.off.Store(true)
	w.proofs.mu.Lock()
	st := w.store
	w.store = nil
	if w.proofs.storeErr == nil {
		w.proofs.storeErr = errors.New("the writer is closed")
	}
	w.proofs.mu.Unlock()
	if st != nil {
		_ = st.Close()
	}
}

// LastCheckpoint returns the newest durable checkpoint and the seq the
// chain starts at.
func (w *Writer) LastCheckpoint() (Checkpoint, uint64) {
	w.proofs.mu.RLock()
	defer w.proofs.mu.RUnlock()
	return w.proofs.lastCP, w.proofs.chainStart
}

// storeFor returns the store once it holds a tree of at least size leaves
// (the store goroutine may be a batch behind).
func (w *Writer) storeFor(size uint64) (merkle.Store, error) {
	w.proofs.mu.RLock()
	st, serr := w.store, w.proofs.storeErr
	w.proofs.mu.RUnlock()
	if st == nil {
		if serr == nil {
			serr = errors.New("the Merkle store is disabled")
		}
		return nil, fmt.Errorf("%w: %v", ErrNoProof, serr)
	}
	for deadline := time.Now().Add(5 * time.Second); st.Leaves() < size && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond) // rare: a proof asked for right after its checkpoint
	}
	if st.Leaves() < size {
		return nil, fmt.Errorf("%w: the Merkle store holds %d leaves, the tree has %d", ErrNoProof, st.Leaves(), size)
	}
	return st, nil
}

// InclusionBundle proves that one log line is in the tree a signed
// checkpoint's root commits to. Line is the whole line (without newline),
// so a verifier recomputes its chain hash, hence its leaf, itself.
type InclusionBundle struct {
	Type       string           `json:"type"` // "inclusion"
	NodeID     string           `json:"node_id"`
	Seq        uint64           `json:"seq"`
	Line       string           `json:"line"`
	LeafIndex  uint64           `json:"leaf_index"`
	TreeSize   uint64           `json:"tree_size"`
	Proof      []string         `json:"proof"`
	Checkpoint SignedCheckpoint `json:"checkpoint"`
}

// ConsistencyBundle proves that the tree of checkpoint To extends the tree
// of checkpoint From: nothing the first one covers was changed later.
type ConsistencyBundle struct {
	Type  string           `json:"type"` // "consistency"
	From  SignedCheckpoint `json:"from"`
	To    SignedCheckpoint `json:"to"`
	Proof []string         `json:"proof"`
}

func hexPath(p []merkle.Hash) []string {
	out := make([]string, len(p))
	for i, h := range p {
		out[i] = h.String()
	}
	return out
}

// Prove returns the inclusion proof of the line at seq against cp, a
// checkpoint of this chain whose tree covers seq (the newest one when cp
// is nil; Checkpoint first if seq is newer than it). Errors wrap
// ErrNoProof.
func (w *Writer) Prove(seq uint64, cp *Checkpoint) (*InclusionBundle, error) {
	last, start := w.LastCheckpoint()
	if cp == nil {
		cp = &last
	}
	if seq < start || seq > cp.Seq {
		return nil, fmt.Errorf("%w: seq %d is not covered by the checkpoint at seq %d (the chain starts at seq %d)", ErrNoProof, seq, cp.Seq, start)
	}
	if cp.Seq-cp.TreeSize+1 != start {
		return nil, fmt.Errorf("%w: the checkpoint at seq %d belongs to another chain", ErrNoProof, cp.Seq)
	}
	st, err := w.storeFor(cp.TreeSize)
	if err != nil {
		return nil, err
	}
	if root, err := merkle.RootAt(st, cp.TreeSize); err != nil || root.String() != cp.Root {
		return nil, fmt.Errorf("%w: the Merkle store does not give the checkpoint's root (%v)", ErrNoProof, err)
	}
	path, err := merkle.InclusionProof(st, seq-start, cp.TreeSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoProof, err)
	}
	line, err := w.ReadLine(seq)
	if err != nil {
		return nil, err
	}
	return &InclusionBundle{Type: "inclusion", NodeID: w.cfg.NodeID, Seq: seq, Line: string(line), LeafIndex: seq - start,
		TreeSize: cp.TreeSize, Proof: hexPath(path), Checkpoint: cp.JSON()}, nil
}

// ProveConsistency returns the proof that checkpoint to extends checkpoint
// from (both of this chain; to defaults to the newest).
func (w *Writer) ProveConsistency(from Checkpoint, to *Checkpoint) (*ConsistencyBundle, error) {
	last, start := w.LastCheckpoint()
	if to == nil {
		to = &last
	}
	for _, c := range []*Checkpoint{&from, to} {
		if c.Seq-c.TreeSize+1 != start {
			return nil, fmt.Errorf("%w: the checkpoint at seq %d belongs to another chain", ErrNoProof, c.Seq)
		}
	}
	if from.TreeSize > to.TreeSize {
		return nil, fmt.Errorf("%w: the checkpoint at seq %d is newer than the one at seq %d", ErrNoProof, from.Seq, to.Seq)
	}
	st, err := w.storeFor(to.TreeSize)
	if err != nil {
		return nil, err
	}
	path, err := merkle.ConsistencyProof(st, from.TreeSize, to.TreeSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoProof, err)
	}
	return &ConsistencyBundle{Type: "consistency", From: from.JSON(), To: to.JSON(), Proof: hexPath(path)}, nil
}

// CheckpointAt returns the checkpoint whose record line covers seq (the
// checkpoint line at seq+1).
func (w *Writer) CheckpointAt(seq uint64) (Checkpoint, error) {
	if last, _ := w.LastCheckpoint(); last.Seq == seq {
		return last, nil
	}
	line, err := w.ReadLine(seq + 1)
	if err != nil {
		return Checkpoint{}, err
	}
	cp, err := ParseCheckpointLine(line)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: no checkpoint covers seq %d (the line after it is not a checkpoint)", ErrNoProof, seq)
	}
	return cp, nil
}

// ReadLine returns the line with seq (without its newline) from the log's
// segments, plain or compressed.
func (w *Writer) ReadLine(seq uint64) ([]byte, error) { return ReadLine(w.cfg.Path, seq) }

// ReadLine returns the line with seq of the log whose active file is path.
func ReadLine(path string, seq uint64) ([]byte, error) {
	segs, err := ListSegments(path)
	if err != nil {
		return nil, err
	}
	i := sort.Search(len(segs), func(i int) bool { return segs[i].FirstSeq > seq }) - 1
	if i < 0 {
		return nil, fmt.Errorf("%w: seq %d precedes the oldest segment", ErrNoProof, seq)
	}
	rc, err := openSegment(segs[i].Path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 256<<10)
	for {
		line, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) {
			var more []byte
			more, err = br.ReadSlice('\n')
			line = append(bytes.Clone(line), more...)
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			l := line[:len(line)-1]
			if f, perr := parseChain(l); perr == nil && f.Seq == seq {
				return bytes.Clone(l), nil
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: seq %d is not in %s", ErrNoProof, seq, segs[i].Path)
			}
			return nil, err
		}
	}
}

// VerifyInclusionBundle checks a bundle: the line's own hash, its seq and
// node, the audit path to the checkpoint's root, and (with pub) the
// checkpoint's signature. It returns nil or an error saying what fails.
func VerifyInclusionBundle(b *InclusionBundle, pub ed25519.PublicKey) error {
	if b.Type != "inclusion" {
		return fmt.Errorf("not an inclusion proof (type %q)", b.Type)
	}
	line := []byte(b.Line)
	f, err := parseChain(line)
	if err != nil {
		return fmt.Errorf("line: %v", err)
	}
	if !LineHashOK(line, f.PrevHash, f.Hash) {
		return errors.New("line: its hash does not match its content (edited)")
	}
	if f.Seq != b.Seq || string(f.NodeID) != b.NodeID {
		return fmt.Errorf("line is seq %d of node %s, the bundle says seq %d of node %s", f.Seq, f.NodeID, b.Seq, b.NodeID)
	}
	cp, err := b.Checkpoint.Checkpoint()
	if err != nil {
		return err
	}
	if cp.NodeID != b.NodeID || cp.TreeSize != b.TreeSize || cp.TreeSize == 0 || cp.Seq < cp.TreeSize-1 {
		return fmt.Errorf("the checkpoint (node %s, seq %d, tree size %d) does not describe this proof's tree (node %s, size %d)",
			cp.NodeID, cp.Seq, cp.TreeSize, b.NodeID, b.TreeSize)
	}
	start := cp.Seq - cp.TreeSize + 1
	if b.Seq < start || b.LeafIndex != b.Seq-start {
		return fmt.Errorf("leaf index %d is not seq %d's place in a chain starting at seq %d", b.LeafIndex, b.Seq, start)
	}
	var raw [32]byte
	if _, err := hex.Decode(raw[:], f.Hash); err != nil {
		return fmt.Errorf("line hash: %v", err)
	}
	path, err := parsePath(b.Proof)
	if err != nil {
		return err
	}
	root, err := merkle.ParseHash(cp.Root)
	if err != nil {
		return err
	}
	if err := merkle.VerifyInclusion(b.LeafIndex, b.TreeSize, merkle.LeafHash(raw[:]), path, root); err != nil {
		return err
	}
	if pub != nil {
		if err := cp.Verify(pub); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	return nil
}

// VerifyConsistencyBundle checks a consistency bundle: both checkpoints of
// the same chain, the proof between their roots, and (with pub) both
// signatures.
func VerifyConsistencyBundle(b *ConsistencyBundle, pub ed25519.PublicKey) error {
	if b.Type != "consistency" {
		return fmt.Errorf("not a consistency proof (type %q)", b.Type)
	}
	from, err := b.From.Checkpoint()
	if err != nil {
		return err
	}
	to, err := b.To.Checkpoint()
	if err != nil {
		return err
	}
	if from.NodeID != to.NodeID || from.TreeSize == 0 || to.TreeSize == 0 || from.Seq+1 < from.TreeSize || to.Seq+1 < to.TreeSize ||
		from.Seq-from.TreeSize != to.Seq-to.TreeSize {
		return errors.New("the two checkpoints are not of the same chain")
	}
	path, err := parsePath(b.Proof)
	if err != nil {
		return err
	}
	r1, err := merkle.ParseHash(from.Root)
	if err != nil {
		return err
	}
	r2, err := merkle.ParseHash(to.Root)
	if err != nil {
		return err
	}
	if err := merkle.VerifyConsistency(from.TreeSize, to.TreeSize, r1, r2, path); err != nil {
		return err
	}
	if pub != nil {
		if err := from.Verify(pub); err != nil {
			return fmt.Errorf("first checkpoint: %w", err)
		}
		if err := to.Verify(pub); err != nil {
			return fmt.Errorf("second checkpoint: %w", err)
		}
	}
	return nil
}

func parsePath(p []string) ([]merkle.Hash, error) {
	out := make([]merkle.Hash, len(p))
	for i, s := range p {
		h, err := merkle.ParseHash(s)
		if err != nil {
			return nil, fmt.Errorf("proof node %d: %v", i, err)
		}
		out[i] = h
	}
	return out, nil
}

// offlineTree verifies sources strictly and rebuilds the chain's Merkle
// tree in memory, with every checkpoint seen. The sources must start at
// the chain's first line: a tree cannot be rebuilt from its middle.
func offlineTree(ctx context.Context, sources []Source, opts VerifyOptions) (*merkle.MemStore, []Checkpoint, *Report, error) {
	st := &merkle.MemStore{}
	var f merkle.Frontier
	var cps []Checkpoint
	opts.Strict = true
	opts.OnLeaf = func(_ uint64, leaf merkle.Hash) { f.Append(leaf, st.Add) }
	opts.OnCheckpoint = func(cp Checkpoint) { cps = append(cps, cp) }
	rep, err := Verify(ctx, sources, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	if !rep.OK {
		return nil, nil, rep, fmt.Errorf("the log does not verify: %v", rep.Failure)
	}
	if rep.Anchor != "genesis" && rep.Anchor != "relink" {
		return nil, nil, rep, fmt.Errorf("%w: offline proofs need the chain from its first line (this log starts at seq %d); ask the server (GET sys/audit/proof/...)", ErrNoProof, rep.FirstSeq)
	}
	if err := st.Flush(); err != nil {
		return nil, nil, rep, err
	}
	return st, cps, rep, nil
}

// covering returns the first checkpoint in cps covering seq (exactly at
// want when want > 0).
func covering(cps []Checkpoint, seq, want uint64) (Checkpoint, bool) {
	for _, cp := range cps {
		if want > 0 && cp.Seq == want || want == 0 && cp.Seq >= seq {
			return cp, true
		}
	}
	return Checkpoint{}, false
}

// ProveOffline builds, from the log files alone, the inclusion proof of
// the line at seq against the checkpoint that covers seq at cpSeq (0: the
// first checkpoint after seq; use the newest with cpSeq = the last
// checkpoint's seq). The log is verified strictly first (opts: key,
// trusted checkpoints).
func ProveOffline(ctx context.Context, sources []Source, opts VerifyOptions, seq, cpSeq uint64) (*InclusionBundle, error) {
	st, cps, rep, err := offlineTree(ctx, sources, opts)
	if err != nil {
		return nil, err
	}
	cp, ok := covering(cps, seq, cpSeq)
	if !ok || seq < rep.ChainStart || seq > cp.Seq {
		return nil, fmt.Errorf("%w: no checkpoint in the log covers seq %d", ErrNoProof, seq)
	}
	path, err := merkle.InclusionProof(st, seq-rep.ChainStart, cp.TreeSize)
	if err != nil {
		return nil, err
	}
	line, err := findLine(sources, seq)
	if err != nil {
		return nil, err
	}
	return &InclusionBundle{Type: "inclusion", NodeID: rep.NodeID, Seq: seq, Line: string(line), LeafIndex: seq - rep.ChainStart,
		TreeSize: cp.TreeSize, Proof: hexPath(path), Checkpoint: cp.JSON()}, nil
}

// ProveConsistencyOffline builds, from the log files alone, the proof that
// the checkpoint covering seq to extends the one covering seq from (to 0:
// the newest).
func ProveConsistencyOffline(ctx context.Context, sources []Source, opts VerifyOptions, from, to uint64) (*ConsistencyBundle, error) {
	st, cps, _, err := offlineTree(ctx, sources, opts)
	if err != nil {
		return nil, err
	}
	a, ok := covering(cps, from, from)
	if !ok {
		return nil, fmt.Errorf("%w: no checkpoint in the log covers exactly seq %d", ErrNoProof, from)
	}
	b := cps[len(cps)-1]
	if to > 0 {
		if b, ok = covering(cps, to, to); !ok {
			return nil, fmt.Errorf("%w: no checkpoint in the log covers exactly seq %d", ErrNoProof, to)
		}
	}
	path, err := merkle.ConsistencyProof(st, a.TreeSize, b.TreeSize)
	if err != nil {
		return nil, err
	}
	return &ConsistencyBundle{Type: "consistency", From: a.JSON(), To: b.JSON(), Proof: hexPath(path)}, nil
}

// findLine returns the line at seq from sources.
func findLine(sources []Source, seq uint64) ([]byte, error) {
	for _, src := range sources {
		rc, err := src.Open()
		if err != nil {
			return nil, err
		}
		br := bufio.NewReaderSize(rc, 256<<10)
		for {
			line, err := br.ReadBytes('\n')
			if n := len(line); n > 0 && line[n-1] == '\n' {
				if f, perr := parseChain(line[:n-1]); perr == nil && f.Seq == seq {
					rc.Close()
					return line[:n-1], nil
				}
			}
			if err != nil {
				break
			}
		}
		rc.Close()
	}
	return nil, fmt.Errorf("%w: seq %d is not in the log", ErrNoProof, seq)
}
