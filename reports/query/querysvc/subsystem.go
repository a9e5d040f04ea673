// Package querysvc plugs the audit query into a server: it picks the
// backend (ClickHouse when an audit_stream "clickhouse" is configured,
// else the embedded index over the local file device), runs it while the
// server is unsealed, and serves
//
//	GET /v1/sys/audit/query?since=&until=&actor=&path=&operation=&allowed=&mount=&node_id=&flag=&limit=&after=&format=json|csv|ocsf
//
// The route is gated by ordinary policy capabilities on its path — not
// root-protected — so an auditor needs only this policy:
//
//	# auditor.hcl: query the audit trail, nothing else
//	path "sys/audit/query" {
//	  capabilities = ["read"]
//	}
//
// Responses are written as raw bodies (the JSON one in Vault's response
// envelope, so vault/api clients read it as usual): the audit entry of a
// query records who asked what (its parameters, HMAC'd like any request
// data) and the response size, not the records it returned — otherwise each
// query would copy part of the audit trail into it.
//
// The router prefers the most specific route, so sys/audit/query is served
// here whatever the order of the subsystems; the audit subsystem's
// sys/audit/:path takes the other sys/audit/ paths.
package querysvc

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/diskwatch"
	chship "github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/clickhouse"
	"github.com/vigilsec/vigil/reports/query/embedded"
)

// AuditLog is what the query needs from the audit subsystem;
// *auditsvc.Subsystem implements it.
type AuditLog interface {
	Broker() *audit.Broker
	PublicKey() (ed25519.PublicKey, bool)
	Watcher() *diskwatch.Watcher
	LastVerification(ctx context.Context) (*audit.Verification, error)
}

// Host is what the query subsystem uses of the server: its audit_stream
// blocks (to find a ClickHouse stream), dispatching sys/audit-hash, and the
// registration of its route.
type Host interface {
	Logger() *slog.Logger
	Now() time.Time
	NodeID() string
	Version() string
	Config() *config.Config
	Handle(ctx context.Context, req *core.Request) (*core.Response, error)
	// Mounts lists the secrets engines (to recognise KV v2 logical paths).
	Mounts(class string) []core.MountInfo
	EntityResolver
	AddSysPart(framework.Part)
}

// Options configure the subsystem. Audit is required.
type Options struct {
	Audit AuditLog
	// Backend forces "embedded" or "clickhouse" (default: ClickHouse when an
	// audit_stream "clickhouse" block is configured, else embedded).
	Backend string
	// Device is the file audit device the embedded index follows and whose
	// salt hashes raw accessors (default: the ClickHouse stream's device
	// option, else the only file device).
	Device string
	// IndexDir overrides where the embedded index lives (default: beside
	// the device's log, <path>.index).
	IndexDir string
	// VerifyHashes makes the embedded index recompute every line's hash
	// (see embedded.Config.VerifyHashes).
	VerifyHashes bool
	// ChunkRows and Poll tune the embedded index (tests).
	ChunkRows int
	Poll      time.Duration
	// Now overrides the clock used for relative times ("24h").
	Now func() time.Time
}

// Subsystem serves audit queries.
type Subsystem struct {
	opts     Options
	host     Host
	nodeID   string
	version  string
	log      *slog.Logger
	now      func() time.Time
	entities EntityResolver // nil: actor filters are not resolved
	mounts   func() []core.MountInfo

	ch       *chship.Config // the ClickHouse stream, when one is configured
	chDevice string

	mu        sync.Mutex
	backend   query.Backend
	index     *embedded.Index
	cbe       *clickhouse.Backend
	device    string
	err       error
	hashes    map[string]string
	stopStart chan struct{}
	active    bool // between Unsealed and Sealing
}

// NewSubsystem returns the audit query subsystem. It starts after the audit
// devices open on unseal regardless of its place among the subsystems (the
// index waits for the device), and stops on seal.
func NewSubsystem(opts Options) *Subsystem {
	return &Subsystem{opts: opts, hashes: map[string]string{}}
}

