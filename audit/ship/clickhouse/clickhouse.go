// Package clickhouse ships Vigil's audit log to ClickHouse over the native
// protocol (github.com/ClickHouse/clickhouse-go/v2): an audit_stream
// "clickhouse" sink.
//
//	audit_stream "clickhouse" "warehouse" {
//	  addr     = ["clickhouse-1:9000"]
//	  database = "audit"          # default "default"
//	  table    = "vigil_audit"    # default "vigil_audit"
//	  username = "vigil"
//	  password = "..."
//	  batch_size = 10000          # default for ClickHouse: few, large inserts
//	  compression = "lz4"         # lz4 (default) | none
//	}
//
// The sink creates its table (and database) when missing: one row per log
// line with the typed columns an auditor filters on and the raw line, in a
// ReplacingMergeTree ordered by (node_id, seq), so rows sent again after an
// outage or a crash collapse into one (query with FINAL, or GROUP BY
// node_id, seq, to see them deduplicated before merges run), partitioned
// by month. See Schema for the columns.
//
// It works with the ClickHouse Debian ships (18.16) and with current
// releases: the schema uses only types 18.16 has (time is a DateTime plus a
// nanoseconds column; no DateTime64, Map, Bool or JSON), and every insert
// names its columns (18.16 rejects a batch insert without a column list).
// The server version is detected on connect and reported in the stream
// status; nothing depends on a newer feature, so no fallback is needed.
package clickhouse

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/core/config"
)

// columnNames are the table's columns, in insert order.
var columnNames = []string{"node_id", "seq", "time", "time_ns", "type", "request_id", "operation", "path", "mount_point", "mount_type",
	"display_name", "entity_id", "accessor", "policies", "allowed", "error", "status", "error_code", "remote_address",
	"prev_hash", "hash", "raw"}

// Schema returns the CREATE TABLE statement for db.table. columnNames:
//
//	node_id, seq          the idempotency key; ORDER BY (node_id, seq)
//	time, time_ns         the line's time: DateTime('UTC') and its nanoseconds
//	type                  request, response, or the chain record type (vigil.*)
//	request_id, operation, path, mount_point, mount_type
//	display_name, entity_id, accessor (HMAC'd unless hmac_accessor=false), policies
//	allowed               1 when authorization allowed the request
//	error, status, error_code, remote_address
//	prev_hash, hash       the chain members
//	raw                   the local log line, byte for byte
func Schema(db, table string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n"+
		"  node_id String,\n  seq UInt64,\n  time DateTime('UTC'),\n  time_ns UInt32,\n  type String,\n"+
		"  request_id String,\n  operation String,\n  path String,\n  mount_point String,\n  mount_type String,\n"+
		"  display_name String,\n  entity_id String,\n  accessor String,\n  policies Array(String),\n  allowed UInt8,\n"+
		"  error String,\n  status UInt16,\n  error_code String,\n  remote_address String,\n"+
		"  prev_hash String,\n  hash String,\n  raw String\n"+
		") ENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(time)\nORDER BY (node_id, seq)", quote(db), quote(table))
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

func quote(id string) string { return "`" + id + "`" }

// Config configures a Sink.
type Config struct {
	Addr     []string
	Database string // default "default"
	Table    string // default "vigil_audit"
	Username string // default "default"
	Password string
	TLS      *tls.Config
	// CreateTable creates the database and table when missing (default
	// true in configuration files).
	CreateTable bool
	DialTimeout time.Duration // default 5s
	// NoCompression sends blocks uncompressed (compression = "none"):
	// faster on loopback or a fast LAN; LZ4 (the default) saves bandwidth.
	NoCompression bool
}

// knownKeys are the options the clickhouse stream type accepts besides
// ship.CommonKeys().
var knownKeys = []string{"addr", "database", "table", "username", "password", "create_table", "dial_timeout", "compression",
	"tls", "tls_ca_file", "tls_server_name", "tls_skip_verify"}

// New is the ship.Factory for audit_stream "clickhouse" blocks.
func New(b config.Block, _ ship.Env) (ship.Sink, error) {
	cfg, err := ParseBlock(b)
	if err != nil {
		return nil, err
	}
	return NewSink(cfg)
}

