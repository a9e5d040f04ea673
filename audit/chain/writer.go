package chain

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/audit/merkle"
)

// FsyncMode says when the writer makes a batch durable.
type FsyncMode int

const (
	// FsyncAlways fsyncs every batch before acknowledging any entry in it
	// (group commit: one write and one fsync serve every entry queued while
	// the previous batch was being written). The default.
	FsyncAlways FsyncMode = iota
	// FsyncInterval acknowledges after the write and fsyncs every
	// Config.FsyncInterval: a crash can lose up to one interval of
	// acknowledged entries.
	FsyncInterval
	// FsyncNone never fsyncs except on rotation and Close. For tests and
	// benchmarks of everything but the disk.
	FsyncNone
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultMaxSizeMB          = 100
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Second
	DefaultWriteTimeout       = 5 * time.Second
	DefaultWatchInterval      = time.Second
	DefaultFsyncInterval      = 10 * time.Millisecond
	DefaultMaxBatchEntries    = 4096
	DefaultMaxBatchBytes      = 4 << 20
	DefaultMaxEntryBytes      = 4 << 20
	DefaultQueueSize          = 8192
)

// Config configures a Writer. Path and NodeID are required; every other
// zero field takes the default documented on it.
type Config struct {
	// Path is the active segment file, e.g. /var/log/vigil/audit.log.
	// The chain owns its files: it creates each segment with O_EXCL,
	// renames a full one to a backup name next to it,
	// audit-2006-01-02T15-04-05.000.log (time per Now, a millisecond later
	// while the name is taken), plus ".gz" once compressed, and fsyncs the
	// directory after each. An existing file is never replaced.
	Path string
	// NodeID identifies this node's chain; see ValidNodeID.
	NodeID string

	Fsync         FsyncMode
	FsyncInterval time.Duration // FsyncInterval mode only; default 10ms

	// MaxSizeMB rotates before a batch would make the active segment
	// larger than this many MiB (default 100). A segment exceeds it only
	// when a single entry is larger, or by one checkpoint line.
	MaxSizeMB int
	// MaxAgeDays rotates before the next write once the active segment's
	// header is this many days old (0: never). Nothing is ever deleted
	// here: retention belongs to the caller, which knows the shippers'
	// cursors.
	MaxAgeDays int
	// Compress gzips rotated segments in the background (name + ".gz"),
	// fsyncing the .gz before removing the original.
	Compress bool

	// Signer signs checkpoints. Without it checkpoints are written
	// unsigned (still useful as hash anchors).
	Signer ed25519.PrivateKey
	// CheckpointEvery writes a checkpoint after every N lines (default
	// 1000; negative disables). CheckpointInterval writes one when at
	// least one line was written since the last checkpoint and this much
	// time (per Now) has passed (default 1s; negative disables).
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// CheckpointSink receives every checkpoint once it is durable, from a
	// dedicated goroutine; when the sink is slower than checkpoints are
	// made, only the newest pending one is delivered. Errors are counted
	// in Stats and logged, never fatal.
	CheckpointSink func(Checkpoint) error
	// TrustedCheckpoints are checkpoints kept where a file-level insider
	// cannot rewrite them (Raft storage, other nodes, streams, witnesses).
	// Open never trusts the files over them: it re-verifies the chain from
	// the segment holding the newest one to the end (line hashes, links,
	// every checkpoint's signature and Merkle root, the cadence rules) and
	// requires each one the current chain covers to match. Any mismatch,
	// or a log that ends before one of them, fails Open with a
	// *RefusalError (matching ErrUntrusted) naming the kind of tampering.
	// Checkpoints of other nodes and of a chain replaced by Relink are
	// ignored.
	TrustedCheckpoints []Checkpoint
	// DeletedThrough is the newest segment retention deleted, as recorded
	// outside the log (RecordDeletion's caller keeps it). Open refuses a
	// log whose oldest segments are missing beyond it, and one with a gap
	// between segments: only retention may remove segments, oldest first.
	DeletedThrough *DeletedSegment

	// MerkleDir holds the Merkle tree's stored nodes, for proofs (default
	// Path + ".merkle"). The store is derived from the log: it is checked
	// against the segment headers at Open and rebuilt when it does not
	// match. NoMerkleStore keeps the tree in memory only (checkpoints still
	// carry roots; proofs are unavailable).
	MerkleDir     string
	NoMerkleStore bool

	// WriteTimeout bounds how long Append waits (default 5s). On timeout
	// Append returns ErrTimeout and Stats.Failed is set until a later
	// batch succeeds.
	WriteTimeout time.Duration
	// WatchInterval is how often the active path is checked for deletion
	// or replacement (default 1s; negative disables).
	WatchInterval time.Duration

	// Group commit limits. A batch holds at least one entry.
	MaxBatchEntries int // default 4096
	MaxBatchBytes   int // default 4 MiB
	MaxEntryBytes   int // largest accepted body, default 4 MiB
	QueueSize       int // Append queue capacity, default 8192

	// OnSync, if set, is called by the writer goroutine after every
	// successful fsync with its duration, the number of lines and bytes
	// it made durable. It must not block.
	OnSync func(d time.Duration, lines, bytes int)

	// Now is the clock for timestamps in the log and for age and interval
	// decisions (default time.Now). Durations reported in Stats and OnSync
	// are measured with the real monotonic clock.
	Now func() time.Time
	// Logger receives operational messages (default: discard).
	Logger *slog.Logger
	// Faults injects failures into the write path (tests only).
	Faults *Faults

	// maxBytes overrides MaxSizeMB in bytes (tests only).
	maxBytes int64
	// checkpointTicks replaces the CheckpointInterval ticker (tests only):
	// each receive runs the interval check once.
	checkpointTicks chan time.Time
	// relink starts a new chain (see Relink).
	relink *relinkStart
	// skipTree leaves the Merkle tree out of the write path (benchmarks
	// measuring its cost only: checkpoints then carry a wrong root).
	skipTree bool
}

