package autosnapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// TakeSnapshot takes one snapshot of schedule c now: the archive is staged
// in the data folder while its SHA-256 is computed, stored in the target,
// recorded in the barrier, and the schedule is pruned to c.Retain objects
// (oldest first, with their records). The schedule's status records the
// attempt either way. It fails on a node that is not active.
func (s *Subsystem) TakeSnapshot(ctx context.Context, c *Config) (*core.SnapshotObjectRecord, error) {
	if !s.host.Active() {
		return nil, core.Errorf(core.CodePrecondition, "snapshot-auto: only the active node takes snapshots")
	}
	if !s.acquire(c.Name) {
		return nil, errBusy
	}
	defer s.release(c.Name)
	st, err := s.status(ctx, c.Name)
	if err != nil {
		return nil, err
	}
	st.LastStart = s.now().UTC()
	rec, err := s.take(ctx, c)
	st.LastEnd = s.now().UTC()
	if rec != nil {
		st.LastURL, st.LastObject, st.LastSuccess = rec.URL, rec.Object, st.LastEnd
	}
	if err != nil {
		st.LastError = err.Error()
		if rec == nil {
			st.ConsecErrors++
		}
		s.log.Warn("automated snapshot", "schedule", c.Name, "error", err)
	} else {
		st.LastError, st.ConsecErrors = "", 0
	}
	if perr := s.putStatus(ctx, st); perr != nil {
		err = errors.Join(err, fmt.Errorf("record the status: %w", perr))
	}
	return rec, err
}

// take does the work of TakeSnapshot. A non-nil record with an error means
// the snapshot was stored but pruning failed.
func (s *Subsystem) take(ctx context.Context, c *Config) (*core.SnapshotObjectRecord, error) {
	target, err := openTarget(ctx, c)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.host.ScratchDir(), "snapshot-auto-*.snap")
	if err != nil {
		return nil, fmt.Errorf("snapshot-auto: stage: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	var att attachments
	h := sha256.New()
	info, err := s.host.SaveSnapshot(ctx, io.MultiWriter(f, h), func(ctx context.Context, v storage.Frozen) (json.RawMessage, error) {
		dec, _, closeCopy, err := s.host.OpenCopy(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("open the state: %w", err)
		}
		defer closeCopy()
		att.Schedule = c.Name
		if att.Counts, err = countState(ctx, v, dec); err != nil {
			return nil, err
		}
		if att.AuditCheckpoints, err = auditCheckpoints(ctx, v, dec); err != nil {
			return nil, err
		}
		return json.Marshal(att)
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot-auto: take snapshot: %w", err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot-auto: stage: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	taken := s.now().UTC()
	name := c.objectName(taken)
	if err := target.Put(ctx, name, f, size, sum); err != nil {
		return nil, err
	}
	rec := &core.SnapshotObjectRecord{Object: name, URL: target.URL(name), Time: taken, NodeID: info.NodeID,
		Index: info.Index, Term: info.Term, Bytes: size, SHA256: sum, Counts: att.Counts, AuditCheckpoints: len(att.AuditCheckpoints)}
	if err := storage.PutJSON(context.WithoutCancel(ctx), s.host.Storage(), objectsPrefix(c.Name)+name, rec); err != nil {
		// An object without a record fails every drill: remove it.
		_ = target.Delete(context.WithoutCancel(ctx), name)
		return nil, fmt.Errorf("snapshot-auto: record the snapshot: %w", err)
	}
	s.log.Info("automated snapshot stored", "schedule", c.Name, "url", rec.URL, "bytes", size, "index", info.Index)
	return rec, s.prune(ctx, c, target)
}

// prune deletes the oldest objects beyond c.Retain, and their records.
func (s *Subsystem) prune(ctx context.Context, c *Config, target Target) error {
	objs, err := snapshots(ctx, target, c)
	if err != nil {
		return fmt.Errorf("snapshot-auto: retention: %w", err)
	}
	var errs []error
	for i := 0; i < len(objs)-c.Retain; i++ {
		if err := target.Delete(ctx, objs[i].Name); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.host.Storage().Delete(context.WithoutCancel(ctx), objectsPrefix(c.Name)+objs[i].Name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("snapshot-auto: retention: %w", err)
	}
	return nil
}