// ParseBlock reads an audit_stream "clickhouse" block; errors name the key
// and its file:line.
func ParseBlock(b config.Block) (Config, error) {
	if err := b.Unknown(append(ship.CommonKeys(), knownKeys...)...); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg := Config{Addr: ship.ListOption(b, "addr"), Database: ship.StringOption(b, "database", "default"),
		Table: ship.StringOption(b, "table", "vigil_audit"), Username: ship.StringOption(b, "username", "default"),
		Password: ship.StringOption(b, "password", "")}
	if len(cfg.Addr) == 0 {
		return cfg, ship.Errorf(b, "addr", "at least one address (host:9000, the native protocol port) is required")
	}
	if !identRE.MatchString(cfg.Database) {
		return cfg, ship.Errorf(b, "database", "%q is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", cfg.Database)
	}
	if !identRE.MatchString(cfg.Table) {
		return cfg, ship.Errorf(b, "table", "%q is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", cfg.Table)
	}
	var err error
	if cfg.CreateTable, err = ship.BoolOption(b, "create_table", true); err != nil {
		return cfg, err
	}
	if cfg.DialTimeout, err = ship.DurationOption(b, "dial_timeout", 5*time.Second); err != nil {
		return cfg, err
	}
	switch c := ship.StringOption(b, "compression", "lz4"); c {
	case "lz4":
	case "none":
		cfg.NoCompression = true
	default:
		return cfg, ship.Errorf(b, "compression", "expected lz4 or none, got %q", c)
	}
	on, err := ship.BoolOption(b, "tls", false)
	if err != nil {
		return cfg, err
	}
	skip, err := ship.BoolOption(b, "tls_skip_verify", false)
	if err != nil {
		return cfg, err
	}
	if ca := ship.StringOption(b, "tls_ca_file", ""); on || ca != "" || skip {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: ship.StringOption(b, "tls_server_name", ""), InsecureSkipVerify: skip} //nolint:gosec // operator's explicit choice
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return cfg, ship.Errorf(b, "tls_ca_file", "%v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return cfg, ship.Errorf(b, "tls_ca_file", "no PEM certificates in %s", ca)
			}
			cfg.TLS.RootCAs = pool
		}
	}
	return cfg, nil
}

// Sink inserts records into a ClickHouse table. It implements ship.Sink,
// ship.Targeter and ship.Describer.
type Sink struct {
	cfg    Config
	insert string

	mu      sync.Mutex
	conn    driver.Conn
	version string
}

var (
	_ ship.Sink      = (*Sink)(nil)
	_ ship.Targeter  = (*Sink)(nil)
	_ ship.Describer = (*Sink)(nil)
)

// NewSink validates cfg; it does not connect.
func NewSink(cfg Config) (*Sink, error) {
	if len(cfg.Addr) == 0 {
		return nil, errors.New("clickhouse sink: an address is required")
	}
	if cfg.Database == "" {
		cfg.Database = "default"
	}
	if cfg.Table == "" {
		cfg.Table = "vigil_audit"
	}
	if cfg.Username == "" {
		cfg.Username = "default"
	}
	if !identRE.MatchString(cfg.Database) || !identRE.MatchString(cfg.Table) {
		return nil, fmt.Errorf("clickhouse sink: database and table must be plain identifiers, got %q.%q", cfg.Database, cfg.Table)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	return &Sink{cfg: cfg, insert: fmt.Sprintf("INSERT INTO %s.%s (%s)", quote(cfg.Database), quote(cfg.Table), strings.Join(columnNames, ", "))}, nil
}

// DefaultBatchSize implements ship.BatchSizer: ClickHouse makes one part
// per insert and merges them in the background, so it wants few large
// inserts. Batches only grow this large when the stream is behind: with
// little traffic each insert carries what the linger time collected.
func (s *Sink) DefaultBatchSize() int { return 10000 }

// Target names the destination for the stream's cursor.
func (s *Sink) Target() string { return "clickhouse:" + s.cfg.Database + "." + s.cfg.Table }

// Describe implements ship.Describer.
func (s *Sink) Describe() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := map[string]any{"addr": strings.Join(s.cfg.Addr, ","), "database": s.cfg.Database, "table": s.cfg.Table}
	if s.version != "" {
		d["server_version"] = s.version
	}
	return d
}

// open connects and makes sure the table exists (once per connection).
func (s *Sink) open(ctx context.Context) (driver.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		return s.conn, nil
	}
	conn, err := Open(s.cfg)
	if err != nil {
		return nil, err
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse %s: %w", s.cfg.Addr[0], err)
	}
	if v, err := conn.ServerVersion(); err == nil {
		s.version = fmt.Sprintf("%d.%d.%d", v.Version.Major, v.Version.Minor, v.Version.Patch)
	}
	if s.cfg.CreateTable {
		if s.cfg.Database != "default" {
			if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quote(s.cfg.Database)); err != nil {
				_ = conn.Close()
				return nil, fmt.Errorf("clickhouse: create database %s: %w", s.cfg.Database, err)
			}
		}
		if err := conn.Exec(ctx, Schema(s.cfg.Database, s.cfg.Table)); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("clickhouse: create table %s.%s: %w", s.cfg.Database, s.cfg.Table, err)
		}
	}
	s.conn = conn
	return conn, nil
}

