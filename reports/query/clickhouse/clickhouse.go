// Package clickhouse is the query backend for nodes that stream their audit
// log to ClickHouse (audit_stream "clickhouse"): it answers the same
// filters as the embedded index, with the same results, in SQL over the
// stream's table (audit/ship/clickhouse: one row per log line, typed
// columns, the raw line, ReplacingMergeTree ordered by (node_id, seq)).
//
// # How a query runs
//
//  1. Checkpoints: the newest vigil.checkpoint row of each node. Its
//     Ed25519 signature is verified with the cluster's checkpoint key, it
//     must describe the row before it, and the row it covers must hold its
//     hash. Records are returned only up to it (per node). Verified
//     checkpoints are remembered, so later queries only look above them
//     (primary-key ranges) for newer ones.
//  2. Keys: the (node_id, seq, time) of matching response rows, filtered on
//     the typed columns, deduplicated with GROUP BY node_id, seq (rows sent
//     twice after an outage are identical lines, so any() of either is the
//     line: FINAL's result without FINAL's single-threaded merge), ordered
//     by (time, time_ns, node_id, seq), after the cursor, limited; then the
//     request rows of the same span whose request id no response row
//     answers (Incomplete records; see keys). The time window is a PREWHERE
//     on the time column, which the month partitions and the table's seq
//     order (time grows with seq) turn into skipped granules.
//  3. Records: the raw lines of those keys (primary-key lookups), turned
//     into records by the same code as the embedded index
//     (query.ParseLine) and checked again with the same compiled filter.
//     Only the flag filter is approximate in SQL (a substring test on the
//     raw line); every other condition is exact, so a page takes one pass
//     unless a flag filter is used.
//
// # What is verified
//
// The checkpoint's signature and the covered row's hash, on every query.
// The chain in ClickHouse is not re-hashed per query (that reads the whole
// table): `vigil audit verify-stream` re-verifies it, and the local log is
// verified by the audit subsystem. Result.Verification says exactly this.
package clickhouse

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/hmac"
	chship "github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/reports/query"
)

// Config configures a Backend.
type Config struct {
	// CH is the stream's connection and table (chship.ParseBlock reads it
	// from the audit_stream block).
	CH chship.Config
	// NodeID is this node: Result.Checkpoint is its checkpoint when the
	// table holds several nodes' chains.
	NodeID string
	// PublicKey returns the checkpoint verification key (required for
	// results: a checkpoint whose signature cannot be checked is refused).
	PublicKey func() (ed25519.PublicKey, bool)
	// Hash hashes a raw value with the streamed device's HMAC salt, so a
	// raw token accessor can be queried.
	Hash   func(ctx context.Context, s string) (string, error)
	Logger *slog.Logger
	// Exec, when set, runs every statement instead of the native
	// connection to CH.Addr: the same SQL on another ClickHouse engine
	// (the tests run every generated query on chdb, ClickHouse 26.x in
	// process, and compare the answers with the embedded backend's).
	Exec func(ctx context.Context, sql string) (driver.Rows, error)
}

// Backend answers queries from ClickHouse (query.Backend). Safe for
// concurrent use.
type Backend struct {
	cfg   Config
	table string

	mu   sync.Mutex
	conn driver.Conn

	// The newest verified checkpoint per node, and when the node list was
	// last read in full: later queries look for newer checkpoints only
	// above the known ones (primary-key ranges, not a scan of the table).
	cpMu     sync.Mutex
	cpKnown  map[string]query.CheckpointRef
	cpListAt time.Time
	// The table's time range (see timeRange).
	minT, maxT int64
	rangeOK    bool
	rangeAt    time.Time
}

// nodeListTTL is how long the set of nodes is trusted before the table is
// scanned again for nodes that started shipping since.
const nodeListTTL = time.Minute

var _ query.Backend = (*Backend)(nil)

// ErrUnavailable is returned (wrapped) when ClickHouse cannot be reached;
// it carries core.CodeUnavailable (HTTP 503).
var ErrUnavailable = &core.Error{Code: core.CodeUnavailable, Msg: "audit query: ClickHouse is unavailable"}

