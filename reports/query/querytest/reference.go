package querytest

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/reports/query"
)

// ReadLines reads every complete line of the log whose active file is
// path, rotated and gzip'd segments included, in chain order. A torn
// final line is skipped.
func ReadLines(tb testing.TB, path string) [][]byte {
	tb.Helper()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		var out [][]byte
		if out, err = readLines(path); err == nil {
			return out
		}
		time.Sleep(10 * time.Millisecond) // a segment was compressed while we read
	}
	tb.Fatal(err)
	return nil
}

func readLines(path string) ([][]byte, error) {
	infos, err := chain.ListSegments(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, si := range infos {
		rc, err := chain.FileSource(si.Path).Open()
		if err != nil {
			return nil, err
		}
		br := bufio.NewReaderSize(rc, 1<<20)
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				break // EOF; an incomplete last line is a torn tail
			}
			out = append(out, line[:len(line)-1])
		}
		rc.Close()
	}
	return out, nil
}

// Reference answers f over raw log lines the slow, obvious way, as the
// query package documents it: every line decoded with logline.Parse and
// turned into a record with query.FromLine; the horizon is the last
// checkpoint record in the lines; a response entry is a record; a request
// entry is an (Incomplete) record when no response entry for its request
// id is among the lines; records after the horizon are left out; the rest
// is filtered with the compiled Matcher and sorted with query.Compare. It
// returns every match (Limit and After are ignored) and the checkpoint.
func Reference(tb testing.TB, lines [][]byte, f query.Filter, actorHashes ...string) ([]query.Record, *query.CheckpointRef) {
	tb.Helper()
	f.After, f.Limit = "", 0
	m, err := f.Compile(actorHashes...)
	if err != nil {
		tb.Fatal(err)
	}
	var cp *query.CheckpointRef
	answered := map[string]bool{}
	var all []query.Record
	for _, line := range lines {
		l, err := logline.Parse(line)
		if err != nil {
			tb.Fatalf("reference: %v: %s", err, line)
		}
		if l.Checkpoint != nil {
			t, _ := time.Parse(time.RFC3339Nano, l.Checkpoint.Time)
			cp = &query.CheckpointRef{NodeID: l.Checkpoint.NodeID, Seq: l.Checkpoint.Seq, Hash: l.Checkpoint.Hash, Time: t.UTC(),
				Signature: l.Signature, KeyID: l.KeyID}
			continue
		}
		r, ok := query.FromLine(l)
		if !ok {
			continue
		}
		if !r.Incomplete {
			answered[r.RequestID] = true
		}
		all = append(all, r)
	}
	if cp == nil {
		return nil, nil
	}
	var out []query.Record
	for _, r := range all {
		if r.Seq > cp.Seq || r.Incomplete && answered[r.RequestID] {
			continue
		}
		if m.Match(&r) {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b query.Record) int { return query.Compare(&a, &b) })
	return out, cp
}

// SigB64 is a checkpoint signature as CheckpointRef carries it.
func SigB64(cp chain.Checkpoint) string { return base64.StdEncoding.EncodeToString(cp.Signature) }

// Diff describes the first difference between two record lists ("" when
// equal).
func Diff(want, got []query.Record) string {
	n := min(len(want), len(got))
	for i := 0; i < n; i++ {
		if d := recordDiff(&want[i], &got[i]); d != "" {
			return fmt.Sprintf("record %d (seq %d): %s", i, want[i].Seq, d)
		}
	}
	if len(want) != len(got) {
		return fmt.Sprintf("want %d records, got %d", len(want), len(got))
	}
	return ""
}

func recordDiff(a, b *query.Record) string {
	fa, fb := fmt.Sprintf("%+v", *a), fmt.Sprintf("%+v", *b)
	if fa != fb || !a.Time.Equal(b.Time) {
		return fmt.Sprintf("\nwant %s\ngot  %s", fa, fb)
	}
	return ""
}
