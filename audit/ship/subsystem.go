package ship

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// AuditLog is what streams need from the audit subsystem;
// *auditsvc.Subsystem implements it. Broker finds the file device a stream tails (its path and
// its writer's durable head), AddSegmentGuard keeps unshipped segments
// from retention, and Watcher reports which stream holds a full disk.
type AuditLog interface {
	Broker() *audit.Broker
	AddSegmentGuard(g diskwatch.SegmentGuard)
	Watcher() *diskwatch.Watcher
	AddCheckpointSource(s audit.CheckpointSource)
}

// Host is what the stream subsystem uses of the server: its audit_stream
// blocks, storage for the cursors, and the registration of its routes,
// health details and metrics.
type Host interface {
	Logger() *slog.Logger
	Now() time.Time
	NodeID() string
	Version() string
	Config() *config.Config
	Storage() storage.Storage
	Metrics() prometheus.Registerer
	// Mounts lists the secrets engines (their phi/regulated tags rate
	// the severity of SIEM events).
	Mounts(class string) []core.MountInfo
	AddSysPart(framework.Part)
	AddHealth(f func(ctx context.Context, hi *core.HealthInfo))
}

// Options configure the stream subsystem.
type Options struct {
	// Audit is the audit subsystem (required when streams are declared).
	// List this subsystem after it among the server's subsystems.
	Audit AuditLog
	// Sinks maps an audit_stream type to its factory, e.g.
	// {"kafka": kafka.New, "clickhouse": clickhouse.New}.
	Sinks map[string]Factory
	// Cursors overrides where cursors are kept (default: the server's
	// barrier, see StorageCursors).
	Cursors CursorStore
	// Now overrides the server's clock.
	Now func() time.Time
	// Poll, MinBackoff and CursorInterval override the shippers' defaults
	// (tests and benchmarks).
	Poll, MinBackoff, CursorInterval time.Duration
}

// Subsystem runs the configured audit streams. Build it with
// NewSubsystem; Provision reads the audit_stream blocks.
//
// The streams are fixed at Provision: ships and byName are only read after
// it, so they need no lock.
type Subsystem struct {
	opts   Options
	log    *slog.Logger
	ships  []*Shipper
	byName map[string]*Shipper
}

// NewSubsystem returns the stream subsystem. In cmd/vigil/wire:
//
//	ship.NewSubsystem(ship.Options{Audit: auditSub, Sinks: map[string]ship.Factory{
//		"kafka": kafka.New, "clickhouse": clickhouse.New}})
func NewSubsystem(opts Options) *Subsystem {
	return &Subsystem{opts: opts, byName: map[string]*Shipper{}}
}

// Name names the subsystem in logs and errors.
func (s *Subsystem) Name() string { return "audit-stream" }

// EveryNode: every node ships its own audit log.
func (s *Subsystem) EveryNode() bool { return true }

// Provision validates every audit_stream block (unknown types and keys are
// errors naming file:line), builds the sinks without connecting, registers
// each stream's segment guard with the audit subsystem, and installs
// sys/audit-stream, the metrics and the health details.
func (s *Subsystem) Provision(srv Host) error {
	s.log = srv.Logger().With("component", "audit-stream")
	now := s.opts.Now
	if now == nil {
		now = srv.Now
	}
	cursors := s.opts.Cursors
	if cursors == nil {
		cursors = StorageCursors{S: srv.Storage()}
	}
	blocks := srv.Config().AuditStreams
	if len(blocks) > 0 && s.opts.Audit == nil {
		return errors.New("audit stream: streams are configured but the audit subsystem is not wired")
	}
	env := Env{NodeID: srv.NodeID(), Version: srv.Version(), Logger: s.log, Now: now, Regulated: regulatedMounts(srv, now)}
	for _, b := range blocks {
		f, ok := s.opts.Sinks[b.Type]
		if !ok {
			types := make([]string, 0, len(s.opts.Sinks))
			for t := range s.opts.Sinks {
				types = append(types, t)
			}
			sort.Strings(types)
			return fmt.Errorf("config: %s:%d: unknown audit_stream type %q (known: %s)", b.File, b.Line, b.Type, strings.Join(types, ", "))
		}
		if b.Name == "" || strings.ContainsAny(b.Name, "/ ") {
			return fmt.Errorf("config: %s:%d: audit_stream %q needs a name without '/' or spaces", b.File, b.Line, b.Type)
		}
		if _, dup := s.byName[b.Name]; dup {
			return fmt.Errorf("config: %s:%d: audit_stream %q declared twice", b.File, b.Line, b.Name)
		}
		c, err := parseCommon(b)
		if err != nil {
			return err
		}
		sink, err := f(b, env)
		if err != nil {
			return err
		}
		if _, set := b.Get("batch_size"); !set {
			if d, ok := sink.(BatchSizer); ok {
				c.BatchSize = d.DefaultBatchSize()
			}
		}
		sh, err := NewShipper(Config{
			Name: b.Name, Type: b.Type, NodeID: srv.NodeID(), Sink: sink, Log: s.resolver(c.Device), Cursors: cursors,
			BatchSize: c.BatchSize, Linger: lingerOrNone(c.Linger), MaxBackoff: c.MaxBackoff, WriteTimeout: c.WriteTimeout,
			Poll: s.opts.Poll, MinBackoff: s.opts.MinBackoff, CursorInterval: s.opts.CursorInterval,
			Now: now, Logger: s.log,
		})
		if err != nil {
			return err
		}
		s.ships = append(s.ships, sh)
		s.byName[b.Name] = sh
		s.opts.Audit.AddSegmentGuard(sh.Guard)
		if cr, ok := sink.(CheckpointReader); ok {
			s.opts.Audit.AddCheckpointSource(audit.CheckpointSource{Name: b.Type + " stream " + b.Name, Device: c.Device,
				Latest: func(ctx context.Context, node string) (*chain.Checkpoint, error) {
					line, err := cr.LatestCheckpoint(ctx, node)
					if err != nil || line == nil {
						return nil, err
					}
					cp, err := chain.ParseCheckpointLine(line)
					if err != nil {
						return nil, fmt.Errorf("the newest checkpoint line in the stream: %w", err)
					}
					return &cp, nil
				}})
		}
	}
	if err := srv.Metrics().Register(collector{s}); err != nil {
		return fmt.Errorf("audit stream: register metrics: %w", err)
	}
	srv.AddSysPart(routes{s})
	srv.AddHealth(s.health)
	return nil
}

