// Package embedded is the query backend of a single node without
// ClickHouse: a compact columnar index kept beside the audit device's
// segments and built by tailing them.
//
// # Why columnar sidecar files and not bbolt
//
// An audit query is a range scan: a time window, then predicates on a few
// low-cardinality fields (path prefix or glob, actor, mount, operation,
// decision). A B+tree keyed by time with secondary keys per field (bbolt)
// pays a random-key insert per secondary index on every entry, doubles the
// data per index, and still has to visit every row of the window for the
// predicates it has no key for (globs, flags, combinations). The index here
// is instead a sequence of immutable chunk files of ~64k rows each, in log
// order, with per-chunk min/max time and seq kept in the state file for
// pruning, one fixed-width array per numeric column (time, seq, status,
// port, decision bits), and one dictionary per string column (path, actor
// fields, address, operation, mount, error, policies, flags) with 1-, 2- or
// 4-byte ids per row. A filter is evaluated once per distinct dictionary
// value, then rows are tested with table lookups: a chunk of 64k rows is
// scanned in about a millisecond, and chunks outside the time window are
// never opened. Building it costs an append to in-memory arrays and a
// dictionary lookup per field: no write amplification, no per-entry fsync;
// a chunk is written once, atomically (temporary file, fsync, rename), when
// it is full. About 55 bytes per audited request on disk, ~4% of the log.
//
// # Build, restarts, rotation, torn tails
//
// The index tails the device's segments with its own reader (reader.go: the
// shippers' Tailer semantics without a copy per line) — rotated, gzip'd and
// active segments, following rotation, compression and replacement of the
// active file, and holding back lines past the writer's durable head or not
// yet complete (a torn tail is never indexed; when the writer truncates it
// on restart the reader rewinds). It never touches the audit write path: it
// only reads files and the writer's head. The reader checks every line's
// link to the line before (and its hash with VerifyHashes), and the index
// checks every checkpoint record against the line it covers and its Ed25519
// signature: the index verifies the chain incrementally, from genesis (or
// from the first segment retention kept), as it builds. A query result is
// bounded by the last checkpoint verified this way and names it; nothing
// after it is returned.
//
// The durable cursor (the last line indexed: seq and hash), the chunk list,
// the requests still waiting for their response entry and the verification
// state are written to state.json when a chunk is written. After a restart
// the tail since the last chunk (at most ~64k rows) is rebuilt from the log,
// and the tailer checks that the first line read links to the cursor's
// hash; a log that no longer holds the cursor (replaced or restored) makes
// the index start over. Corrupt or missing index files make it start over
// too: the log is the source of truth. Segments deleted by retention take
// their records out of the index (records below the oldest segment are
// dropped, whole chunks deleted).
//
// The index writes nothing while the audit disk is under pressure
// (Config.DiskOK) or has less than a few chunks' worth of space free; rows
// then stay in memory, and indexing pauses when that grows too large.
package embedded

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/reports/query"
)

// Config configures an Index. Path and NodeID are required.
type Config struct {
	// Path is the audit device's active segment file.
	Path string
	// Dir is the index folder (default Path + ".index").
	Dir string
	// NodeID is the node whose chain the log is.
	NodeID string
	// Head is the device writer's durable head (nil: no writer; every
	// complete line is final).
	Head ship.HeadFunc
	// PublicKey returns the checkpoint verification key. Without it
	// checkpoint signatures are not checked (and the result says so).
	PublicKey func() (ed25519.PublicKey, bool)
	// Hash hashes a raw value with the device's HMAC salt, so a raw token
	// accessor can be queried (nil: only stored forms match).
	Hash func(ctx context.Context, s string) (string, error)
	// DiskOK reports whether the index may write files now (the audit
	// subsystem says no when the audit disk is under pressure).
	DiskOK func() bool
	// ChunkRows is the number of rows per chunk file (default 65536).
	ChunkRows int
	// CacheBytes bounds the chunks kept decoded in memory (default 256 MiB).
	CacheBytes int64
	// Poll is how often the log is checked for new lines (default 20ms).
	Poll time.Duration
	// VerifyHashes makes the index recompute every line's SHA-256 as it
	// reads it (default: it checks every line's seq and its prev_hash link
	// to the line before, and every checkpoint's signature, and relies on
	// the server's full verification for the lines' own hashes — see the
	// package documentation; hashing costs about as much CPU again as the
	// rest of indexing).
	VerifyHashes bool
	// LastVerified returns the server's last full verification of this
	// log (auditsvc.Subsystem.Verify, stored in the barrier), which covers the
	// lines' own hashes when VerifyHashes is off. nil: unknown.
	LastVerified func() *ServerVerification
	// RetentionEvery is how often deleted segments are looked for
	// (default 30s).
	RetentionEvery time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
}