// Faults holds fault-injection hooks, called by the writer goroutine.
type Faults struct {
	// BeforeWrite sees each batch about to be written. A non-nil error
	// makes the writer write only batch[:n] (n is clamped to the batch)
	// and then fail with err: n == 0 models a failed write, 0 < n <
	// len(batch) a torn one.
	BeforeWrite func(batch []byte) (n int, err error)
	// BeforeSync runs before each fsync of the active file; a non-nil
	// error is returned instead of syncing.
	BeforeSync func() error
	// AfterSync runs after each successful fsync of the active file,
	// before any entry it made durable is acknowledged (power-loss tests
	// use it to know which bytes a power cut would keep).
	AfterSync func()
	// BeforeTruncate runs before the writer truncates a failed batch
	// away; a non-nil error makes the truncation fail, which leaves the
	// torn bytes in place as a crash would.
	BeforeTruncate func() error
}

// Appended is the position of an acknowledged entry.
type Appended struct {
	Seq  uint64
	Hash string
}

// Writer appends entries to a node's hash-chained audit log. All methods are
// safe for concurrent use. One goroutine owns the file; Append only queues
// and waits, so concurrent appends are group-committed.
type Writer struct {
	cfg      Config
	log      *slog.Logger
	maxBytes int64
	maxAge   time.Duration

	reqs    chan *request
	ctrl    chan ctrlOp
	closing chan struct{} // closed when Close starts
	done    chan struct{} // closed when the writer goroutine exits

	closeOnce sync.Once
	closeErr  error
	bg        sync.WaitGroup // sink and compressor goroutines
	stopBg    chan struct{}

	st loopState // owned by the writer goroutine

	headMu   sync.Mutex
	headSeq  uint64
	headHash string

	statsMu sync.Mutex
	stats   Stats
	queued  atomic.Int64 // taken from reqs but not yet completed

	sinkMu   sync.Mutex
	sinkNext *Checkpoint
	sinkWake chan struct{}

	// store keeps the Merkle tree's nodes for proofs (nil without one);
	// proofs reads it and the checkpoint index concurrently with the
	// writer goroutine.
	store  merkle.Store
	proofs proofState

	compressWake chan struct{}
}

type request struct {
	body  []byte
	state atomic.Int32
	done  chan result // buffered (1): the writer never blocks on it
	timer *time.Timer // WriteTimeout of the current Append
	// link ties the two entries of an AppendLinked pair; first is set on
	// the first of them. Only the writer goroutine reads or writes
	// link.failed.
	link  *pairLink
	first bool
}

