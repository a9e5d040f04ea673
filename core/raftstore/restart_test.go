package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// TestRestartNoReplay: data survives Close+Open, is readable before any
// election, and entries applied before the restart are not applied again.
func TestRestartNoReplay(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(dir, "node1")
	s := MustOpen(t, cfg)
	mustPut(t, s, "a", "1", "b/c", "2", "gone", "x")
	if err := s.Txn(ctx, []storage.TxnOp{
		{Kind: storage.OpPut, Key: "a", Value: []byte("txn")},
		{Kind: storage.OpDelete, Key: "gone"},
		{Kind: storage.OpPut, Key: "b/d", Value: []byte("3")},
	}); err != nil {
		t.Fatal(err)
	}
	want := dump(t, s)
	applied := s.AppliedIndex()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	rec := &keyRecorder{}
	cfg.OnApply = rec.record
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	// Readable straight away: no snapshot restore or log replay needed.
	if err := diff(dump(t, s2), want); err != nil {
		t.Fatalf("before election: %v", err)
	}
	if s2.AppliedIndex() != applied {
		t.Errorf("AppliedIndex after reopen = %d, want %d", s2.AppliedIndex(), applied)
	}
	if err := s2.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	// raft replayed the whole log (there is no snapshot); the FSM skipped it.
	if calls, keys, _ := rec.snapshot(); calls != 0 {
		t.Errorf("entries re-applied after restart: %d batches, keys %q", calls, keys)
	}
	if err := diff(dump(t, s2), want); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s2, "after", "restart")
	if _, keys, _ := rec.snapshot(); len(keys) != 1 || keys[0] != "after" {
		t.Errorf("OnApply keys = %q, want [after]", keys)
	}
}

// forceSnapshot takes a raft snapshot now (compacting the log).
func forceSnapshot(t *testing.T, s *Store) {
	t.Helper()
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatalf("raft snapshot: %v", err)
	}
}

func smallLogConfig(dir string) Config {
	cfg := testConfig(dir, "node1")
	cfg.TrailingLogs = 1
	return cfg
}

func writeN(t *testing.T, s *Store, prefix string, n int) {
	t.Helper()
	for i := range n {
		mustPut(t, s, fmt.Sprintf("%s/%03d", prefix, i), prefix)
	}
}

// TestRestartAfterCompaction: after a snapshot has compacted the log, a
// restart serves the state file without restoring the snapshot.
func TestRestartAfterCompaction(t *testing.T) {
	dir := t.TempDir()
	cfg := smallLogConfig(dir)
	s := MustOpen(t, cfg)
	writeN(t, s, "a", 50)
	forceSnapshot(t, s)
	writeN(t, s, "b", 10)
	first, err := s.logStore.FirstIndex()
	if err != nil || first <= 1 {
		t.Fatalf("log not compacted: first index %d, %v", first, err)
	}
	want := dump(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rec := &keyRecorder{}
	cfg.OnApply = rec.record
	s2 := MustOpen(t, cfg)
	if calls, _, nils := rec.snapshot(); calls != 0 || nils != 0 {
		t.Errorf("restart applied %d batches (%d restores)", calls, nils)
	}
	if err := diff(dump(t, s2), want); err != nil {
		t.Fatal(err)
	}
}

// TestCatchUpLostState: the state file is gone but raft has a snapshot and
// later log entries; Open restores the snapshot and raft replays the rest.
func TestCatchUpLostState(t *testing.T) {
	dir := t.TempDir()
	cfg := smallLogConfig(dir)
	s := MustOpen(t, cfg)
	writeN(t, s, "a", 30)
	forceSnapshot(t, s)
	writeN(t, s, "b", 10)
	want := dump(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "vigil.db")); err != nil {
		t.Fatal(err)
	}
	s2 := MustOpen(t, cfg)
	if err := diff(dump(t, s2), want); err != nil {
		t.Fatal(err)
	}
}

// TestCatchUpStaleState: the state file is older than the newest snapshot
// but the log still holds the gap; Open applies the gap from the log.
func TestCatchUpStaleState(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, "node1") // default TrailingLogs keeps the log
	s := MustOpen(t, cfg)
	writeN(t, s, "a", 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "vigil.db")
	old := filepath.Join(t.TempDir(), "old.db")
	copyFile(t, state, old)

	s = MustOpen(t, cfg)
	writeN(t, s, "b", 10)
	forceSnapshot(t, s)
	want := dump(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, old, state)

	rec := &keyRecorder{}
	cfg.OnApply = rec.record
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	// Caught up before raft even started.
	if err := diff(dump(t, s2), want); err != nil {
		t.Fatal(err)
	}
	if _, keys, nils := rec.snapshot(); len(keys) != 10 || nils != 0 {
		t.Errorf("catch-up applied keys %q (%d restores), want the 10 b/ keys from the log", keys, nils)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStorageFailure: a failing state transaction stops the FSM without
// losing the entry; after a restart it is applied from the raft log.
func TestStorageFailure(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(dir, "node1")
	s := MustOpen(t, cfg)
	mustPut(t, s, "before", "1")
	diskErr := errors.New("injected: no space left on device")
	hook := func() error { return diskErr }
	s.fsm.beforeCommit.Store(&hook)

	err := s.Put(ctx, "lost?", []byte("2"))
	wantCode(t, err, core.CodeUnavailable)
	if !errors.Is(err, diskErr) {
		t.Errorf("error %v does not wrap the storage failure", err)
	}
	_, err = s.Get(ctx, "before")
	wantCode(t, err, core.CodeUnavailable)
	wantCode(t, s.Put(ctx, "later", nil), core.CodeUnavailable)
	if s.Stats()["fsm_failed"] == "" {
		t.Error("Stats does not report the failure")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := MustOpen(t, cfg)
	want := map[string]string{"before": "1", "lost?": "2"}
	if err := diff(dump(t, s2), want); err != nil {
		t.Fatal(err)
	}
}
