package clickhouse

import (
	"context"
	"fmt"

	"github.com/vigilsec/vigil/audit/chain"
)

// Nodes returns the node ids present in the table, sorted.
func Nodes(ctx context.Context, cfg Config) ([]string, error) {
	conn, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT node_id FROM %s.%s ORDER BY node_id", quote(cfg.Database), quote(cfg.Table)))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// ReadLines calls fn with the raw line of every row of node's chain,
// deduplicated by the table engine (SELECT ... FINAL) and ordered by seq.
func ReadLines(ctx context.Context, cfg Config, node string, fn func(line []byte) error) error {
	if !chain.ValidNodeID(node) {
		return fmt.Errorf("clickhouse: invalid node id %q", node)
	}
	conn, err := Open(cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The node id alphabet ([A-Za-z0-9._:-]) needs no escaping in a string
	// literal.
	q := fmt.Sprintf("SELECT raw FROM %s.%s FINAL WHERE node_id = '%s' ORDER BY seq", quote(cfg.Database), quote(cfg.Table), node)
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return err
		}
		if err := fn([]byte(raw)); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Counts reports the table's rows for node before deduplication and the
// distinct (node_id, seq) keys among them.
func Counts(ctx context.Context, cfg Config, node string) (rows, keys uint64, err error) {
	if !chain.ValidNodeID(node) {
		return 0, 0, fmt.Errorf("clickhouse: invalid node id %q", node)
	}
	conn, err := Open(cfg)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	r := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(), uniqExact(seq) FROM %s.%s WHERE node_id = '%s'", quote(cfg.Database), quote(cfg.Table), node))
	if err := r.Scan(&rows, &keys); err != nil {
		return 0, 0, fmt.Errorf("clickhouse: %w", err)
	}
	return rows, keys, nil
}

// LatestCheckpointLine returns the newest vigil.checkpoint line of node's
// chain in the table (nil when there is none).
func LatestCheckpointLine(ctx context.Context, cfg Config, node string) ([]byte, error) {
	if !chain.ValidNodeID(node) {
		return nil, fmt.Errorf("clickhouse: invalid node id %q", node)
	}
	conn, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	q := fmt.Sprintf("SELECT raw FROM %s.%s FINAL WHERE node_id = '%s' AND type = '%s' ORDER BY seq DESC LIMIT 1",
		quote(cfg.Database), quote(cfg.Table), node, chain.TypeCheckpoint)
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var raw string
	if err := rows.Scan(&raw); err != nil {
		return nil, err
	}
	return []byte(raw), nil
}

// LatestCheckpoint implements ship.CheckpointReader.
func (s *Sink) LatestCheckpoint(ctx context.Context, node string) ([]byte, error) {
	return LatestCheckpointLine(ctx, s.cfg, node)
}
