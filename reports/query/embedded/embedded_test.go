package embedded_test

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/embedded"
	"github.com/vigilsec/vigil/reports/query/querytest"
)

// mustIndex opens and starts an index over l and waits until it has
// indexed everything written so far.
func mustIndex(tb testing.TB, l *querytest.Log, tune func(*embedded.Config)) *embedded.Index {
	tb.Helper()
	cfg := baseConfig(l)
	if tune != nil {
		tune(&cfg)
	}
	ix, err := embedded.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ix.Start()
	tb.Cleanup(func() { _ = ix.Close() })
	mustCatchUp(tb, ix, l)
	return ix
}

func mustCatchUp(tb testing.TB, ix *embedded.Index, l *querytest.Log) {
	tb.Helper()
	head, _ := l.Head()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ix.WaitFor(ctx, head); err != nil {
		tb.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	querytest.Run(t, func(tb testing.TB, l *querytest.Log) query.Backend { return mustIndex(tb, l, nil) })
}

var ctx = context.Background()

// mustMatchReference fails unless the index answers f exactly as the
// reference implementation does over the log's lines.
func mustMatchReference(tb testing.TB, ix *embedded.Index, l *querytest.Log, f query.Filter) []query.Record {
	tb.Helper()
	lines := querytest.ReadLines(tb, l.Path)
	var hashes []string
	if f.Actor != "" {
		hashes = append(hashes, l.Salt.Hash(f.Actor))
	}
	want, cp := querytest.Reference(tb, lines, f, hashes...)
	var got []query.Record
	gcp, err := ix.Scan(ctx, f, func(r query.Record) error { got = append(got, r); return nil })
	if err != nil {
		tb.Fatal(err)
	}
	if d := querytest.Diff(want, got); d != "" {
		tb.Fatal(d)
	}
	querytest.MustSameCheckpoint(tb, cp, gcp)
	return got
}

func baseConfig(l *querytest.Log) embedded.Config {
	return embedded.Config{Path: l.Path, NodeID: l.NodeID, Head: l.Head, Poll: 2 * time.Millisecond, ChunkRows: 100,
		PublicKey: func() (ed25519.PublicKey, bool) { return l.PublicKey(), true },
		Hash:      func(_ context.Context, s string) (string, error) { return l.Salt.Hash(s), nil }}
}