// Name names the subsystem in logs and errors.
func (s *Subsystem) Name() string { return "audit-query" }

// EveryNode: every node keeps the query index of its own audit log.
func (s *Subsystem) EveryNode() bool { return true }

// Provision reads the configuration (the first audit_stream "clickhouse"
// block, if any) and installs GET sys/audit/query.
func (s *Subsystem) Provision(srv Host) error {
	if s.opts.Audit == nil {
		return errors.New("audit query: the audit subsystem is required (querysvc.Options.Audit)")
	}
	s.host, s.nodeID, s.version = srv, srv.NodeID(), srv.Version()
	s.log = srv.Logger().With("component", "audit-query")
	s.entities = srv
	s.mounts = func() []core.MountInfo { return srv.Mounts("secret") }
	s.now = s.opts.Now
	if s.now == nil {
		s.now = srv.Now
	}
	switch s.opts.Backend {
	case "", "embedded", "clickhouse":
	default:
		return fmt.Errorf("audit query: unknown backend %q (embedded or clickhouse)", s.opts.Backend)
	}
	for _, b := range srv.Config().AuditStreams {
		if b.Type != "clickhouse" {
			continue
		}
		cfg, err := chship.ParseBlock(b)
		if err != nil {
			return err
		}
		s.ch = &cfg
		s.chDevice, _ = b.Get("device")
		break
	}
	if s.opts.Backend == "clickhouse" && s.ch == nil {
		return errors.New("audit query: backend clickhouse needs an audit_stream \"clickhouse\" block")
	}
	srv.AddSysPart(routes{s})
	return nil
}

// BackendName is the backend the configuration selects.
func (s *Subsystem) BackendName() string {
	if s.opts.Backend == "embedded" || s.opts.Backend == "" && s.ch == nil {
		return "embedded"
	}
	return "clickhouse"
}

// Unsealed starts the backend (the embedded index indexes in the
// background). It never fails the unseal: a backend that cannot start is
// retried on the next query and its error returned meanwhile.
func (s *Subsystem) Unsealed(ctx context.Context) error {
	s.mu.Lock()
	s.active = true
	s.mu.Unlock()
	if _, err := s.Backend(); err == nil {
		return nil
	}
	// When the audit devices are not open yet (or the backend cannot
	// start), retry in the background until they are.
	stop := make(chan struct{})
	s.mu.Lock()
	s.stopStart = stop
	s.mu.Unlock()
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		var err error
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if _, err = s.Backend(); err == nil {
				return
			}
			if i == 200 {
				s.log.Warn("audit query backend not ready; still retrying", "error", err)
			}
		}
	}()
	return nil
}

// Sealing stops the backend.
func (s *Subsystem) Sealing(context.Context) {
	s.mu.Lock()
	s.active = false
	if s.stopStart != nil {
		close(s.stopStart)
		s.stopStart = nil
	}
	ix, cbe := s.index, s.cbe
	s.backend, s.index, s.cbe, s.err = nil, nil, nil, nil
	s.hashes = map[string]string{}
	s.mu.Unlock()
	if ix != nil {
		_ = ix.Close()
	}
	if cbe != nil {
		_ = cbe.Close()
	}
}

// Backend returns the running backend, starting it if needed (after
// unseal). Reports use it to compute their figures. An actor filter it is
// given also matches the entity ids the identity store resolves for the
// actor (see resolvingBackend).
func (s *Subsystem) Backend() (query.Backend, error) {
	b, err := s.rawBackend()
	if err != nil || s.entities == nil {
		return b, err
	}
	return resolvingBackend{Backend: b, r: s.entities}, nil
}

