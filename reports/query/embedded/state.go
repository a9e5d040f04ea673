package embedded

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/reports/query"
)

// flush writes the builder as a chunk file, then the state (at's cursor,
// anchor and checkpoint: those of the line the builder ends with), and
// starts a new builder. On error nothing changes (the rows stay in memory).
func (ix *Index) flush(at *state) error {
	if ix.cfg.DiskOK != nil && !ix.cfg.DiskOK() {
		return errors.New("the audit disk is under pressure: index files are not written")
	}
	if u, err := diskwatch.Statfs(ix.cfg.Dir); err == nil && u.Avail < uint64(ix.builder.rows())*200+256<<20 {
		return fmt.Errorf("only %d MiB free in %s: index files are not written", u.Avail>>20, ix.cfg.Dir)
	}
	ix.mu.RLock()
	name := fmt.Sprintf("chunk-%012d.vqc", ix.nextFile+1)
	ix.mu.RUnlock()
	b := ix.builder
	size, err := writeChunk(ix.cfg.Dir, name, b)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	meta := b.meta
	meta.File, meta.Bytes = name, size
	ix.mu.RLock()
	st := &state{Version: stateVersion, NodeID: ix.cfg.NodeID, Path: ix.cfg.Path, Seq: at.Seq, Hash: at.Hash, Anchor: at.Anchor,
		Checkpoint: at.Checkpoint, SignaturesChecked: at.SignaturesChecked, Gaps: ix.gaps, LowSeq: ix.lowSeq,
		Chunks: append(append([]chunkMeta(nil), ix.chunks...), meta), NextFile: ix.nextFile + 1, Saved: ix.cfg.Now().UTC()}
	ix.mu.RUnlock()
	st.Pending = ix.pendingList()
	if err := ix.saveState(st); err != nil {
		_ = os.Remove(filepath.Join(ix.cfg.Dir, name))
		return err
	}
	ix.saved = st
	done := &chunk{time: b.time, seq: b.seq, bits: b.bits, status: b.status, port: b.port, reqs: b.reqs, reqEnd: b.reqEnd,
		ids: b.ids, vals: b.vals, meta: meta}
	ix.cache.put(name, done)
	ix.builder = newBuilder()
	ix.mu.Lock()
	ix.chunks, ix.nextFile = st.Chunks, st.NextFile
	ix.tail = ix.builder.snapshot(ix.cfg.NodeID)
	ix.persistErr = ""
	ix.mu.Unlock()
	return nil
}

func (ix *Index) saveState(st *state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(ix.cfg.Dir, stateFile), b)
}

func (ix *Index) notePersist(err error) {
	ix.mu.Lock()
	changed := ix.persistErr != err.Error()
	ix.persistErr = err.Error()
	ix.mu.Unlock()
	if changed {
		ix.log.Warn("audit query index: cannot write index files; keeping rows in memory", "error", err)
	}
}

func (ix *Index) fail(err error) {
	ix.mu.Lock()
	ix.failure = err.Error()
	ix.mu.Unlock()
	ix.log.Error("audit query index stopped: the log does not verify", "error", err)
}

// reset forgets the index and deletes its files (indexing goroutine only).
func (ix *Index) reset() {
	ix.mu.Lock()
	ix.resetLocked()
	ix.nextFile = 0
	ix.resets++
	ix.mu.Unlock()
	_ = ix.removeStrays()
}

// retention drops what retention deleted from the log: rows below the
// oldest segment's first seq (indexing goroutine only).
func (ix *Index) retention() error {
	infos, err := chain.ListSegments(ix.cfg.Path)
	if err != nil || len(infos) == 0 {
		return err
	}
	first := infos[0].FirstSeq
	ix.mu.RLock()
	low := ix.lowSeq
	ix.mu.RUnlock()
	if first <= low {
		return nil
	}
	for id, p := range ix.pending {
		if p.Seq < first {
			delete(ix.pending, id)
		}
	}
	pend := ix.pendingList()
	ix.mu.Lock()
	var keep, drop []chunkMeta
	for _, c := range ix.chunks {
		if c.MaxSeq < first {
			drop = append(drop, c)
		} else {
			keep = append(keep, c)
		}
	}
	ix.lowSeq, ix.chunks, ix.pend = first, keep, pend
	ix.mu.Unlock()
	if ix.saved != nil {
		// The saved cursor stays where the chunk files end; only what
		// retention removed changes.
		st := *ix.saved
		st.Chunks, st.LowSeq, st.Saved = keep, first, ix.cfg.Now().UTC()
		st.Pending = nil
		for _, p := range ix.saved.Pending {
			if p.Seq >= first {
				st.Pending = append(st.Pending, p)
			}
		}
		if err := ix.saveState(&st); err != nil {
			return err
		}
		ix.saved = &st
	}
	for _, c := range drop {
		ix.cache.remove(c.File)
		_ = os.Remove(filepath.Join(ix.cfg.Dir, c.File))
	}
	return nil
}