const stateVersion = 3 // 2: actor and entity name columns; 3: namespace column

// ServerVerification is the outcome of the server's last full verification
// of the log (sys/audit/verify).
type ServerVerification struct {
	Time    time.Time
	OK      bool
	LastSeq uint64 // the last seq it verified
	Failure string
}

// Index is the embedded query backend (query.Backend). Start builds it
// in the background; queries are answered at any time from what has been
// indexed and verified. Safe for concurrent use.
type Index struct {
	cfg   Config
	log   *slog.Logger
	cache *chunkCache

	mu         sync.RWMutex // guards the published state below
	chunks     []chunkMeta
	tail       *view
	pend       []pendingReq // requests without a response entry (sorted by seq)
	pos        ship.Position
	cp         *query.CheckpointRef
	sigChecked bool
	anchor     anchor
	gaps       []ship.Gap
	lowSeq     uint64
	failure    string
	persistErr string
	resets     int
	nextFile   uint64

	// Owned by the indexing goroutine.
	saved      *state // as last written (the cursor of the rows in chunk files)
	retryFlush time.Time
	borrowed   []uint64
	gapBase    int // gaps known before the current tailer started
	builder    *chunk
	pending    map[string]pendingReq
	parser     query.Parser

	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}

	corrupt atomic.Bool // a query found a corrupt chunk: rebuild
}

var _ query.Backend = (*Index)(nil)

// pendingReq is a request entry still waiting for its response entry.
type pendingReq struct {
	ID   string `json:"id"`
	Seq  uint64 `json:"seq"`
	Line string `json:"line"`
	raw  []byte // the line while borrowed from the reader's buffer
}

// anchor says where verification started.
type anchor struct {
	Kind string `json:"kind"` // "genesis" or "start_after"
	Seq  uint64 `json:"seq"`  // first seq verified
}

type state struct {
	Version           int                  `json:"version"`
	NodeID            string               `json:"node_id"`
	Path              string               `json:"path"`
	Seq               uint64               `json:"seq"`
	Hash              string               `json:"hash"`
	Anchor            anchor               `json:"anchor"`
	Checkpoint        *query.CheckpointRef `json:"checkpoint,omitempty"`
	SignaturesChecked bool                 `json:"signatures_checked"`
	Chunks            []chunkMeta          `json:"chunks"`
	Pending           []pendingReq         `json:"pending,omitempty"`
	Gaps              []ship.Gap           `json:"gaps,omitempty"`
	LowSeq            uint64               `json:"low_seq,omitempty"`
	NextFile          uint64               `json:"next_file"`
	Saved             time.Time            `json:"saved"`
}

const stateFile = "state.json"