func (s *Subsystem) rawBackend() (query.Backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backend != nil {
		return s.backend, nil
	}
	if s.host == nil {
		return nil, errors.New("audit query: not provisioned")
	}
	if !s.active {
		return nil, &core.Error{Code: core.CodeUnavailable, Msg: "audit query: the server is sealed"}
	}
	if _, ok := s.opts.Audit.PublicKey(); !ok {
		return nil, &core.Error{Code: core.CodeUnavailable, Msg: "audit query: the server is sealed"}
	}
	var err error
	if s.BackendName() == "clickhouse" {
		err = s.startClickHouse()
	} else {
		err = s.startEmbedded()
	}
	s.err = err
	if err != nil {
		return nil, err
	}
	return s.backend, nil
}

// CatchUp makes the embedded index cover everything audited so far: it
// writes a checkpoint on the followed device and waits (bounded by ctx)
// until the index answers against it. Requests still in flight at that
// checkpoint would read as Incomplete, so while any (other than own, the
// caller's own request id) is, it waits a little and checkpoints again, a
// few times. Reports and first query pages call it so they include the
// requests made just before. With ClickHouse it does nothing: results
// name the checkpoint the table holds.
func (s *Subsystem) CatchUp(ctx context.Context, own string) error {
	b, err := s.rawBackend()
	if err != nil {
		return err
	}
	ix, ok := b.(*embedded.Index)
	if !ok {
		return nil
	}
	s.mu.Lock()
	dev := s.device
	s.mu.Unlock()
	br := s.opts.Audit.Broker()
	if br == nil {
		return &core.Error{Code: core.CodeUnavailable, Msg: "audit query: the audit broker is not running"}
	}
	w, ok := br.FileWriter(dev)
	if !ok {
		return &core.Error{Code: core.CodeUnavailable, Msg: fmt.Sprintf("audit query: audit device %q is not open", dev)}
	}
	for attempt := 0; ; attempt++ {
		cp, err := w.Checkpoint()
		if err != nil {
			return fmt.Errorf("audit query: checkpoint device %q: %w", dev, err)
		}
		if err := ix.WaitForCheckpoint(ctx, cp.Seq); err != nil {
			return &core.Error{Code: core.CodeUnavailable, Msg: err.Error()}
		}
		inFlight := false
		for _, id := range ix.PendingAt(cp.Seq) {
			if id != own {
				inFlight = true
				break
			}
		}
		if !inFlight || attempt == catchUpRetries {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil // the checkpoint reached stands
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
}

// catchUpRetries bounds the extra checkpoints CatchUp writes while
// requests are in flight.
const catchUpRetries = 4

// Index returns the embedded index (nil when another backend runs).
func (s *Subsystem) Index() *embedded.Index {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index
}

func (s *Subsystem) startClickHouse() error {
	dev, _ := s.fileDevice(s.chDevice)
	s.device = dev.name
	b, err := clickhouse.New(clickhouse.Config{CH: *s.ch, NodeID: s.nodeID, PublicKey: s.opts.Audit.PublicKey, Hash: s.hash, Logger: s.log})
	if err != nil {
		return err
	}
	s.cbe, s.backend = b, b
	return nil
}

type fileDev struct {
	name, path string
	head       func() (uint64, bool)
}

// fileDevice finds the file device to follow: the named one, else the
// only one enabled.
func (s *Subsystem) fileDevice(name string) (fileDev, error) {
	if name == "" {
		name = s.opts.Device
	}
	br := s.opts.Audit.Broker()
	if br == nil {
		return fileDev{}, errors.New("audit query: the audit broker is not running")
	}
	d, err := br.FileDevice(name)
	if err != nil {
		return fileDev{}, &core.Error{Code: core.CodeUnavailable, Msg: "audit query: " + err.Error()}
	}
	return fileDev{name: d.Name(), path: d.Config.Path, head: br.FileHead(d.Name())}, nil
}

func (s *Subsystem) startEmbedded() error {
	dev, err := s.fileDevice("")
	if err != nil {
		return err
	}
	dir := s.opts.IndexDir
	if dir == "" {
		dir = dev.path + ".index"
	}
	diskOK := func() bool {
		w := s.opts.Audit.Watcher()
		if w == nil {
			return true
		}
		for _, st := range w.States() {
			if st.Dir == filepath.Dir(dev.path) && st.Level >= diskwatch.LevelWarn {
				return false
			}
		}
		return true
	}
	ix, err := embedded.Open(embedded.Config{Path: dev.path, Dir: dir, NodeID: s.nodeID, Head: dev.head,
		PublicKey: s.opts.Audit.PublicKey, Hash: s.hash, DiskOK: diskOK, ChunkRows: s.opts.ChunkRows, Poll: s.opts.Poll,
		VerifyHashes: s.opts.VerifyHashes, LastVerified: s.lastVerified(dev.name), Logger: s.log})
	if err != nil {
		return err
	}
	ix.Start()
	s.device, s.index, s.backend = dev.name, ix, ix
	return nil
}

// hash hashes a raw value (an accessor) with the device's salt, through
// sys/audit-hash/<device> as an internal request: the audit subsystem keeps
// the salt, and the lookup is itself audited (actor "audit-query").
func (s *Subsystem) hash(ctx context.Context, input string) (string, error) {
	s.mu.Lock()
	dev := s.device
	if h, ok := s.hashes[input]; ok {
		s.mu.Unlock()
		return h, nil
	}
	s.mu.Unlock()
	if dev == "" {
		return "", errors.New("no audit device to hash with")
	}
	resp, err := s.host.Handle(ctx, &core.Request{Operation: core.OpUpdate, Path: "sys/audit-hash/" + dev,
		Data: map[string]any{"input": input}, Internal: true, InternalActor: "audit-query"})
	if err != nil {
		return "", err
	}
	h, _ := resp.Data["hash"].(string)
	if h == "" {
		return "", errors.New("sys/audit-hash returned no hash")
	}
	s.mu.Lock()
	if len(s.hashes) > 4096 {
		s.hashes = map[string]string{}
	}
	s.hashes[input] = h
	s.mu.Unlock()
	return h, nil
}

// validNode reports whether a node id can be in a chain (a filter naming
// another is refused early).
func validNode(n string) bool { return n == "" || chain.ValidNodeID(n) }

// lastVerified reads the server's last full verification of a device's
// log from the barrier (cached for a few seconds).
func (s *Subsystem) lastVerified(device string) func() *embedded.ServerVerification {
	var mu sync.Mutex
	var at time.Time
	var last *embedded.ServerVerification
	return func() *embedded.ServerVerification {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) < 5*time.Second {
			return last
		}
		at = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := s.opts.Audit.LastVerification(ctx)
		if err != nil || v == nil {
			last = nil
			return nil
		}
		d, found := v.Devices[device]
		if !found {
			last = nil
			return nil
		}
		last = &embedded.ServerVerification{Time: v.Time, OK: d.OK, LastSeq: d.LastSeq, Failure: d.Failure}
		return last
	}
}

// attachProofs gives every record of this node's chain the inclusion proof
// of its entry against the result's checkpoint.
func (s *Subsystem) attachProofs(res *query.Result) error {
	if res.Checkpoint == nil {
		return errors.New("the result names no checkpoint")
	}
	dev, err := s.fileDevice("")
	if err != nil {
		return err
	}
	w, ok := s.opts.Audit.Broker().FileWriter(dev.name)
	if !ok {
		return fmt.Errorf("audit device %q is not open", dev.name)
	}
	c := res.Checkpoint
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil {
		return err
	}
	cp := chain.Checkpoint{NodeID: c.NodeID, Seq: c.Seq, Hash: c.Hash, TreeSize: c.TreeSize, Root: c.Root, Time: c.Time, Signature: sig, KeyID: c.KeyID}
	for i := range res.Records {
		r := &res.Records[i]
		if r.NodeID != c.NodeID || r.Seq > c.Seq {
			continue
		}
		b, err := w.Prove(r.Seq, &cp)
		if err != nil {
			return err
		}
		raw, err := json.Marshal(b)
		if err != nil {
			return err
		}
		r.Proof = raw
	}
	return nil
}
