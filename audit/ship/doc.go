// Package ship streams a node's local hash-chained audit log
// (audit/chain) to remote sinks — Kafka (audit/ship/kafka) and ClickHouse
// (audit/ship/clickhouse) — for SIEM ingestion, without a separate agent.
//
// # Model
//
// The local log stays the source of truth. Each configured stream
//
//	audit_stream "kafka" "siem" { brokers = ["k1:9092"], topic = "vigil-audit" }
//
// runs one Shipper: a Tailer reads the device's segments (rotated, gzip'd
// and active) in seq order starting after the stream's durable Cursor
// (node_id, seq, hash), hands batches to the Sink, and advances the cursor
// only after the sink acknowledged the whole batch. The cursor is kept in
// the barrier (Raft storage), at most every CursorInterval and when the
// stream stops, always after the acknowledgement it records.
//
// Guarantees:
//
//   - At-least-once, in order. Every line of the local chain — Vault entries
//     and the chain's own records (segment headers, checkpoints, events) —
//     reaches the sink, in seq order per node. After a crash, an outage or
//     a timeout, lines after the persisted cursor are sent again: consumers
//     dedupe on (node_id, seq) (Kafka key/headers, ClickHouse
//     ReplacingMergeTree ordered by (node_id, seq), OCSF metadata.uid, CEF
//     externalId). Verifier re-checks a chain read back from a sink.
//   - A remote outage never blocks or fails a request: requests only append
//     to the local log; the shipper retries with capped exponential backoff
//     and its lag (entries and seconds) grows, visible in sys/audit-stream,
//     `vigil audit stream status` and the vigil_audit_stream_* metrics.
//   - Only durable lines are shipped: lines past the device writer's
//     durable head (a batch whose fsync may still fail and be truncated)
//     are held back, so a sink never holds a line the local chain lost.
//   - No segment is skipped: after segment k the tailer opens only the
//     segment whose header index is k+1 and which starts at the next seq,
//     whatever the file names or the directory listing say while the
//     writer rotates and gzips. If it stays missing while a later segment
//     is on disk (TailerConfig.MissingSegmentWait), the stream stalls with
//     ErrSegmentMissing instead of jumping ahead. Lines deleted before the
//     segment a session starts in are reported as a gap (metrics, status).
//   - Nothing unshipped is deleted: each stream registers a
//     diskwatch.SegmentGuard, and retention never deletes a segment the
//     stream's acknowledged cursor has not passed.
//
// # When the disk and a sink both fail
//
// If a sink is down long enough, rotated segments pile up (retention may
// not delete them) and the disk fills: the audit health turns "critical"
// naming the stream that holds the space (held_by), metrics show
// vigil_audit_stream_holding_disk, and when the disk is full audit writes
// fail and requests fail closed — Vigil never drops audit data to keep
// serving. The operator restores the sink, adds disk, or removes the stream
// from the configuration (which releases its guard).
//
// # Wiring
//
// The Subsystem (a server subsystem) reads the audit_stream blocks, builds
// each sink with the Factory registered for its type, and must be listed
// after the audit subsystem it reads from (Options.Audit).
package ship