// ErrBadCheckpoint is returned (wrapped) when the newest checkpoint in the
// table does not verify: the data in ClickHouse cannot be trusted.
var ErrBadCheckpoint = &core.Error{Code: core.CodeInternal, Msg: "audit query: the checkpoint stored in ClickHouse does not verify"}

// New returns a backend; it connects on first use.
func New(cfg Config) (*Backend, error) {
	if len(cfg.CH.Addr) == 0 && cfg.Exec == nil {
		return nil, errors.New("clickhouse query backend: an address is required")
	}
	if cfg.CH.Database == "" {
		cfg.CH.Database = "default"
	}
	if cfg.CH.Table == "" {
		cfg.CH.Table = "vigil_audit"
	}
	if cfg.CH.DialTimeout <= 0 {
		cfg.CH.DialTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Backend{cfg: cfg, table: ident(cfg.CH.Database) + "." + ident(cfg.CH.Table)}, nil
}

// Name implements query.Backend.
func (b *Backend) Name() string { return "clickhouse" }

// Close closes the connection.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return nil
	}
	err := b.conn.Close()
	b.conn = nil
	return err
}

func (b *Backend) connect(ctx context.Context) (driver.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		return b.conn, nil
	}
	conn, err := chship.Open(b.cfg.CH)
	if err == nil {
		err = conn.Ping(ctx)
		if err != nil {
			_ = conn.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, strings.Join(b.cfg.CH.Addr, ","), err)
	}
	b.conn = conn
	return conn, nil
}

// drop forgets a connection after an error.
func (b *Backend) drop(conn driver.Conn) {
	b.mu.Lock()
	if b.conn == conn {
		b.conn = nil
	}
	b.mu.Unlock()
	_ = conn.Close()
}