// pairLink is shared by the two entries of a pair: failed records that the
// first was not written (its batch failed, or its caller abandoned it
// before it was taken), so the second must not be written either.
type pairLink struct{ failed bool }

// noteFailed records, for the first entry of a pair, that it was not
// written. Writer goroutine only.
func (r *request) noteFailed() {
	if r.link != nil && r.first {
		r.link.failed = true
	}
}

// orphaned reports, for the second entry of a pair, that the first was not
// written. Writer goroutine only.
func (r *request) orphaned() bool { return r.link != nil && !r.first && r.link.failed }

const (
	reqPending int32 = iota
	reqTaken
	reqCancelled
)

type result struct {
	a   Appended
	err error
}

type ctrlKind int

const (
	opRotate ctrlKind = iota + 1
	opReopen
	opCheckpoint
	opClose
	opEvent
)

type ctrlOp struct {
	kind ctrlKind
	ev   *Event // opEvent
	done chan ctrlResult
}

type ctrlResult struct {
	cp  Checkpoint
	err error
}

// Open opens (or creates) the log at cfg.Path, recovers its head, removes a
// torn tail left by a crash (recording a torn_tail_truncated event), writes
// a "started" event and a checkpoint, makes all of that durable and starts
// the writer goroutine. If the active file is missing but rotated segments
// exist, the chain continues after the newest one in a new segment with an
// active_file_missing event. See the package documentation for the rules.
//
// Errors: ErrNodeMismatch (the log belongs to another node), ErrCorrupt
// (damage beyond the torn-tail window, or an unreadable rotated segment),
// ErrBehindCheckpoint (cfg.LastCheckpoint proves entries were lost), or the
// underlying I/O error. Open never deletes or overwrites log bytes: removed
// torn bytes are saved next to the log first.
func Open(cfg Config) (*Writer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	w := &Writer{
		cfg:          cfg,
		log:          cfg.Logger,
		maxBytes:     int64(cfg.MaxSizeMB) << 20,
		maxAge:       time.Duration(cfg.MaxAgeDays) * 24 * time.Hour,
		reqs:         make(chan *request, cfg.QueueSize),
		ctrl:         make(chan ctrlOp),
		closing:      make(chan struct{}),
		done:         make(chan struct{}),
		stopBg:       make(chan struct{}),
		sinkWake:     make(chan struct{}, 1),
		compressWake: make(chan struct{}, 1),
	}
	if cfg.maxBytes > 0 {
		w.maxBytes = cfg.maxBytes
	}
	w.st.lh = newLineHasher()
	fail := func(err error) (*Writer, error) {
		w.st.closeFile()
		w.closeStore()
		return nil, err
	}
	if !cfg.NoMerkleStore {
		st, err := merkle.OpenFileStore(cfg.MerkleDir)
		if err != nil {
			return fail(fmt.Errorf("audit chain: open: %w", err))
		}
		w.store = st
		w.proofs.wake = make(chan struct{}, 1)
	}
	if err := w.recover(); err != nil {
		return fail(err)
	}
	if err := w.flush(true); err != nil {
		return fail(fmt.Errorf("audit chain: open: writing start records: %w", err))
	}
	w.bg.Add(1)
	go w.sinkLoop()
	if w.store != nil {
		w.bg.Add(1)
		go w.storeLoop()
		w.storeNodes(nil) // write what Open queued
	}
	if cfg.Compress {
		w.bg.Add(1)
		go w.compressLoop()
		w.wakeCompressor()
	}
	go w.run()
	return w, nil
}

