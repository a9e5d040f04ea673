package autosnapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Host is what the subsystem uses of the server.
type Host interface {
	Now() time.Time
	Logger() *slog.Logger
	NodeID() string
	// ScratchDir is where snapshots are staged and drills restore (a scratch
	// folder inside it, removed afterwards).
	ScratchDir() string
	// Storage is the barrier (records and schedules).
	Storage() storage.Storage
	// Active reports whether this node is the active node, the only one
	// that takes scheduled snapshots and runs drills.
	Active() bool
	// SaveSnapshot writes a snapshot archive of the current state to w;
	// inspect sees exactly that state and its result goes into meta.json.
	SaveSnapshot(ctx context.Context, w io.Writer, inspect func(ctx context.Context, v storage.Frozen) (json.RawMessage, error)) (*core.SnapshotArchiveInfo, error)
	// VerifySnapshot checks an archive as a restore would, including that
	// this cluster sealed it, staging it in dir; it changes nothing.
	VerifySnapshot(ctx context.Context, r io.Reader, dir string) (*core.SnapshotArchiveInfo, error)
	// RestoreScratch restores an archive into a new single-node store in
	// dir (not part of the cluster; the caller removes dir) and calls fn
	// with a view of the restored state.
	RestoreScratch(ctx context.Context, dir string, archive io.Reader, fn func(v storage.Frozen) error) error
	// OpenCopy opens physical, a copy of this cluster's storage, with the
	// cluster's keys held in memory (no key holder involved), and says
	// which key opened it. close drops the copy's keys.
	OpenCopy(ctx context.Context, physical storage.Storage) (dec storage.Storage, source string, close func(), err error)
	AddSysPart(framework.Part)
}

// Subsystem serves sys/storage/raft/snapshot-auto and its scheduled jobs.
type Subsystem struct {
	host Host
	now  func() time.Time
	log  *slog.Logger

	busyMu sync.Mutex
	busy   map[string]bool // schedules with a snapshot or drill running
}

// New returns the subsystem; Provision wires it.
func New() *Subsystem { return &Subsystem{busy: map[string]bool{}} }

// Name names the subsystem.
func (s *Subsystem) Name() string { return "snapshot-auto" }

// Provision installs the routes.
func (s *Subsystem) Provision(h Host) error {
	s.host, s.now, s.log = h, h.Now, h.Logger().With("component", "snapshot-auto")
	h.AddSysPart(routes{s})
	return nil
}

// Unsealed has nothing to start: the server's job scheduler drives the work.
func (s *Subsystem) Unsealed(context.Context) error { return nil }

// Sealing has nothing to stop.
func (s *Subsystem) Sealing(context.Context) {}

// acquire marks schedule name busy; false when it already is.
func (s *Subsystem) acquire(name string) bool {
	s.busyMu.Lock()
	defer s.busyMu.Unlock()
	if s.busy[name] {
		return false
	}
	s.busy[name] = true
	return true
}

func (s *Subsystem) release(name string) {
	s.busyMu.Lock()
	delete(s.busy, name)
	s.busyMu.Unlock()
}

var errBusy = core.Errorf(core.CodePrecondition, "snapshot-auto: a snapshot or drill of this schedule is already running")

// --- records ---

func configKey(name string) string { return core.SnapshotAutoPrefix + "config/" + name }
func statusKey(name string) string { return core.SnapshotAutoPrefix + "status/" + name }
func objectsPrefix(name string) string {
	return core.SnapshotAutoPrefix + "objects/" + name + "/"
}
func drillsPrefix(name string) string { return core.SnapshotAutoPrefix + "drills/" + name + "/" }

// maxDrills is how many drill records a schedule keeps.
const maxDrills = 200

func (s *Subsystem) config(ctx context.Context, name string) (*Config, error) {
	var c Config
	ok, err := storage.GetJSON(ctx, s.host.Storage(), configKey(name), &c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	return &c, nil
}

func (s *Subsystem) status(ctx context.Context, name string) (*core.SnapshotAutoStatus, error) {
	var st core.SnapshotAutoStatus
	if _, err := storage.GetJSON(ctx, s.host.Storage(), statusKey(name), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func (s *Subsystem) putStatus(ctx context.Context, st *core.SnapshotAutoStatus) error {
	return storage.PutJSON(context.WithoutCancel(ctx), s.host.Storage(), statusKey(st.Name), st)
}

// names lists the configured schedules.
func (s *Subsystem) names(ctx context.Context) ([]string, error) {
	return s.host.Storage().List(ctx, core.SnapshotAutoPrefix+"config/")
}

// DrillHistory returns a schedule's drill records, newest first (at most
// limit; 0: all kept).
func DrillHistory(ctx context.Context, st storage.Storage, name string, limit int) ([]core.SnapshotDrillRecord, error) {
	keys, err := st.List(ctx, drillsPrefix(name))
	if err != nil {
		return nil, err
	}
	var out []core.SnapshotDrillRecord
	for i := len(keys) - 1; i >= 0 && (limit == 0 || len(out) < limit); i-- {
		var r core.SnapshotDrillRecord
		ok, err := storage.GetJSON(ctx, st, drillsPrefix(name)+keys[i], &r)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *Subsystem) recordDrill(ctx context.Context, rec *core.SnapshotDrillRecord) error {
	ctx = context.WithoutCancel(ctx)
	st := s.host.Storage()
	key := fmt.Sprintf("%s%020d", drillsPrefix(rec.Schedule), rec.Time.UnixNano())
	if err := storage.PutJSON(ctx, st, key, rec); err != nil {
		return err
	}
	keys, err := st.List(ctx, drillsPrefix(rec.Schedule))
	if err != nil {
		return err
	}
	var errs []error
	for i := 0; i < len(keys)-maxDrills; i++ {
		errs = append(errs, st.Delete(ctx, drillsPrefix(rec.Schedule)+keys[i]))
	}
	return errors.Join(errs...)
}

// Schedules returns the status of every configured schedule, by name.
func Schedules(ctx context.Context, st storage.Storage) ([]core.SnapshotAutoStatus, error) {
	names, err := st.List(ctx, core.SnapshotAutoPrefix+"config/")
	if err != nil {
		return nil, err
	}
	out := make([]core.SnapshotAutoStatus, 0, len(names))
	for _, n := range names {
		var s core.SnapshotAutoStatus
		if _, err := storage.GetJSON(ctx, st, statusKey(n), &s); err != nil {
			return nil, err
		}
		s.Name = n
		out = append(out, s)
	}
	return out, nil
}
