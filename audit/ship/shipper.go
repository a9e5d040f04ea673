package ship

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
)

// Sink delivers records to one remote system. It is the pluggable part of
// a stream; audit/ship/kafka and audit/ship/clickhouse implement it, and
// shiptest.Run is the conformance suite every implementation passes.
type Sink interface {
	// Write delivers recs — consecutive lines of one node's chain, in seq
	// order — and returns nil only once the remote system durably
	// acknowledged every one of them. On error some records may have been
	// delivered: the shipper sends the whole batch again, so Write must
	// accept records it already holds (consumers dedupe on (node_id, seq)),
	// and it must never deliver a later record of the batch when an
	// earlier one failed. Write connects (and reconnects) as needed and
	// returns when ctx is done. It is called from one goroutine at a time.
	Write(ctx context.Context, recs []Record) error
	// Close releases connections; a later Write connects again.
	Close() error
}

// CheckpointReader is implemented by sinks that can read back the newest
// checkpoint line of a node's chain they hold. The audit subsystem
// consults it when a device opens: a node whose local files were rolled
// back finds the stream ahead of its log and refuses to start.
type CheckpointReader interface {
	LatestCheckpoint(ctx context.Context, node string) ([]byte, error)
}

// Targeter is implemented by sinks that can name their destination (e.g.
// "kafka://k1:9092/vigil-audit"). The name is stored with the cursor: a
// stream pointed at a new destination starts again from the oldest
// segment instead of skipping what the new destination never received.
type Targeter interface{ Target() string }

// Describer is implemented by sinks that add facts to the stream status
// (server version, table, format).
type Describer interface{ Describe() map[string]any }

// BatchSizer is implemented by sinks that prefer another batch size than
// the shippers' default 1000 when the configuration does not set one
// (ClickHouse wants few, large inserts).
type BatchSizer interface{ DefaultBatchSize() int }

// Log is the local log a stream tails: a file audit device.
type Log struct {
	Device string
	// Path is the device's active segment.
	Path string
	// Head is the device writer's durable head (nil: no writer).
	Head HeadFunc
}

// Config configures a Shipper. Name, Sink, Log, NodeID and Cursors are
// required; zero durations and sizes take the defaults documented.
type Config struct {
	Name   string // stream name (the audit_stream block's label)
	Type   string // "kafka", "clickhouse"
	NodeID string // this node: every shipped line must belong to it
	Sink   Sink
	// Log resolves the device to tail; it is called at every (re)start of
	// the shipping session, so a device enabled later is picked up.
	Log     func() (Log, error)
	Cursors CursorStore

	BatchSize int           // most records per Sink.Write (default 1000)
	Linger    time.Duration // wait for a fuller batch (default 20ms; negative: none)
	Poll      time.Duration // how often the local log is checked (default 10ms)
	// MinBackoff and MaxBackoff bound the retry delay after a failed write
	// (defaults 100ms and 5s; doubled per failure).
	MinBackoff, MaxBackoff time.Duration
	// WriteTimeout bounds one Sink.Write attempt (default 30s).
	WriteTimeout time.Duration
	// CursorInterval is how often the acknowledged cursor is saved
	// (default 1s). Lines acknowledged after the last save are sent again
	// after a crash.
	CursorInterval time.Duration

	Now    func() time.Time // status times and cursor saves (default time.Now)
	Logger *slog.Logger
}

// Shipper ships one stream. Its methods are safe for concurrent use.
type Shipper struct {
	cfg    Config
	target string
	log    *slog.Logger

	runMu  sync.Mutex // Start/Stop
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	st        Status
	acked     Position // acknowledged by the sink (in memory)
	ackedTime time.Time
	saved     Position // last saved
	loaded    bool     // cursor loaded from the store
	lastSave  time.Time
	curLog    Log
	inflight  []inflightBatch
	lagSince  time.Time
	gapsSeen  int
}

type inflightBatch struct {
	first uint64
	at    time.Time
}

