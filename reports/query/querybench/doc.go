// Package querybench holds the audit query benchmarks over a large
// synthetic log (see bench_test.go): the path-prefix + time-range query on
// the embedded index and on ClickHouse, and the index build cost. It has
// no code of its own.
package querybench