// lastSeq returns the seq of the last complete line of the log.
func lastSeq(path string) (uint64, error) {
	infos, err := chain.ListSegments(path)
	if err != nil {
		return 0, err
	}
	if len(infos) == 0 {
		return 0, nil
	}
	si := infos[len(infos)-1]
	var data []byte
	if si.Compressed {
		rc, err := chain.FileSource(si.Path).Open()
		if err != nil {
			return 0, err
		}
		defer rc.Close()
		br := bufio.NewReader(rc)
		var last []byte
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				break
			}
			last = line
		}
		data = last
	} else {
		f, err := os.Open(si.Path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return 0, err
		}
		off := max(fi.Size()-256<<10, 0)
		data = make([]byte, fi.Size()-off)
		if _, err := f.ReadAt(data, off); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
	}
	end := strings.LastIndexByte(string(data), '\n')
	for end >= 0 {
		start := strings.LastIndexByte(string(data[:end]), '\n') + 1
		if m, err := logline.ScanMembers(data[start:end]); err == nil {
			return m.Seq, nil
		}
		end = start - 1
	}
	return si.FirstSeq, nil
}

// Status describes the index.
type Status struct {
	Dir          string               `json:"dir"`
	IndexedSeq   uint64               `json:"indexed_seq"`
	LogHead      uint64               `json:"log_head,omitempty"`
	Checkpoint   *query.CheckpointRef `json:"checkpoint,omitempty"`
	Chunks       int                  `json:"chunks"`
	Rows         int64                `json:"rows"`
	Bytes        int64                `json:"bytes"`
	Pending      int                  `json:"pending_requests"`
	LowSeq       uint64               `json:"low_seq,omitempty"`
	Anchor       string               `json:"anchor,omitempty"`
	Failure      string               `json:"failure,omitempty"`
	PersistError string               `json:"persist_error,omitempty"`
	Resets       int                  `json:"resets,omitempty"`
}

// Status returns the index's state.
func (ix *Index) Status() Status {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	st := Status{Dir: ix.cfg.Dir, IndexedSeq: ix.pos.Seq, Checkpoint: ix.cp, Chunks: len(ix.chunks), Pending: len(ix.pend),
		LowSeq: ix.lowSeq, Anchor: ix.anchor.Kind, Failure: ix.failure, PersistError: ix.persistErr, Resets: ix.resets}
	for _, c := range ix.chunks {
		st.Rows += int64(c.Rows)
		st.Bytes += c.Bytes
	}
	st.Rows += int64(ix.tail.n)
	if ix.cfg.Head != nil {
		st.LogHead, _ = ix.cfg.Head()
	}
	return st
}

// WaitFor waits until every line up to seq is indexed. It fails when the
// index stops on a verification failure or ctx is done.
func (ix *Index) WaitFor(ctx context.Context, seq uint64) error {
	t := time.NewTicker(ix.cfg.Poll)
	defer t.Stop()
	for {
		ix.mu.RLock()
		pos, failure := ix.pos.Seq, ix.failure
		ix.mu.RUnlock()
		if failure != "" {
			return errors.New("audit query index stopped: " + failure)
		}
		if pos >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("audit query index at seq %d, waiting for %d: %w", pos, seq, ctx.Err())
		case <-t.C:
		}
	}
}

// WaitForCheckpoint waits until the index answers against a checkpoint at
// or after seq (results are bounded by the last checkpoint indexed). It
// fails when the index stops on a verification failure or ctx is done.
func (ix *Index) WaitForCheckpoint(ctx context.Context, seq uint64) error {
	t := time.NewTicker(ix.cfg.Poll)
	defer t.Stop()
	for {
		ix.mu.RLock()
		cp, failure := ix.cp, ix.failure
		ix.mu.RUnlock()
		if failure != "" {
			return errors.New("audit query index stopped: " + failure)
		}
		if cp != nil && cp.Seq >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			at := uint64(0)
			if cp != nil {
				at = cp.Seq
			}
			return fmt.Errorf("audit query index at checkpoint seq %d, waiting for %d: %w", at, seq, ctx.Err())
		case <-t.C:
		}
	}
}

// PendingAt returns the ids of the requests at or before seq that have no
// response entry in the log as indexed so far (in flight, or never
// answered).
func (ix *Index) PendingAt(seq uint64) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []string
	for _, p := range ix.pend {
		if p.Seq <= seq {
			out = append(out, p.ID)
		}
	}
	return out
}
