package chain

import "time"

// Stats is a snapshot of the writer's counters. A metrics package exports
// them; this package does not depend on any metrics library.
type Stats struct {
	Entries  uint64 // caller entries acknowledged
	Lines    uint64 // all lines written: entries, headers, events, checkpoints
	Bytes    uint64
	Batches  uint64
	MaxBatch int // most entries in one batch

	Fsyncs        uint64
	FsyncTotal    time.Duration // sum of fsync latencies (real clock)
	FsyncMax      time.Duration
	FsyncFailures uint64

	FailedBatches uint64 // batches whose write or fsync failed
	Timeouts      uint64 // Appends that gave up after WriteTimeout
	// Failed is set by a failed batch or a timeout and cleared by the next
	// successful batch. LastError is the error that set it.
	Failed    bool
	LastError string

	QueueDepth int // entries queued or in the batch being written

	Rotations         uint64
	Reopens           uint64
	ActiveFileMissing uint64
	TornTailBytes     uint64 // removed by Open
	Compressed        uint64
	CompressFailures  uint64

	Checkpoints          uint64
	LastCheckpointSeq    uint64
	LastCheckpointTime   time.Time
	CheckpointsDelivered uint64
	CheckpointSinkErrors uint64
	LastSinkError        string
}

// Stats returns a snapshot of the writer's counters.
func (w *Writer) Stats() Stats {
	w.statsMu.Lock()
	s := w.stats
	w.statsMu.Unlock()
	s.QueueDepth = len(w.reqs) + int(w.queued.Load())
	return s
}