// Open returns a native-protocol connection for cfg (no round trip yet).
func Open(cfg Config) (driver.Conn, error) {
	var comp *ch.Compression
	if !cfg.NoCompression {
		comp = &ch.Compression{Method: ch.CompressionLZ4}
	}
	conn, err := ch.Open(&ch.Options{Protocol: ch.Native, Addr: cfg.Addr, TLS: cfg.TLS, DialTimeout: cfg.DialTimeout, Compression: comp,
		// No default database: it may not exist yet; every statement
		// names database.table.
		Auth:         ch.Auth{Username: cfg.Username, Password: cfg.Password},
		MaxOpenConns: 4, MaxIdleConns: 2,
		ClientInfo: ch.ClientInfo{Products: []struct{ Name, Version string }{{Name: "vigil", Version: "1"}}}})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	return conn, nil
}

// Write implements ship.Sink: one batch insert naming its columns. With
// no records it only connects (and creates the table).
func (s *Sink) Write(ctx context.Context, recs []ship.Record) error {
	conn, err := s.open(ctx)
	if err != nil || len(recs) == 0 {
		return err
	}
	if err := s.insertBatch(ctx, conn, recs); err != nil {
		s.drop(conn)
		return fmt.Errorf("clickhouse %s.%s: %w", s.cfg.Database, s.cfg.Table, err)
	}
	return nil
}

func (s *Sink) insertBatch(ctx context.Context, conn driver.Conn, recs []ship.Record) error {
	b, err := conn.PrepareBatch(ctx, s.insert)
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	rows := make([]Row, len(recs))
	ship.Parallel(len(recs), func(i int) { rows[i] = RowOf(recs[i]) })
	for _, row := range rows {
		if err := b.Append(row.NodeID, row.Seq, row.Time, row.TimeNS, row.Type, row.RequestID, row.Operation, row.Path,
			row.MountPoint, row.MountType, row.DisplayName, row.EntityID, row.Accessor, row.Policies, row.Allowed,
			row.Error, row.Status, row.ErrorCode, row.RemoteAddress, row.PrevHash, row.Hash, row.Raw); err != nil {
			return err
		}
	}
	return b.Send()
}

// drop forgets a connection after a failure; the next Write reconnects.
func (s *Sink) drop(conn driver.Conn) {
	s.mu.Lock()
	if s.conn == conn {
		s.conn = nil
	}
	s.mu.Unlock()
	_ = conn.Close()
}

// Close implements ship.Sink.
func (s *Sink) Close() error {
	s.mu.Lock()
	conn := s.conn
	s.conn = nil
	s.mu.Unlock()
	if conn == nil {
		return nil
	}
	return conn.Close()
}

// Row is one table row.
type Row struct {
	NodeID        string
	Seq           uint64
	Time          time.Time
	TimeNS        uint32
	Type          string
	RequestID     string
	Operation     string
	Path          string
	MountPoint    string
	MountType     string
	DisplayName   string
	EntityID      string
	Accessor      string
	Policies      []string
	Allowed       uint8
	Error         string
	Status        uint16
	ErrorCode     string
	RemoteAddress string
	PrevHash      string
	Hash          string
	Raw           string
}

// RowOf maps a record to its row. A line that does not decode still gets
// its key, chain members, time and raw line: nothing is dropped.
func RowOf(r ship.Record) Row {
	row := Row{NodeID: r.NodeID, Seq: r.Seq, PrevHash: r.PrevHash, Hash: r.Hash, Raw: string(r.Line), Policies: []string{}}
	at := r.Time
	l, err := logline.ParseSummary(r.Line)
	if err == nil {
		if !l.At.IsZero() {
			at = l.At
		}
		row.Type = l.Type
		if !l.IsRecord() {
			req, auth, vg := l.Request(), l.Auth(), l.Vigil()
			row.RequestID, row.Operation, row.Path = req.ID, req.Operation, req.Path
			row.MountPoint, row.MountType, row.RemoteAddress = req.MountPoint, req.MountType, req.RemoteAddr
			row.DisplayName, row.EntityID, row.Accessor = auth.DisplayName, auth.EntityID, auth.Accessor
			if l.IsLogin() && l.Entry.Response != nil && l.Entry.Response.Auth != nil {
				ra := l.Entry.Response.Auth
				row.DisplayName, row.EntityID, row.Accessor = or(row.DisplayName, ra.DisplayName), or(row.EntityID, ra.EntityID), or(row.Accessor, ra.Accessor)
			}
			if auth.Policies != nil {
				row.Policies = auth.Policies
			}
			if l.Allowed() {
				row.Allowed = 1
			}
			row.Error, row.Status, row.ErrorCode = l.Error, uint16(vg.Status), vg.ErrorCode
		}
	}
	if at.IsZero() {
		at = time.Unix(0, 0)
	}
	at = at.UTC()
	row.Time, row.TimeNS = at.Truncate(time.Second), uint32(at.Nanosecond())
	return row
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