func lingerOrNone(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Unsealed starts every stream. It never fails and never waits for a sink:
// problems show in the stream status.
func (s *Subsystem) Unsealed(context.Context) error {
	for _, sh := range s.ships {
		sh.Start()
	}
	return nil
}

// Sealing stops every stream and saves its cursor (the barrier is still
// open).
func (s *Subsystem) Sealing(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sh := range s.ships {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sh.Stop(ctx); err != nil {
				s.log.Error("saving audit stream cursor at seal", "stream", sh.Name(), "error", err)
			}
		}()
	}
	wg.Wait()
}

// Shippers returns the streams in configuration order.
func (s *Subsystem) Shippers() []*Shipper { return append([]*Shipper(nil), s.ships...) }

// Shipper returns the named stream (nil if none).
func (s *Subsystem) Shipper(name string) *Shipper { return s.byName[name] }

// Statuses returns every stream's status, with the disk space it holds.
func (s *Subsystem) Statuses() []Status {
	var disk []diskwatch.State
	if s.opts.Audit != nil {
		if w := s.opts.Audit.Watcher(); w != nil {
			disk = w.States()
		}
	}
	out := make([]Status, 0, len(s.ships))
	for _, sh := range s.ships {
		st := sh.Status()
		st.HeldSegments, st.HeldBytes = sh.Held()
		for _, d := range disk {
			if d.Holder == sh.Holder() && d.Level >= diskwatch.LevelCritical {
				st.HoldingDisk = d.Name
			}
		}
		out = append(out, st)
	}
	return out
}

// resolver finds the file device a stream tails: the named one, or the
// only file device enabled.
func (s *Subsystem) resolver(device string) func() (Log, error) {
	return func() (Log, error) {
		b := s.opts.Audit.Broker()
		if b == nil {
			return Log{}, errors.New("audit stream: the audit broker is not running")
		}
		d, err := b.FileDevice(device)
		if err != nil {
			return Log{}, fmt.Errorf("audit stream: %w", err)
		}
		return Log{Device: d.Name(), Path: d.Config.Path, Head: b.FileHead(d.Name())}, nil
	}
}

// health adds each stream's state to the audit details of sys/health.
func (s *Subsystem) health(_ context.Context, hi *core.HealthInfo) {
	if hi.AuditDetail == nil || len(s.ships) == 0 {
		return
	}
	m := map[string]any{}
	for _, st := range s.Statuses() {
		e := map[string]any{"type": st.Type, "state": st.State, "lag_entries": st.LagEntries, "lag_seconds": st.LagSeconds,
			"held_segments": st.HeldSegments, "held_bytes": st.HeldBytes}
		if st.LastError != "" && !st.Up {
			e["last_error"] = st.LastError
		}
		if st.HoldingDisk != "" {
			e["holding_disk"] = st.HoldingDisk
		}
		m[st.Name] = e
	}
	hi.AuditDetail["streams"] = m
}

// regulatedMounts returns Env.Regulated over the host's mounts, read
// again at most every few seconds (mounts change rarely; events are many).
func regulatedMounts(h Host, now func() time.Time) func(string) bool {
	var mu sync.Mutex
	var at time.Time
	var set map[string]bool
	return func(mount string) bool {
		mu.Lock()
		defer mu.Unlock()
		if set == nil || now().Sub(at) > 5*time.Second || now().Before(at) {
			set = map[string]bool{}
			for _, m := range h.Mounts("secret") {
				if core.TrueTag(m.Options, core.ScopeTags()) {
					set[m.Path] = true
				}
			}
			at = now()
		}
		return set[mount]
	}
}