// Open opens (or creates) the index for the log at cfg.Path. It reads the
// state file; an index whose state does not match the log (another node or
// path, a log that no longer holds the cursor, an unreadable state) is
// started over. It does not start indexing: call Start.
func Open(cfg Config) (*Index, error) {
	if cfg.Path == "" || !chain.ValidNodeID(cfg.NodeID) {
		return nil, errors.New("audit query index: a log path and a valid node id are required")
	}
	if cfg.Dir == "" {
		cfg.Dir = cfg.Path + ".index"
	}
	if cfg.ChunkRows <= 0 {
		cfg.ChunkRows = 65536
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = 256 << 20
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	if cfg.RetentionEvery <= 0 {
		cfg.RetentionEvery = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit query index: %w", err)
	}
	ix := &Index{cfg: cfg, log: cfg.Logger.With("component", "audit-query-index"), cache: newChunkCache(cfg.CacheBytes)}
	ix.resetLocked()
	st, err := ix.loadState()
	switch {
	case err != nil:
		ix.log.Warn("audit query index: state unreadable, rebuilding from the log", "error", err)
	case st != nil:
		if why := ix.mismatch(st); why != "" {
			ix.log.Info("audit query index: starting over", "reason", why)
		} else {
			ix.adopt(st)
			ix.saved = st
		}
	}
	if err := ix.removeStrays(); err != nil {
		return nil, err
	}
	return ix, nil
}

// Name implements query.Backend.
func (ix *Index) Name() string { return "embedded" }

// Dir is the index folder.
func (ix *Index) Dir() string { return ix.cfg.Dir }

func (ix *Index) loadState() (*state, error) {
	b, err := os.ReadFile(filepath.Join(ix.cfg.Dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// mismatch says why a saved state cannot be continued ("" if it can).
func (ix *Index) mismatch(st *state) string {
	switch {
	case st.Version != stateVersion:
		return fmt.Sprintf("index format %d, want %d", st.Version, stateVersion)
	case st.NodeID != ix.cfg.NodeID:
		return fmt.Sprintf("index of node %q, log of node %q", st.NodeID, ix.cfg.NodeID)
	case filepath.Clean(st.Path) != filepath.Clean(ix.cfg.Path):
		return fmt.Sprintf("index of %s, log at %s", st.Path, ix.cfg.Path)
	}
	for _, c := range st.Chunks {
		if fi, err := os.Stat(filepath.Join(ix.cfg.Dir, c.File)); err != nil || fi.Size() != c.Bytes {
			return "chunk file " + c.File + " missing or truncated"
		}
	}
	if st.Seq > 0 {
		last, err := lastSeq(ix.cfg.Path)
		if err == nil && last < st.Seq {
			return fmt.Sprintf("the log ends at seq %d but the index is at %d (log replaced?)", last, st.Seq)
		}
	}
	return ""
}

// adopt installs a saved state.
func (ix *Index) adopt(st *state) {
	ix.chunks = st.Chunks
	ix.pos = ship.Position{Seq: st.Seq, Hash: st.Hash}
	ix.cp, ix.sigChecked, ix.anchor, ix.gaps, ix.lowSeq = st.Checkpoint, st.SignaturesChecked, st.Anchor, st.Gaps, st.LowSeq
	ix.nextFile = st.NextFile
	ix.pending = map[string]pendingReq{}
	for _, p := range st.Pending {
		ix.pending[p.ID] = p
	}
	ix.pend = st.Pending
}

// resetLocked forgets everything (the caller deletes the files).
func (ix *Index) resetLocked() {
	ix.chunks, ix.pend, ix.cp, ix.gaps, ix.failure = nil, nil, nil, nil, ""
	ix.pos, ix.anchor, ix.lowSeq, ix.sigChecked = ship.Position{}, anchor{}, 0, false
	ix.saved = nil
	ix.builder = newBuilder()
	ix.tail = ix.builder.snapshot(ix.cfg.NodeID)
	ix.pending = map[string]pendingReq{}
	ix.cache.clear()
}

// removeStrays deletes files of the index folder the state does not name
// (chunks written before a crash, temporary files, or everything after a
// reset).
func (ix *Index) removeStrays() error {
	keep := map[string]bool{stateFile: len(ix.chunks) > 0 || ix.pos.Seq > 0}
	for _, c := range ix.chunks {
		keep[c.File] = true
	}
	ents, err := os.ReadDir(ix.cfg.Dir)
	if err != nil {
		return fmt.Errorf("audit query index: %w", err)
	}
	for _, e := range ents {
		if !keep[e.Name()] && (strings.HasPrefix(e.Name(), "chunk-") || strings.HasPrefix(e.Name(), ".tmp-") || e.Name() == stateFile) {
			_ = os.Remove(filepath.Join(ix.cfg.Dir, e.Name()))
		}
	}
	return nil
}

// Start starts indexing in the background (idempotent).
func (ix *Index) Start() {
	ix.runMu.Lock()
	defer ix.runMu.Unlock()
	if ix.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	ix.cancel, ix.done = cancel, make(chan struct{})
	go ix.run(ctx, ix.done)
}

// Stop stops indexing and waits for it (idempotent). What was indexed
// since the last chunk is rebuilt from the log on the next Start.
func (ix *Index) Stop() {
	ix.runMu.Lock()
	cancel, done := ix.cancel, ix.done
	ix.cancel = nil
	ix.runMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Close stops indexing.
func (ix *Index) Close() error {
	ix.Stop()
	return nil
}

func (ix *Index) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	backoff := time.Second
	for ctx.Err() == nil {
		err := ix.follow(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errReset):
			continue
		case errors.Is(err, ship.ErrChainMismatch):
			ix.fail(err)
			return
		case err != nil:
			ix.log.Warn("audit query index: reading the log failed; retrying", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	}
}

var errReset = errors.New("audit query index: started over")

// follow tails the log from the cursor until ctx is done or an error.
func (ix *Index) follow(ctx context.Context) error {
	ix.mu.Lock()
	from := ix.pos
	ix.gapBase = len(ix.gaps)
	ix.mu.Unlock()
	r := newReader(ix.cfg.Path, ix.cfg.NodeID, ix.cfg.Head, from, ix.cfg.VerifyHashes, ix.cfg.Now)
	defer r.close()
	lastRetention := time.Time{}
	first := true
	idle := time.NewTimer(ix.cfg.Poll)
	defer idle.Stop()
	for {
		if ix.corrupt.Load() {
			ix.reset()
			ix.corrupt.Store(false)
			return errReset
		}
		lines, err := r.read(8192)
		if errors.Is(err, ship.ErrChainMismatch) && first && from.Seq > 0 && len(lines) == 0 {
			// The first line after the cursor does not continue the
			// indexed chain: the log was replaced or restored. Start over
			// (and check it afresh).
			ix.log.Warn("audit query index: the log does not continue the indexed chain; rebuilding", "error", err)
			ix.reset()
			return errReset
		}
		if len(lines) > 0 {
			first = false
			if ierr := ix.ingest(lines, r.gaps); ierr != nil {
				return ierr
			}
		}
		if err != nil {
			return err
		}
		if ix.builder.rows() >= 8*ix.cfg.ChunkRows {
			// Index files cannot be written and too much is in memory:
			// pause (the log keeps everything; only the index lags).
			ix.retryFlush = time.Time{}
			if !sleep(ctx, 5*time.Second) {
				return ctx.Err()
			}
		}
		if time.Since(lastRetention) >= ix.cfg.RetentionEvery {
			lastRetention = time.Now()
			if rerr := ix.retention(); rerr != nil {
				ix.log.Warn("audit query index: retention", "error", rerr)
			}
		}
		if len(lines) == 0 && !sleep(ctx, ix.cfg.Poll) {
			return ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ingest indexes lines (in seq order) and publishes the new state.
func (ix *Index) ingest(lines []rline, gaps []ship.Gap) error {
	ix.mu.RLock()
	cp, sig, anc := ix.cp, ix.sigChecked, ix.anchor
	started := ix.pos.Seq > 0
	ix.mu.RUnlock()
	var row raw
	var scratch [nCols][]byte
	var pos ship.Position
	var hash [64]byte
	borrowed := ix.borrowed[:0]
	for i := range lines {
		l := &lines[i]
		if !started && anc.Kind == "" {
			anc = anchor{Kind: "start_after", Seq: l.seq}
			if l.seq == 1 && string(l.prevHash) == chain.ZeroHash {
				anc.Kind = "genesis"
			}
		}
		pos.Seq = l.seq
		copy(hash[:], l.hash)
		raw := l.raw
		if logline.IsRecord(raw) {
			if !bytes.HasPrefix(raw, []byte(`{"type":"vigil.checkpoint"`)) {
				continue
			}
			ref, checked, err := ix.checkpoint(l)
			if err != nil {
				ix.publish(ship.Position{Seq: l.seq - 1, Hash: string(l.prevHash)}, cp, sig, anc, gaps, borrowed)
				return err
			}
			if ref != nil {
				cp, sig = ref, checked
			}
			continue
		}
		if isRequestEntry(raw) {
			if id, ok := quickRequestID(raw); ok {
				// Waiting for its response entry (usually a few lines on).
				// The line is borrowed from the read buffer until the end of
				// the batch.
				ix.pending[string(id)] = pendingReq{ID: string(id), Seq: l.seq, raw: raw}
				borrowed = append(borrowed, l.seq)
				continue
			}
		}
		f, kind, err := ix.parser.ParseFields(raw)
		if err != nil {
			return fmt.Errorf("%w: seq %d: %v", ship.ErrChainMismatch, l.seq, err)
		}
		if kind == query.KindOther {
			continue
		}
		if kind == query.KindRequest {
			ix.pending[string(f.RequestID)] = pendingReq{ID: string(f.RequestID), Seq: l.seq, raw: raw}
			borrowed = append(borrowed, l.seq)
			continue
		}
		if kind == query.KindResponse {
			delete(ix.pending, string(f.RequestID))
		}
		fillRow(&row, f, &scratch)
		ix.builder.add(&row)
		if ix.builder.rows() >= ix.cfg.ChunkRows && time.Now().After(ix.retryFlush) {
			// Cut the chunk here: the state written with it names this
			// line as the cursor.
			ix.ownPending()
			borrowed = borrowed[:0]
			at := &state{Seq: l.seq, Hash: string(l.hash), Anchor: anc, Checkpoint: cp, SignaturesChecked: sig}
			if err := ix.flush(at); err != nil {
				ix.notePersist(err)
				ix.retryFlush = time.Now().Add(5 * time.Second)
			}
		}
	}
	pos.Hash = string(hash[:])
	ix.publish(pos, cp, sig, anc, gaps, borrowed)
	ix.borrowed = borrowed[:0]
	return nil
}

// ownPending copies the lines of pending requests still borrowed from the
// read buffer. Requests rejected while sealed wait like any other: their
// response entry follows (a request entry left without one — a crash
// between the two — stays incomplete).
func (ix *Index) ownPending() {
	for id, p := range ix.pending {
		if p.raw == nil {
			continue
		}
		p.Line, p.raw = string(p.raw), nil
		ix.pending[id] = p
	}
}

// quickRequestID finds a request entry's id without decoding it: the
// formatter writes "id" first in "request", and no string can hold the
// unescaped pattern. (The search keys on '{', rare in a line, rather than
// on '"'.)
func quickRequestID(line []byte) ([]byte, bool) {
	const pat, pre = `{"id":"`, `"request":`
	for off := 0; ; {
		i := bytes.Index(line[off:], []byte(pat))
		if i < 0 {
			return nil, false
		}
		i += off
		if i >= len(pre) && string(line[i-len(pre):i]) == pre {
			rest := line[i+len(pat):]
			j := bytes.IndexByte(rest, '"')
			if j <= 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
				return nil, false
			}
			return rest[:j], true
		}
		off = i + 1
	}
}

// isRequestEntry reports whether a Vault entry line is a request entry
// (the formatter writes "type" right after "time").
func isRequestEntry(line []byte) bool {
	head := line[:min(len(line), 80)]
	i := bytes.Index(head, []byte(`","type":"`))
	return i > 0 && bytes.HasPrefix(line[i+len(`","type":"`):], []byte(`request"`))
}

// fillRow copies parsed fields into a row (the builder copies again only
// what its dictionaries do not hold yet).
func fillRow(r *raw, f *query.Fields, scratch *[nCols][]byte) {
	r.time, r.seq = f.UnixNano, f.Seq
	if !f.HasTime {
		r.time = noTime
	}
	r.bits = 0
	if f.Allowed {
		r.bits |= bitAllowed
	}
	if f.Incomplete {
		r.bits |= bitIncomplete
	}
	if f.Internal {
		r.bits |= bitInternal
	}
	r.status, r.port = uint16(min(max(f.Status, 0), 65535)), uint16(min(max(f.RemotePort, 0), 65535))
	r.reqID = f.RequestID
	r.cols[cDisplay], r.cols[cEntity], r.cols[cAccessor] = f.DisplayName, f.EntityID, f.Accessor
	r.cols[cActor], r.cols[cEntityName] = f.Actor, f.EntityName
	r.cols[cRemote], r.cols[cOperation], r.cols[cPath] = f.RemoteAddr, f.Operation, f.Path
	r.cols[cMount], r.cols[cMountType], r.cols[cError] = f.MountPoint, f.MountType, f.Error
	r.cols[cErrorCode], r.cols[cTokenType] = f.ErrorCode, f.TokenType
	r.cols[cNamespace] = f.Namespace
	scratch[cGranting] = encodeList(scratch[cGranting][:0], f.Granting)
	scratch[cDeny] = encodeList(scratch[cDeny][:0], f.DenyReasons)
	scratch[cPolicies] = encodeList(scratch[cPolicies][:0], f.Policies)
	fl := scratch[cFlags][:0]
	for i := range f.FlagNames {
		fl = encodeList(fl, [][]byte{f.FlagNames[i], f.FlagValues[i]})
	}
	scratch[cFlags] = fl
	r.cols[cGranting], r.cols[cDeny], r.cols[cPolicies], r.cols[cFlags] = scratch[cGranting], scratch[cDeny], scratch[cPolicies], scratch[cFlags]
}

// checkpoint verifies a checkpoint record: it must describe the line
// before it, belong to this node and carry a valid signature. An unsigned
// checkpoint returns a nil reference.
func (ix *Index) checkpoint(rec *rline) (*query.CheckpointRef, bool, error) {
	l, err := logline.Parse(rec.raw)
	if err != nil || l.Checkpoint == nil {
		return nil, false, fmt.Errorf("%w: seq %d: unreadable checkpoint record", ship.ErrChainMismatch, rec.seq)
	}
	b := l.Checkpoint
	at, err := time.Parse(time.RFC3339Nano, b.Time)
	if err != nil || b.NodeID != l.NodeID || b.Seq != rec.seq-1 || b.Hash != string(rec.prevHash) {
		return nil, false, fmt.Errorf("%w: seq %d: checkpoint does not describe the line before it (forged_checkpoint)", ship.ErrChainMismatch, rec.seq)
	}
	if l.Signature == "" && l.KeyID == "" {
		// A writer without the checkpoint key (a server recording while
		// sealed) writes unsigned checkpoints: they cover nothing, and the
		// index keeps the last signed one.
		return nil, false, nil
	}
	ref := &query.CheckpointRef{NodeID: b.NodeID, Seq: b.Seq, Hash: b.Hash, TreeSize: b.TreeSize, Root: b.Root, Time: at.UTC(), Signature: l.Signature, KeyID: l.KeyID}
	if ix.cfg.PublicKey == nil {
		return ref, false, nil
	}
	pub, ok := ix.cfg.PublicKey()
	if !ok {
		return ref, false, nil
	}
	sig, err := base64.StdEncoding.DecodeString(l.Signature)
	if err == nil {
		c := chain.Checkpoint{NodeID: b.NodeID, Seq: b.Seq, Hash: b.Hash, TreeSize: b.TreeSize, Root: b.Root, Time: at, Signature: sig, KeyID: l.KeyID}
		err = c.Verify(pub)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: seq %d: checkpoint signature: %v (forged_checkpoint)", ship.ErrChainMismatch, rec.seq, err)
	}
	return ref, true, nil
}

// publish makes the ingested rows and state visible to queries.
func (ix *Index) publish(pos ship.Position, cp *query.CheckpointRef, sig bool, anc anchor, gaps []ship.Gap, borrowed []uint64) {
	ix.ownPending()
	pend := ix.pendingList()
	pendingChanged := true
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.pos, ix.cp, ix.sigChecked, ix.anchor = pos, cp, sig, anc
	ix.tail = ix.builder.snapshot(ix.cfg.NodeID)
	if pendingChanged {
		ix.pend = pend
	}
	if len(gaps) > len(ix.gaps)-ix.gapBase {
		ix.gaps = append(append([]ship.Gap(nil), ix.gaps[:ix.gapBase]...), gaps...)
	}
}

func (ix *Index) pendingList() []pendingReq {
	out := make([]pendingReq, 0, len(ix.pending))
	for _, p := range ix.pending {
		out = append(out, p)
	}
	sortPending(out)
	return out
}
