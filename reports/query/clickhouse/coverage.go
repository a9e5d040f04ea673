package clickhouse

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilsec/vigil/reports/query"
)

var _ query.CoverageReporter = (*Backend)(nil)

// Coverage implements query.CoverageReporter: per node with a verified
// checkpoint, the oldest request or response row up to it, and — when
// the distinct seqs held between the first and the checkpoint are fewer
// than the range spans — one gap saying how many entries are missing
// (rows not shipped yet or deleted by a TTL).
func (b *Backend) Coverage(ctx context.Context) ([]query.NodeCoverage, error) {
	cps, err := b.checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	var out []query.NodeCoverage
	for _, cp := range cps {
		nc := query.NodeCoverage{NodeID: cp.NodeID, LastSeq: cp.Seq, Last: cp.Time}
		var first, distinct uint64
		var firstT time.Time
		var records uint64
		q := CoverageSQL(b.table, cp.NodeID, cp.Seq)
		err := b.run(ctx, q, nil, func(r driver.Rows) error {
			return r.Scan(&first, &firstT, &distinct, &records)
		})
		if err != nil {
			return nil, err
		}
		nc.FirstSeq, nc.First, nc.Records = first, firstT.UTC(), int64(records)
		if first > 0 && distinct < cp.Seq-first+1 {
			nc.Gaps = append(nc.Gaps, query.SeqGap{From: first, To: cp.Seq})
		}
		if first > 1 {
			nc.DroppedBefore = first
		}
		out = append(out, nc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

// CoverageSQL is the statement Coverage runs for one node up to seq: the
// first seq and time of a request or response row, the distinct seqs of
// every row from the first line held to seq, and the number of request
// and response rows.
func CoverageSQL(table, node string, seq uint64) string {
	return fmt.Sprintf("SELECT minIf(seq, type IN ('request', 'response')), minIf(time, type IN ('request', 'response')), "+
		"uniqExact(seq), countIf(type IN ('request', 'response')) FROM %s WHERE node_id = %s AND seq <= %d", table, lit(node), seq)
}