// NewShipper validates cfg and returns a stopped shipper.
func NewShipper(cfg Config) (*Shipper, error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("audit stream: a name is required")
	case cfg.Sink == nil:
		return nil, fmt.Errorf("audit stream %s: no sink", cfg.Name)
	case cfg.Log == nil:
		return nil, fmt.Errorf("audit stream %s: no log", cfg.Name)
	case cfg.Cursors == nil:
		return nil, fmt.Errorf("audit stream %s: no cursor store", cfg.Name)
	case !chain.ValidNodeID(cfg.NodeID):
		return nil, fmt.Errorf("audit stream %s: invalid node id %q", cfg.Name, cfg.NodeID)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.Linger == 0 {
		cfg.Linger = 20 * time.Millisecond
	}
	if cfg.Linger < 0 {
		cfg.Linger = 0
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 10 * time.Millisecond
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.CursorInterval <= 0 {
		cfg.CursorInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Shipper{cfg: cfg, log: cfg.Logger.With("stream", cfg.Name, "type", cfg.Type)}
	if t, ok := cfg.Sink.(Targeter); ok {
		s.target = t.Target()
	}
	s.st = Status{Name: cfg.Name, Type: cfg.Type, NodeID: cfg.NodeID, Target: s.target, State: StateStopped}
	return s, nil
}

// Name is the stream name.
func (s *Shipper) Name() string { return s.cfg.Name }

// Holder is how the stream is named when it holds disk space: "<type>/<name>".
func (s *Shipper) Holder() string { return s.cfg.Type + "/" + s.cfg.Name }

// Start starts shipping in the background. It never blocks on the sink;
// calling it while running does nothing.
func (s *Shipper) Start() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	s.setState(StateStarting, nil)
	go s.run(ctx, s.done)
}

// Stop stops shipping, waits for the loop to end (an in-flight write is
// cancelled), saves the acknowledged cursor and closes the sink's
// connections. It returns the cursor save error, if any. Safe to call when
// stopped.
func (s *Shipper) Stop(ctx context.Context) error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	<-s.done
	s.cancel, s.done = nil, nil
	err := s.saveCursor(ctx, true)
	if cerr := s.cfg.Sink.Close(); cerr != nil {
		s.log.Warn("closing audit stream sink", "error", cerr)
	}
	s.setState(StateStopped, nil)
	return err
}

func (s *Shipper) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	backoff := s.cfg.MinBackoff
	for ctx.Err() == nil {
		progressed, err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = s.cfg.MinBackoff
		}
		state := StateWaiting
		if errors.Is(err, ErrChainMismatch) {
			state = StateStalled
		}
		s.setState(state, err)
		s.log.Error("audit stream interrupted; retrying", "error", err, "retry_in", backoff)
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

// session tails from the acknowledged cursor until an error. progressed
// reports whether any batch was acknowledged.
func (s *Shipper) session(ctx context.Context) (progressed bool, err error) {
	lg, err := s.cfg.Log()
	if err != nil {
		return false, err
	}
	if err := s.loadCursor(ctx, lg); err != nil {
		return false, err
	}
	s.mu.Lock()
	s.curLog = lg
	s.st.Device, s.st.Path = lg.Device, lg.Path
	after := s.acked
	s.inflight = nil
	s.mu.Unlock()

	t := NewTailer(TailerConfig{Path: lg.Path, NodeID: s.cfg.NodeID, After: after, Head: lg.Head, Poll: s.cfg.Poll, Now: s.cfg.Now})
	defer t.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []Record, 2)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		for {
			recs, err := t.Next(sctx, s.cfg.BatchSize, s.cfg.Linger)
			s.noteGaps(t)
			if err != nil {
				readErr <- err
				return
			}
			s.noteRead(t.LastRead(), recs)
			select {
			case batches <- recs:
			case <-sctx.Done():
				readErr <- sctx.Err()
				return
			}
		}
	}()
	s.setState(StateShipping, nil)
	for recs := range batches {
		if err := s.deliver(sctx, recs); err != nil {
			cancel()
			for range batches {
			}
			return progressed, err
		}
		progressed = true
	}
	return progressed, <-readErr
}

