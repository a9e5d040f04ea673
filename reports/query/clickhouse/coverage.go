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
// checkpoint, the first record up to it, and — when the distinct seqs held
// between the lowest and the checkpoint are fewer than the range spans —
// one gap over that range (rows not shipped yet or deleted by a TTL).
func (b *Backend) Coverage(ctx context.Context) ([]query.NodeCoverage, error) {
	cps, err := b.checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	var out []query.NodeCoverage
	for _, cp := range cps {
		nc := query.NodeCoverage{NodeID: cp.NodeID, LastSeq: cp.Seq, Last: cp.Time}
		var first, lowest, distinct, records uint64
		var firstT time.Time
		var firstNS uint32
		q := CoverageSQL(b.table, cp.NodeID, cp.Seq)
		err := b.run(ctx, q, nil, func(r driver.Rows) error {
			return r.Scan(&first, &firstT, &firstNS, &lowest, &distinct, &records)
		})
		if err != nil {
			return nil, err
		}
		nc.FirstSeq, nc.Records = first, int64(records)
		if first > 0 {
			nc.First = firstT.UTC().Add(time.Duration(firstNS))
		}
		if lowest > 0 && distinct < cp.Seq-lowest+1 {
			nc.Gaps = append(nc.Gaps, query.SeqGap{From: lowest, To: cp.Seq})
		}
		if lowest > 1 {
			nc.DroppedBefore = lowest
		}
		out = append(out, nc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

// CoverageSQL is the statement Coverage runs for one node up to seq: the
// seq and time (seconds, nanoseconds) of the first response row (the
// first record), the lowest seq held, the distinct seqs held, and the
// number of requests (distinct request ids of request and response rows:
// one record each, as the query counts them).
func CoverageSQL(table, node string, seq uint64) string {
	return fmt.Sprintf("SELECT minIf(seq, type = 'response'), argMinIf(time, seq, type = 'response'), argMinIf(time_ns, seq, type = 'response'), "+
		"min(seq), uniqExact(seq), uniqExactIf(request_id, type IN ('request', 'response') AND request_id != '') "+
		"FROM %s WHERE node_id = %s AND seq <= %d", table, lit(node), seq)
}