func (c *Config) setDefaults() error {
	if c.Path == "" {
		return errors.New("audit chain: Config.Path is required")
	}
	if !ValidNodeID(c.NodeID) {
		return fmt.Errorf("audit chain: invalid node id %q", c.NodeID)
	}
	if c.Signer != nil && len(c.Signer) != ed25519.PrivateKeySize {
		return errors.New("audit chain: Config.Signer is not an Ed25519 private key")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxSizeMB, DefaultMaxSizeMB)
	def(&c.CheckpointEvery, DefaultCheckpointEvery)
	def(&c.MaxBatchEntries, DefaultMaxBatchEntries)
	def(&c.MaxBatchBytes, DefaultMaxBatchBytes)
	def(&c.MaxEntryBytes, DefaultMaxEntryBytes)
	def(&c.QueueSize, DefaultQueueSize)
	defDur(&c.CheckpointInterval, DefaultCheckpointInterval)
	defDur(&c.WriteTimeout, DefaultWriteTimeout)
	defDur(&c.WatchInterval, DefaultWatchInterval)
	defDur(&c.FsyncInterval, DefaultFsyncInterval)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Path = filepath.Clean(c.Path)
	if c.MerkleDir == "" {
		c.MerkleDir = c.Path + ".merkle"
	}
	return nil
}

// keyFields returns the key members of segment headers.
func (c *Config) keyFields() (id, pub string) {
	if c.Signer == nil {
		return "", ""
	}
	k := c.Signer.Public().(ed25519.PublicKey)
	return KeyID(k), base64.StdEncoding.EncodeToString(k)
}

// cadence returns the cadence members of segment headers.
func (c *Config) cadence() (every int, intervalMS int64) {
	every, intervalMS = c.CheckpointEvery, c.CheckpointInterval.Milliseconds()
	if every < 0 {
		every = -1
	}
	if c.CheckpointInterval < 0 {
		intervalMS = -1
	}
	return every, intervalMS
}

// Append appends one entry and returns its seq and hash once it is durable
// (FsyncAlways) or written (other modes).
//
// body must be a JSON object with no surrounding whitespace, no raw CR/LF
// byte, no top-level seq, node_id, prev_hash or hash member and no
// top-level "type" starting with "vigil."; it is copied, so the caller may
// reuse it as soon as Append returns. Appends from concurrent callers are
// ordered as the writer goroutine receives them. Errors: ErrInvalidBody; ErrClosed; ErrTimeout or ctx.Err() (if the
// writer had already taken the entry, it may still be written); or the
// batch's write/fsync error (wrapping ErrDiskFull and syscall.ENOSPC when
// the disk is full), in which case the entry was not written and consumed
// no seq.
func (w *Writer) Append(ctx context.Context, body []byte) (Appended, error) {
	if err := validateBody(body, w.cfg.MaxEntryBytes); err != nil {
		return Appended{}, err
	}
	return w.append(ctx, body)
}

// AppendTrusted is Append for a body whose producer guarantees every rule
// Append checks (audit/format/vault's output does: a compact JSON object
// whose top-level members are fixed and never reserved). It skips the JSON
// validation and the reserved-member scan, which cost more than the rest of
// Append together; it still rejects, with ErrInvalidBody, a body that is
// not framed as one object on one line (braces at both ends, no raw CR or
// LF) or is larger than Config.MaxEntryBytes, so a bug in the producer
// cannot break the line format. Passing anything else is a bug: the log
// would still chain and verify, but Vault-format parsers could reject the
// line. Everything else, errors included, is as for Append.
func (w *Writer) AppendTrusted(ctx context.Context, body []byte) (Appended, error) {
	if err := checkFraming(body, w.cfg.MaxEntryBytes); err != nil {
		return Appended{}, err
	}
	return w.append(ctx, body)
}

// maxPooledBody caps the body buffer a recycled request keeps.
const maxPooledBody = 64 << 10

// reqPool recycles requests (with their done channel, timer and body
// buffer). A request goes back only after its caller received its result,
// i.e. once the writer goroutine holds no reference to it; an abandoned
// request (timeout, cancelled context) is left to the garbage collector.
var reqPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &request{done: make(chan result, 1), timer: t}
}}

func (w *Writer) append(ctx context.Context, body []byte) (Appended, error) {
	r, err := w.enqueue(ctx, body, nil, false)
	if err != nil {
		return Appended{}, err
	}
	return w.wait(ctx, r)
}

// Pending is an entry handed to the writer by AppendLinkedFirst or
// AppendLinked whose outcome is still to be collected with Wait.
type Pending struct {
	w    *Writer
	r    *request
	link *pairLink // set by AppendLinkedFirst
}

// Wait returns once the entry is durable per the fsync mode, or failed;
// results and errors are those of Append. Call it exactly once.
func (p Pending) Wait(ctx context.Context) (Appended, error) { return p.w.wait(ctx, p.r) }