// run is one statement; fn reads the rows.
func (b *Backend) run(ctx context.Context, sql string, rowsRead *int64, fn func(driver.Rows) error) error {
	if b.cfg.Exec != nil {
		rows, err := b.cfg.Exec(ctx, sql)
		if err != nil {
			if errors.Is(err, ErrNoTable) {
				return errNoTable
			}
			return fmt.Errorf("clickhouse query: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := fn(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	conn, err := b.connect(ctx)
	if err != nil {
		return err
	}
	qctx := ctx
	if rowsRead != nil {
		qctx = ch.Context(ctx, ch.WithProgress(func(p *ch.Progress) { *rowsRead += int64(p.Rows) }))
	}
	t0 := time.Now()
	defer func() { b.cfg.Logger.Debug("clickhouse query", "sql", sql, "took", time.Since(t0)) }()
	rows, err := conn.Query(qctx, sql)
	if err != nil {
		var ex *ch.Exception
		if errors.As(err, &ex) && (ex.Code == 60 || ex.Code == 81) {
			return errNoTable // the stream has not created its table yet
		}
		if ctx.Err() == nil && isConnErr(err) {
			b.drop(conn)
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return fmt.Errorf("clickhouse query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse query: %w", err)
	}
	return nil
}

var errNoTable = errors.New("clickhouse query: the stream's table does not exist yet")

// ErrNoTable is what a Config.Exec returns (wrapped) when the table does
// not exist (ClickHouse error 60 or 81).
var ErrNoTable = errors.New("unknown table")

func isConnErr(err error) bool {
	var ex *ch.Exception
	return !errors.As(err, &ex) // server exceptions are query errors; anything else is the connection
}

// plan is one query's compiled form.
type plan struct {
	m        *query.Matcher
	horizon  map[string]uint64
	cps      []query.CheckpointRef
	warnings []string
}

func (b *Backend) prepare(ctx context.Context, f query.Filter) (*plan, error) {
	var hashes, warn []string
	if f.Actor != "" && !strings.HasPrefix(f.Actor, hmac.Prefix) && b.cfg.Hash != nil {
		h, err := b.cfg.Hash(ctx, f.Actor)
		if err != nil {
			warn = append(warn, "the actor could not be hashed with the audit device's salt ("+err.Error()+"): only display names, entity ids and stored accessors match")
		} else {
			hashes = append(hashes, h)
		}
	}
	m, err := f.Compile(hashes...)
	if err != nil {
		return nil, err
	}
	cps, err := b.checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	p := &plan{m: m, horizon: map[string]uint64{}, cps: cps, warnings: warn}
	for _, cp := range cps {
		p.horizon[cp.NodeID] = cp.Seq
		if m.After != nil && m.After.Horizon != nil {
			if h, ok := m.After.Horizon[cp.NodeID]; ok && h < cp.Seq {
				p.horizon[cp.NodeID] = h
			}
		}
	}
	return p, nil
}

// checkpoints returns, per node in scope, the newest checkpoint row, after
// verifying it (see the package documentation).
func (b *Backend) checkpoints(ctx context.Context) ([]query.CheckpointRef, error) {
	where := "type = 'vigil.checkpoint'"
	b.cpMu.Lock()
	known := make(map[string]query.CheckpointRef, len(b.cpKnown))
	for n, c := range b.cpKnown {
		known[n] = c
	}
	full := time.Since(b.cpListAt) >= nodeListTTL || len(known) == 0
	b.cpMu.Unlock()
	if !full {
		var parts []string
		for n, c := range known {
			parts = append(parts, fmt.Sprintf("(node_id = %s AND seq > %d)", lit(n), c.Seq))
		}
		sort.Strings(parts)
		where += " AND (" + strings.Join(parts, " OR ") + ")"
	}
	type last struct {
		node string
		seq  uint64
		raw  string
		prev string
	}
	var lasts []last
	err := b.run(ctx, "SELECT node_id, max(seq) FROM "+b.table+" PREWHERE "+where+" GROUP BY node_id ORDER BY node_id", nil, func(r driver.Rows) error {
		var l last
		if err := r.Scan(&l.node, &l.seq); err != nil {
			return err
		}
		lasts = append(lasts, l)
		return nil
	})
	if errors.Is(err, errNoTable) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if full {
		b.cpMu.Lock()
		b.cpListAt = time.Now()
		b.cpMu.Unlock()
	}
	var out []query.CheckpointRef
	found := map[string]bool{}
	for _, l := range lasts {
		found[l.node] = true
	}
	for n, c := range known {
		if !found[n] {
			out = append(out, c) // no newer checkpoint than the one already verified
		}
	}
	if len(lasts) == 0 {
		sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
		return out, nil
	}
	pub, havePub := ed25519.PublicKey(nil), false
	if b.cfg.PublicKey != nil {
		pub, havePub = b.cfg.PublicKey()
	}
	for _, l := range lasts {
		if c, ok := known[l.node]; ok && c.Seq == l.seq-1 {
			out = append(out, c)
			continue
		}
		// The checkpoint row and the row it covers, in one primary-key read.
		q := fmt.Sprintf("SELECT seq, any(raw), any(prev_hash), any(hash) FROM %s WHERE node_id = %s AND seq IN (%d, %d) GROUP BY seq",
			b.table, lit(l.node), l.seq-1, l.seq)
		covered := ""
		err := b.run(ctx, q, nil, func(r driver.Rows) error {
			var seq uint64
			var raw, prev, hash string
			if err := r.Scan(&seq, &raw, &prev, &hash); err != nil {
				return err
			}
			if seq == l.seq {
				l.raw, l.prev = raw, prev
			} else {
				covered = hash
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		line, err := logline.Parse([]byte(l.raw))
		if err != nil || line.Checkpoint == nil {
			return nil, fmt.Errorf("%w: node %s seq %d: unreadable checkpoint row", ErrBadCheckpoint, l.node, l.seq)
		}
		c := line.Checkpoint
		at, terr := time.Parse(time.RFC3339Nano, c.Time)
		if terr != nil || c.NodeID != l.node || c.Seq != l.seq-1 || c.Hash != l.prev || covered != c.Hash {
			return nil, fmt.Errorf("%w: node %s seq %d: the checkpoint does not describe the row before it", ErrBadCheckpoint, l.node, l.seq)
		}
		if !havePub {
			return nil, fmt.Errorf("%w: no checkpoint verification key (is the server sealed?)", ErrBadCheckpoint)
		}
		sig, err := base64.StdEncoding.DecodeString(line.Signature)
		if err == nil {
			err = chain.Checkpoint{NodeID: c.NodeID, Seq: c.Seq, Hash: c.Hash, TreeSize: c.TreeSize, Root: c.Root, Time: at, Signature: sig, KeyID: line.KeyID}.Verify(pub)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: node %s checkpoint %d: %v", ErrBadCheckpoint, l.node, c.Seq, err)
		}
		ref := query.CheckpointRef{NodeID: c.NodeID, Seq: c.Seq, Hash: c.Hash, TreeSize: c.TreeSize, Root: c.Root, Time: at.UTC(), Signature: line.Signature, KeyID: line.KeyID}
		out = append(out, ref)
		b.cpMu.Lock()
		if b.cpKnown == nil {
			b.cpKnown = map[string]query.CheckpointRef{}
		}
		if old, ok := b.cpKnown[ref.NodeID]; !ok || old.Seq < ref.Seq {
			b.cpKnown[ref.NodeID] = ref
		}
		b.cpMu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

// checkpointFor picks the checkpoint a result names: the filtered node's,
// else this node's, else the first node's.
func (p *plan) checkpointFor(local string) *query.CheckpointRef {
	var pick *query.CheckpointRef
	for i := range p.cps {
		switch n := p.cps[i].NodeID; {
		case p.m.F.NodeID != "" && n == p.m.F.NodeID:
			return &p.cps[i]
		case n == local && (pick == nil || pick.NodeID != p.m.F.NodeID):
			pick = &p.cps[i]
		case pick == nil:
			pick = &p.cps[i]
		}
	}
	return pick
}

func (p *plan) result(name, local string) *query.Result {
	res := &query.Result{Backend: name, Records: []query.Record{}, Checkpoints: p.cps, Warnings: p.warnings}
	res.Checkpoint = p.checkpointFor(local)
	if res.Checkpoint == nil {
		res.Warnings = append(res.Warnings, "no checkpoint has been shipped to ClickHouse yet: nothing can be returned")
		return res
	}
	res.Verification = fmt.Sprintf("clickhouse: checkpoint %d of node %s is the newest shipped; its Ed25519 signature was verified (key %s) and the row it covers holds its hash; "+
		"the rows in ClickHouse were not re-hashed for this query (`vigil audit verify-stream` re-verifies the chain there)", res.Checkpoint.Seq, res.Checkpoint.NodeID, res.Checkpoint.KeyID)
	return res
}

// Query implements query.Backend.
func (b *Backend) Query(ctx context.Context, f query.Filter) (*query.Result, error) {
	p, err := b.prepare(ctx, f)
	if err != nil {
		return nil, err
	}
	res := p.result(b.Name(), b.cfg.NodeID)
	recs, more, err := b.page(ctx, p, p.m.F.Limit, &res.Scanned)
	if err != nil {
		return nil, err
	}
	res.Records = append(res.Records, recs...)
	if more {
		res.Next = query.CursorAfter(&recs[len(recs)-1], p.horizon)
	}
	return res, nil
}

// Scan implements query.Backend: pages of 10000 keys, in order.
func (b *Backend) Scan(ctx context.Context, f query.Filter, fn func(query.Record) error) (*query.CheckpointRef, error) {
	if _, err := f.Normalize(); err != nil {
		return nil, err
	}
	f.Limit = 0
	p, err := b.prepare(ctx, f)
	if err != nil {
		return nil, err
	}
	cp := p.checkpointFor(b.cfg.NodeID)
	var read int64
	m := *p.m
	p.m = &m
	for {
		recs, more, err := b.page(ctx, p, 10000, &read)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return cp, err
			}
		}
		if !more {
			return cp, nil
		}
		last := recs[len(recs)-1]
		m.After = &query.Cursor{Time: last.Time, NodeID: last.NodeID, Seq: last.Seq}
	}
}

// ident quotes an identifier (database and table names are validated
// plain identifiers).
func ident(s string) string { return "`" + strings.ReplaceAll(s, "`", "") + "`" }

// lit is a ClickHouse string literal.
func lit(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\'':
			b.WriteString(`\'`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// jsonEscape escapes s as encoding/json writes it inside a string (for the
// flag substring test; approximate is fine, records are re-checked).
func jsonEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return r.Replace(s)
}
