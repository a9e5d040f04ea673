package autosnapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// Drill triggers.
const (
	TriggerRequest  = "request"
	TriggerSchedule = "schedule"
)

// Drill restores the latest snapshot of schedule c into a scratch store
// and checks it, step by step:
//
//  1. download the newest object and compare its SHA-256 with the one
//     recorded in the barrier when it was stored (integrity);
//  2. verify the archive as a restore would (framing, SHA256SUMS, bbolt
//     consistency) and that this cluster sealed it;
//  3. restore it into a new single-node raft store in a temporary folder
//     under the data folder (removed afterwards);
//  4. open that store's barrier with the keys this node holds in memory —
//     the root key on the snapshot's keyring, else the live keyring — and
//     decrypt every stored value;
//  5. count mounts, KV secrets, policies, leases and keys and compare them
//     with the counts read from the live state at the snapshot's index
//     when it was taken.
//
// The record (passed or failed, with the reason, the snapshot's age, each
// step's duration and the counts) is stored in the barrier and returned;
// the request that ran the drill carries it into the audit trail. Drill
// returns an error only when it could not run or record at all.
func (s *Subsystem) Drill(ctx context.Context, c *Config, trigger string) (*core.SnapshotDrillRecord, error) {
	if !s.host.Active() {
		return nil, core.Errorf(core.CodePrecondition, "snapshot-auto: drills run on the active node")
	}
	if !s.acquire(c.Name) {
		return nil, errBusy
	}
	defer s.release(c.Name)
	start := s.now()
	rec := &core.SnapshotDrillRecord{Time: start.UTC(), Schedule: c.Name, Trigger: trigger}
	if err := s.drill(ctx, c, rec); err != nil {
		rec.Error = err.Error()
	} else {
		rec.Passed = true
	}
	rec.TotalMS = s.now().Sub(start).Milliseconds()
	if err := s.recordDrill(ctx, rec); err != nil {
		return nil, fmt.Errorf("snapshot-auto: record the drill: %w", err)
	}
	st, err := s.status(ctx, c.Name)
	if err == nil {
		st.Name, st.LastDrill, st.LastDrillPass = c.Name, rec.Time, rec.Passed
		err = s.putStatus(ctx, st)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot-auto: record the drill: %w", err)
	}
	lvl := slog.LevelInfo
	if !rec.Passed {
		lvl = slog.LevelError
	}
	s.log.Log(ctx, lvl, "restore drill", "schedule", c.Name, "passed", rec.Passed, "object", rec.Object, "error", rec.Error)
	return rec, nil
}

// step runs fn and adds its duration to *ms.
func (s *Subsystem) step(ms *int64, fn func() error) error {
	t := s.now()
	err := fn()
	*ms = s.now().Sub(t).Milliseconds()
	return err
}

func (s *Subsystem) drill(ctx context.Context, c *Config, rec *core.SnapshotDrillRecord) error {
	target, err := openTarget(ctx, c)
	if err != nil {
		return err
	}
	objs, err := snapshots(ctx, target, c)
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		return fmt.Errorf("no snapshot of schedule %q in %s", c.Name, target.URL(""))
	}
	latest := objs[len(objs)-1]
	rec.Object, rec.URL = latest.Name, target.URL(latest.Name)
	var want core.SnapshotObjectRecord
	ok, err := storage.GetJSON(ctx, s.host.Storage(), objectsPrefix(c.Name)+latest.Name, &want)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s has no record in this cluster (not stored by this schedule): its integrity cannot be checked", rec.URL)
	}
	rec.SnapshotTime, rec.Index, rec.Expected = want.Time, want.Index, want.Counts
	rec.AgeSecs = int64(s.now().Sub(want.Time) / time.Second)

	scratch, err := os.MkdirTemp(s.host.ScratchDir(), "snapshot-drill-")
	if err != nil {
		return fmt.Errorf("scratch folder: %w", err)
	}
	defer os.RemoveAll(scratch)
	archive := scratch + "/snapshot.snap"

	// 1. Download and check the SHA-256 recorded at upload.
	if err := s.step(&rec.DownloadMS, func() error {
		n, sum, err := download(ctx, target, latest.Name, archive)
		rec.Bytes, rec.SHA256 = n, sum
		return err
	}); err != nil {
		return err
	}
	if rec.SHA256 != want.SHA256 || rec.Bytes != want.Bytes {
		return fmt.Errorf("integrity: %s has SHA-256 %s (%d bytes), the cluster recorded %s (%d bytes) when it stored it", rec.URL, rec.SHA256, rec.Bytes, want.SHA256, want.Bytes)
	}

	// 2. Verify the archive and its cluster seal.
	var info *core.SnapshotArchiveInfo
	if err := s.step(&rec.VerifyMS, func() error {
		f, err := os.Open(archive)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err = s.host.VerifySnapshot(ctx, f, scratch)
		return err
	}); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var att attachments
	if err := json.Unmarshal(info.Attachments, &att); err != nil {
		return fmt.Errorf("verify: meta.json carries no snapshot-auto attachments: %v", err)
	}
	rec.AuditCheckpoints = len(att.AuditCheckpoints)
	if info.Index != want.Index || att.Counts != want.Counts {
		return fmt.Errorf("verify: the archive (index %d) is not the snapshot recorded (index %d)", info.Index, want.Index)
	}

	// 3, 4 and 5. Restore into a scratch store, open it with the
	// cluster's keys, decrypt everything, count.
	var got core.SnapshotCounts
	restoreStart := s.now()
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	err = s.host.RestoreScratch(ctx, scratch+"/raft", f, func(v storage.Frozen) error {
		rec.RestoreMS = s.now().Sub(restoreStart).Milliseconds()
		var dec storage.Storage
		var closeCopy func()
		if err := s.step(&rec.UnsealMS, func() error {
			var err error
			dec, rec.KeySource, closeCopy, err = s.host.OpenCopy(ctx, v)
			if err != nil {
				return fmt.Errorf("unseal the restored store with the cluster's keys: %w", err)
			}
			rec.Values, err = decryptAll(ctx, v, dec)
			return err
		}); err != nil {
			if closeCopy != nil {
				closeCopy()
			}
			return err
		}
		defer closeCopy()
		return s.step(&rec.CountMS, func() error {
			var err error
			got, err = countState(ctx, v, dec)
			return err
		})
	})
	rec.Restored = got
	if err != nil {
		return err
	}
	if got != want.Counts {
		return fmt.Errorf("the restored store holds %+v, the live state at index %d held %+v", got, want.Index, want.Counts)
	}
	return nil
}

// download copies name into path and returns its size and SHA-256.
func download(ctx context.Context, t Target, name, path string) (int64, string, error) {
	rc, err := t.Get(ctx, name)
	if err != nil {
		return 0, "", err
	}
	defer rc.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, rc})
	if err != nil {
		return n, "", fmt.Errorf("download: %w", err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), f.Close()
}