// AppendLinkedFirst is AppendTrusted without the wait: it hands body to the
// writer (copying it) and returns at once. The entry is the first of a
// pair: an entry appended with AppendLinked after it is written only if
// this one is. Entries are written in the order they were handed over.
func (w *Writer) AppendLinkedFirst(ctx context.Context, body []byte) (Pending, error) {
	if err := checkFraming(body, w.cfg.MaxEntryBytes); err != nil {
		return Pending{}, err
	}
	link := &pairLink{}
	r, err := w.enqueue(ctx, body, link, true)
	return Pending{w, r, link}, err
}

// AppendLinked hands body (as AppendTrusted would) to the writer after
// first, a Pending from AppendLinkedFirst (whose Wait may or may not have
// been called). It is written after first and only if first was written: if first's
// batch failed or its caller abandoned it, this entry fails with
// ErrFirstNotWritten and consumes no seq. So when this entry is durable,
// first is too; waiting for both costs a single durable wait when they
// share a batch.
func (w *Writer) AppendLinked(ctx context.Context, body []byte, first Pending) (Pending, error) {
	if err := checkFraming(body, w.cfg.MaxEntryBytes); err != nil {
		return Pending{}, err
	}
	if first.link == nil || first.w != w {
		return Pending{}, errors.New("audit chain: AppendLinked needs a Pending from AppendLinkedFirst on the same writer")
	}
	r, err := w.enqueue(ctx, body, first.link, false)
	return Pending{w, r, nil}, err
}

// enqueue hands a copy of body to the writer goroutine.
func (w *Writer) enqueue(ctx context.Context, body []byte, link *pairLink, first bool) (*request, error) {
	select {
	case <-w.closing:
		return nil, ErrClosed
	default:
	}
	r := reqPool.Get().(*request)
	r.body = append(r.body[:0], body...)
	r.link, r.first = link, first
	r.state.Store(reqPending)
	// Since Go 1.23 a stopped or reset timer never delivers a stale value.
	r.timer.Reset(w.cfg.WriteTimeout)
	select {
	case w.reqs <- r:
		return r, nil
	case <-w.closing:
		r.release()
		return nil, ErrClosed
	case <-ctx.Done():
		r.release()
		return nil, fmt.Errorf("audit chain: append: %w", ctx.Err())
	case <-r.timer.C:
		r.release()
		w.noteTimeout()
		return nil, ErrTimeout
	}
}

// wait collects the result of r, handed over by enqueue.
func (w *Writer) wait(ctx context.Context, r *request) (Appended, error) {
	select {
	case res := <-r.done:
		r.release()
		return res.a, res.err
	case <-ctx.Done():
		return w.abandon(r, fmt.Errorf("audit chain: append: %w", ctx.Err()))
	case <-r.timer.C:
		w.noteTimeout()
		return w.abandon(r, ErrTimeout)
	case <-w.done:
		select {
		case res := <-r.done:
			r.release()
			return res.a, res.err
		default:
			return Appended{}, ErrClosed
		}
	}
}

// release returns r to reqPool. Only for a request the writer goroutine
// never took or already answered (its result was received).
func (r *request) release() {
	r.timer.Stop()
	r.link, r.first = nil, false
	if cap(r.body) > maxPooledBody {
		r.body = nil
	}
	reqPool.Put(r)
}

// abandon gives up waiting for r. If the writer has not taken r yet it never
// will; otherwise the outcome is unknown unless r already completed.
func (w *Writer) abandon(r *request, err error) (Appended, error) {
	r.timer.Stop()
	if r.state.CompareAndSwap(reqPending, reqCancelled) {
		return Appended{}, err // the writer may still hold r: not recycled
	}
	select {
	case res := <-r.done:
		r.release()
		return res.a, res.err
	default:
		return Appended{}, fmt.Errorf("%w (entry already in a batch; it may still be written)", err)
	}
}

func (w *Writer) noteTimeout() {
	w.statsMu.Lock()
	w.stats.Timeouts++
	w.stats.Failed = true
	w.stats.LastError = ErrTimeout.Error()
	w.statsMu.Unlock()
}

