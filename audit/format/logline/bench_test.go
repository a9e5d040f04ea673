package logline

import "testing"

// BenchmarkParse decodes a realistic entry line (the shipper's per-line
// cost for the ocsf and cef formats and for ClickHouse rows).
func BenchmarkParse(b *testing.B) {
	line := mustLines(b)[3]
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScanMembers(b *testing.B) {
	line := mustLines(b)[3]
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := ScanMembers(line); err != nil {
			b.Fatal(err)
		}
	}
}
