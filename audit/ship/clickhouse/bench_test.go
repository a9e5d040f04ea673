package clickhouse

import (
	"testing"

	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
)

// BenchmarkShipClickHouse measures shipping a backlog to the real
// ClickHouse server (goal: 100k entries/s): every line parsed into the
// typed columns, batch inserts over the native protocol.
//
//	go test ./audit/ship/clickhouse -run XXX -bench ShipClickHouse -benchtime 200000x
func BenchmarkShipClickHouse(b *testing.B) {
	for _, c := range []struct {
		batch int
		lz4   bool
	}{{1000, true}, {5000, true}, {5000, false}, {20000, false}} {
		name := "batch=" + itoa(c.batch) + "/lz4"
		if !c.lz4 {
			name = "batch=" + itoa(c.batch) + "/uncompressed"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.NoCompression = !c.lz4
			shiptest.Use(b, "clickhouse")
			shiptest.BenchShip(b, c.batch, func(tb testing.TB) ship.Sink {
				s, err := NewSink(cfg)
				if err != nil {
					tb.Fatal(err)
				}
				tb.Cleanup(func() { _ = s.Close() })
				return s
			})
		})
	}
}

// BenchmarkRowOf is the per-line cost of the typed columns.
func BenchmarkRowOf(b *testing.B) {
	recs := fixtureRecords(b)
	r := recs[3]
	b.SetBytes(int64(len(r.Line)))
	for b.Loop() {
		_ = RowOf(r)
	}
}

func itoa(n int) string {
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}