// Head returns the seq and hash of the last durable line (0 and ZeroHash
// for an empty chain).
func (w *Writer) Head() (seq uint64, hash string) {
	w.headMu.Lock()
	defer w.headMu.Unlock()
	return w.headSeq, w.headHash
}

// Rotate closes the active segment and starts a new one (header reason
// "rotate"). It returns once the new header is durable.
func (w *Writer) Rotate() error { _, err := w.control(opRotate); return err }

// Reopen re-opens the active path (for SIGHUP). If the path still names the
// active file, the descriptors are reopened and a "reopened" event is
// written; if the file was deleted, moved or replaced, its contents are
// salvaged into a rotated segment and a new segment (reason "reopen") with
// an active_file_missing event is started.
func (w *Writer) Reopen() error { _, err := w.control(opReopen); return err }

// Checkpoint writes a checkpoint now (unless the last line already is one)
// and returns it once durable.
func (w *Writer) Checkpoint() (Checkpoint, error) { return w.control(opCheckpoint) }

func (w *Writer) control(k ctrlKind) (Checkpoint, error) {
	op := ctrlOp{kind: k, done: make(chan ctrlResult, 1)}
	select {
	case w.ctrl <- op:
	case <-w.closing:
		return Checkpoint{}, ErrClosed
	}
	res := <-op.done
	return res.cp, res.err
}

// Close writes every queued entry, a "closed" event and a final checkpoint,
// fsyncs, closes the file and stops the background goroutines (waiting for
// a running compression and the checkpoint sink to finish). Appends after
// Close fail with ErrClosed. Close is idempotent.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		close(w.closing) // new appends and control calls fail from here on
		op := ctrlOp{kind: opClose, done: make(chan ctrlResult, 1)}
		w.ctrl <- op
		w.closeErr = (<-op.done).err
		<-w.done
		close(w.stopBg)
		w.bg.Wait()
		w.closeStore()
	})
	return w.closeErr
}

// RecordDeletion writes a segments_deleted event naming segs, followed by
// a checkpoint, and returns once both are durable. Retention calls it
// before deleting rotated segments, so a verifier can tell segments
// deleted by retention from segments deleted by someone else; if it fails,
// nothing must be deleted.
func (w *Writer) RecordDeletion(segs []DeletedSegment, detail string) error {
	if len(segs) == 0 {
		return nil
	}
	ev := Event{Kind: EventSegmentsDeleted, Detail: detail, Time: w.cfg.Now().UTC(), Deleted: segs}
	op := ctrlOp{kind: opEvent, ev: &ev, done: make(chan ctrlResult, 1)}
	select {
	case w.ctrl <- op:
	case <-w.closing:
		return ErrClosed
	}
	return (<-op.done).err
}

// sinkLoop delivers checkpoints to Config.CheckpointSink.
func (w *Writer) sinkLoop() {
	defer w.bg.Done()
	for {
		select {
		case <-w.sinkWake:
			w.deliverCheckpoint()
		case <-w.stopBg:
			w.deliverCheckpoint()
			return
		}
	}
}

func (w *Writer) deliverCheckpoint() {
	w.sinkMu.Lock()
	cp := w.sinkNext
	w.sinkNext = nil
	w.sinkMu.Unlock()
	if cp == nil || w.cfg.CheckpointSink == nil {
		return
	}
	if err := w.cfg.CheckpointSink(*cp); err != nil {
		w.log.Error("audit chain: checkpoint sink failed", "seq", cp.Seq, "err", err)
		w.statsMu.Lock()
		w.stats.CheckpointSinkErrors++
		w.stats.LastSinkError = err.Error()
		w.statsMu.Unlock()
		return
	}
	w.statsMu.Lock()
	w.stats.CheckpointsDelivered++
	w.statsMu.Unlock()
}

func (w *Writer) offerCheckpoint(cp Checkpoint) {
	w.sinkMu.Lock()
	w.sinkNext = &cp
	w.sinkMu.Unlock()
	select {
	case w.sinkWake <- struct{}{}:
	default:
	}
}

// openActive opens path for appending and reading.
func openActive(path string, flag int) (*os.File, error) {
	return os.OpenFile(path, flag|os.O_RDWR|os.O_APPEND, 0o600)
}