// deliver writes recs until the sink acknowledges them or ctx is done.
func (s *Shipper) deliver(ctx context.Context, recs []Record) error {
	backoff := s.cfg.MinBackoff
	for {
		actx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
		start := time.Now()
		err := s.cfg.Sink.Write(actx, recs)
		cancel()
		if err == nil {
			s.noteAcked(recs, time.Since(start))
			if err := s.saveCursor(ctx, false); err != nil {
				s.log.Warn("saving audit stream cursor", "error", err)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.noteWriteErr(err)
		s.log.Warn("audit stream write failed; retrying", "error", err, "first_seq", recs[0].Seq, "records", len(recs), "retry_in", backoff)
		if !sleepCtx(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

// loadCursor loads the saved cursor once per process; a cursor for another
// device, path or destination is ignored (shipping restarts at the oldest
// segment, logged).
func (s *Shipper) loadCursor(ctx context.Context, lg Log) error {
	s.mu.Lock()
	loaded := s.loaded
	s.mu.Unlock()
	if loaded {
		return nil
	}
	cur, err := s.cfg.Cursors.LoadCursor(ctx, s.cfg.Name, s.cfg.NodeID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loaded = true
	if cur == nil {
		return nil
	}
	if cur.Target != s.target || cur.Path != lg.Path {
		s.log.Warn("audit stream cursor belongs to another destination or device; shipping again from the oldest segment",
			"cursor_target", cur.Target, "target", s.target, "cursor_path", cur.Path, "path", lg.Path, "cursor_seq", cur.Seq)
		return nil
	}
	s.acked = Position{Seq: cur.Seq, Hash: cur.Hash}
	s.saved, s.ackedTime, s.lastSave = s.acked, cur.Time, cur.Saved
	s.st.Cursor = CursorStatus{Seq: cur.Seq, Hash: cur.Hash, Time: cur.Time}
	s.st.SavedSeq = cur.Seq
	return nil
}

// saveCursor stores the acknowledged cursor when it moved and either force
// is set or CursorInterval passed since the last save.
func (s *Shipper) saveCursor(ctx context.Context, force bool) error {
	s.mu.Lock()
	now := s.cfg.Now()
	if !s.loaded || s.acked == s.saved || (!force && now.Sub(s.lastSave) < s.cfg.CursorInterval) {
		s.mu.Unlock()
		return nil
	}
	c := Cursor{NodeID: s.cfg.NodeID, Seq: s.acked.Seq, Hash: s.acked.Hash, Time: s.ackedTime,
		Device: s.curLog.Device, Path: s.curLog.Path, Target: s.target, Saved: now}
	s.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := s.cfg.Cursors.SaveCursor(sctx, s.cfg.Name, c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.st.CursorError = err.Error()
		return err
	}
	s.st.CursorError = ""
	s.saved, s.lastSave = Position{Seq: c.Seq, Hash: c.Hash}, now
	s.st.SavedSeq, s.st.SavedAt = c.Seq, now
	return nil
}

func (s *Shipper) noteRead(lastRead uint64, recs []Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.LastReadSeq = max(s.st.LastReadSeq, lastRead)
	at := recs[0].Time
	if at.IsZero() {
		at = s.cfg.Now()
	}
	s.inflight = append(s.inflight, inflightBatch{first: recs[0].Seq, at: at})
}

func (s *Shipper) noteGaps(t *Tailer) {
	gaps := t.Gaps()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range gaps[min(s.gapsSeen, len(gaps)):] {
		s.st.Gaps++
		s.st.LastGap = fmt.Sprintf("seq %d..%d were deleted from the local log before they were shipped", g.From, g.To)
		s.log.Error("audit stream: local segments were deleted before they were shipped", "from_seq", g.From, "to_seq", g.To)
	}
	s.gapsSeen = len(gaps)
}

func (s *Shipper) noteAcked(recs []Record, d time.Duration) {
	last := recs[len(recs)-1]
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.acked = Position{Seq: last.Seq, Hash: last.Hash}
	s.ackedTime = last.Time
	s.st.Cursor = CursorStatus{Seq: last.Seq, Hash: last.Hash, Time: last.Time}
	s.st.Shipped += uint64(len(recs))
	s.st.Batches++
	s.st.LastShipped = now
	s.st.LastWriteSeconds = d.Seconds()
	s.st.State, s.st.Up = StateShipping, true
	if len(s.inflight) > 0 {
		s.inflight = s.inflight[1:]
	}
}

func (s *Shipper) noteWriteErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Errors++
	s.st.LastError, s.st.LastErrorTime = err.Error(), s.cfg.Now()
	s.st.State, s.st.Up = StateRetrying, false
}

func (s *Shipper) setState(state string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.State = state
	if err != nil {
		s.st.Errors++
		s.st.LastError, s.st.LastErrorTime = err.Error(), s.cfg.Now()
		s.st.Up = false
	}
}

// Status returns the stream's current status. Lag is measured against the
// device writer's durable head (or the last line read when no writer is
// open).
func (s *Shipper) Status() Status {
	s.mu.Lock()
	lg := s.curLog
	s.mu.Unlock()
	var head uint64
	if lg.Head != nil {
		if h, ok := lg.Head(); ok {
			head = h
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.HeadSeq = max(head, st.LastReadSeq)
	now := s.cfg.Now()
	if st.HeadSeq > st.Cursor.Seq {
		st.LagEntries = st.HeadSeq - st.Cursor.Seq
		var since time.Time
		if len(s.inflight) > 0 {
			since = s.inflight[0].at
		} else {
			if s.lagSince.IsZero() {
				s.lagSince = now
			}
			since = s.lagSince
		}
		st.LagSeconds = max(0, now.Sub(since).Seconds())
	} else {
		s.lagSince = time.Time{}
	}
	if d, ok := s.cfg.Sink.(Describer); ok {
		st.Sink = d.Describe()
	}
	return st
}

// Guard is the stream's diskwatch.SegmentGuard: a rotated segment of the
// tailed device is busy until the acknowledged cursor passed its last
// line, and every segment is busy until the cursor was loaded (after
// unseal). Paths of other devices are never busy.
func (s *Shipper) Guard(path string) (holder string, busy bool) {
	s.mu.Lock()
	lg, loaded, acked := s.curLog, s.loaded, s.acked.Seq
	s.mu.Unlock()
	if lg.Path == "" {
		if l, err := s.cfg.Log(); err == nil {
			lg = l
		}
	}
	if lg.Path == "" || filepath.Dir(filepath.Clean(path)) != filepath.Dir(filepath.Clean(lg.Path)) {
		return "", false
	}
	infos, err := chain.ListSegments(lg.Path)
	if err != nil {
		return s.Holder(), true // cannot tell: keep it
	}
	for _, si := range infos {
		if si.Path != filepath.Clean(path) {
			continue
		}
		if !loaded || si.Active || si.LastSeq == 0 || acked < si.LastSeq {
			return s.Holder(), true
		}
		return "", false
	}
	return "", false // not one of this device's segments
}

// Held reports the rotated segments (count and bytes on disk) the stream
// has not passed yet: the disk space it holds.
func (s *Shipper) Held() (segments int, bytes int64) {
	s.mu.Lock()
	lg, acked := s.curLog, s.acked.Seq
	s.mu.Unlock()
	if lg.Path == "" {
		return 0, 0
	}
	infos, err := chain.ListSegments(lg.Path)
	if err != nil {
		return 0, 0
	}
	for _, si := range infos {
		if !si.Active && (si.LastSeq == 0 || acked < si.LastSeq) {
			segments++
			bytes += si.Size
		}
	}
	return segments, bytes
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
