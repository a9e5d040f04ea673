package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/core"
)

// Sink is where one device's entries go: the pluggable part of a device.
// Implementations are safe for concurrent use.
type Sink interface {
	// Write records body, a single-line JSON object, and returns once it
	// is recorded per the sink's durability mode (for a file device with
	// fsync "always": written and fsynced). It returns within ctx's
	// deadline; an error means the entry may not have been recorded. It
	// must not keep body after it returns: the broker reuses the buffer.
	Write(ctx context.Context, body []byte) error
	// Close flushes and releases the sink. Writes after Close fail.
	Close() error
}

// ErrSinkClosed is returned by writes to a closed sink.
var ErrSinkClosed = &core.Error{Code: core.CodeAuditFailed, Msg: "audit device closed"}

// FileSink is a hash-chained file (audit/chain Writer).
type FileSink struct {
	W *chain.Writer
	// timeout is W's Config.WriteTimeout when OpenFileSink set it to the
	// device's write_timeout (0 otherwise): W then bounds every write by
	// itself and the broker needs no deadline of its own.
	timeout time.Duration
}

var _ Sink = (*FileSink)(nil)

// FileEnv is what opening a file sink needs beyond the device's options.
type FileEnv struct {
	NodeID         string
	Signer         ed25519.PrivateKey
	Trusted        []chain.Checkpoint
	DeletedThrough *chain.DeletedSegment
	// Relink, when set, starts a new chain instead (chain.Relink).
	Relink         *chain.Link
	CheckpointSink func(chain.Checkpoint) error
	OnSync         func(d time.Duration, lines, bytes int)
	Now            func() time.Time
	Logger         *slog.Logger
	Faults         *chain.Faults
	WatchInterval  time.Duration
}

// OpenFileSink opens the device's log (recovering a torn tail left by a
// crash) and starts its writer.
func OpenFileSink(dc *DeviceConfig, env FileEnv) (*FileSink, error) {
	cfg := chain.Config{
		Path: dc.Path, NodeID: env.NodeID, Fsync: dc.Fsync, FsyncInterval: dc.FsyncInterval,
		MaxSizeMB: dc.MaxSizeMB, MaxAgeDays: dc.MaxAgeDays, Compress: dc.Compress,
		Signer: env.Signer, CheckpointEvery: dc.CheckpointEvery, CheckpointInterval: dc.CheckpointInterval,
		CheckpointSink: env.CheckpointSink, TrustedCheckpoints: env.Trusted, DeletedThrough: env.DeletedThrough,
		WriteTimeout: dc.WriteTimeout, OnSync: env.OnSync, Now: env.Now, Logger: env.Logger, Faults: env.Faults,
		WatchInterval: env.WatchInterval,
	}
	var w *chain.Writer
	var err error
	if env.Relink != nil {
		w, err = chain.Relink(cfg, *env.Relink)
	} else {
		w, err = chain.Open(cfg)
	}
	if err != nil {
		return nil, err
	}
	return &FileSink{W: w, timeout: dc.WriteTimeout}, nil
}

// Write appends body to the chain.
func (f *FileSink) Write(ctx context.Context, body []byte) error {
	_, err := f.W.Append(ctx, body)
	return err
}

// Close closes the chain writer (final checkpoint included).
func (f *FileSink) Close() error { return f.W.Close() }

// writeFormatted writes body, produced by audit/format/vault, to sink. A
// file sink appends it with chain.Writer.AppendTrusted: the formatter's
// output always satisfies Append's rules (TestFormatOutputIsValidChainBody
// and FuzzFormatOutputIsValidChainBody hold it to that), so the JSON
// re-validation is skipped.
//
// The broker passes ctx without a deadline when the sink bounds its own
// writes (selfTimed); otherwise ctx carries the device's write_timeout.
func writeFormatted(ctx context.Context, sink Sink, body []byte) error {
	if f, ok := sink.(*FileSink); ok {
		_, err := f.W.AppendTrusted(ctx, body)
		return err
	}
	return sink.Write(ctx, body)
}

// StreamSink writes one line per entry to an io.Writer (the stdout device).
// A single goroutine owns the writer; Write waits at most the timeout, so a
// blocked pipe makes the device fail instead of hanging the server.
type StreamSink struct {
	out     io.Writer
	timeout time.Duration
	reqs    chan streamReq
	done    chan struct{}
	once    sync.Once
}

type streamReq struct {
	line []byte
	res  chan error
}

var _ Sink = (*StreamSink)(nil)

// NewStreamSink starts a sink writing to out.
func NewStreamSink(out io.Writer, timeout time.Duration) *StreamSink {
	if timeout <= 0 {
		timeout = DefaultWriteTimeout
	}
	s := &StreamSink{out: out, timeout: timeout, reqs: make(chan streamReq, 1024), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *StreamSink) run() {
	for {
		select {
		case r := <-s.reqs:
			_, err := s.out.Write(r.line)
			r.res <- err
		case <-s.done:
			return
		}
	}
}

// Write writes body and a newline.
func (s *StreamSink) Write(ctx context.Context, body []byte) error {
	line := make([]byte, len(body)+1)
	copy(line, body)
	line[len(body)] = '\n'
	r := streamReq{line: line, res: make(chan error, 1)}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case <-s.done:
		return ErrSinkClosed
	default:
	}
	select {
	case s.reqs <- r:
	case <-s.done:
		return ErrSinkClosed
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("stdout: write timed out after %s: %w", s.timeout, chain.ErrTimeout)
	}
	select {
	case err := <-r.res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("stdout: write timed out after %s: %w", s.timeout, chain.ErrTimeout)
	}
}

// Close stops the sink.
func (s *StreamSink) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// selfTimed reports whether sink bounds each write by itself within
// timeout (a file sink whose writer times out no later), so the broker
// can skip a context deadline per entry.
func selfTimed(sink Sink, timeout time.Duration) bool {
	f, ok := sink.(*FileSink)
	return ok && f.timeout > 0 && f.timeout <= timeout
}

// errorf formats device errors for clients, naming the device and the
// well-known causes.
func deviceError(name string, err error) error {
	switch {
	case errors.Is(err, chain.ErrDiskFull):
		return fmt.Errorf("device %q: disk full (ENOSPC): %w; free space in the device's folder: service resumes by itself, no restart needed", name, err)
	case errors.Is(err, chain.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("device %q: did not record the entry in time (device hung or too slow): %w", name, err)
	}
	return fmt.Errorf("device %q: %w", name, err)
}
