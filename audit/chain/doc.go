// Package chain is Vigil's durable, hash-chained, group-committed local
// audit log and its verifier.
//
// # Line format
//
// The log is one JSON object per line, each terminated by "\n". The caller
// hands Writer.Append an entry body, a JSON object without chain members;
// the writer appends the chain members at the end, in this order and with
// no whitespace:
//
//	<body without its closing brace>,"seq":N,"node_id":"ID","prev_hash":"<64 hex>","hash":"<64 hex>"}
//
// An empty body (only whitespace between its braces) is written as "{" with
// no comma. Bodies may not contain raw CR/LF bytes, top-level members named
// seq, node_id, prev_hash or hash, or a top-level "type" starting with
// "vigil.", so the chain members are found by scanning from the end of the
// line without decoding the body.
//
//   - seq: this node's line counter, 1 for the first line of a chain, +1 per
//     line, across segment files and restarts. Records written by the chain
//     itself consume seqs too. A failed write consumes none.
//   - node_id: 1 to 128 bytes from [A-Za-z0-9._:-]; constant per chain.
//   - prev_hash: the hash of the line with seq-1; for seq 1, 64 ASCII zeros
//     (ZeroHash, the genesis rule).
//   - hash: 64 lowercase hex digits, defined below.
//
// # Canonical form and hash
//
// The canonical bytes of a line are everything before its trailing
// `,"hash":"` member, followed by "}". The hash is
//
//	hash = hex(SHA-256(prev_hash_hex_ascii_bytes || canonical_bytes))
//
// where prev_hash_hex_ascii_bytes are the 64 ASCII bytes of the line's own
// prev_hash value.
//
// # Records written by the chain
//
// Lines that start with the bytes {"type":"vigil. are chain records; Vault
// parsers ignore their type values.
//
//   - vigil.segment: the first line of every segment file, {"type":
//     "vigil.segment","segment":{"index","prev_segment_last_seq",
//     "prev_segment_last_hash","created","reason"}}. index counts segments
//     from 1; the prev_segment_* members repeat the header's own seq-1 and
//     prev_hash; reason is start, rotate or reopen.
//   - vigil.checkpoint: {"type":"vigil.checkpoint","checkpoint":<CP>,
//     "signature":"<base64 Ed25519>","key_id":"<16 hex>"}, where <CP> is
//     exactly Checkpoint.CanonicalBytes: {"node_id","seq","hash","time"} in
//     that order, compact, time in UTC RFC 3339 with nanoseconds (trailing
//     zeros trimmed). The signature covers those bytes; seq and hash are
//     those of the line immediately before the checkpoint record.
//   - vigil.event: {"type":"vigil.event","event":{"kind","detail","time"}},
//     kinds started, closed, torn_tail_truncated, active_file_missing,
//     reopened, foreign_file_moved.
//
// # Durability, group commit and recovery
//
// One goroutine owns the file. Append queues the body and waits; the
// goroutine takes everything queued (up to MaxBatchEntries/MaxBatchBytes),
// assigns seqs and hashes in order, writes the batch with one write call,
// fsyncs once (FsyncAlways) and then completes every waiter. If the write or
// fsync fails, every waiter in the batch gets the error, the file is
// truncated back to the end of the previous batch and the head does not
// move: the next entry reuses the seq, so failures never leave gaps.
//
// Rotation happens before a batch would push the active segment past
// MaxSizeMB, or once it is MaxAgeDays old: the file is fsynced and renamed
// to its backup name (RENAME_NOREPLACE: never over an existing file), the
// directory is fsynced, the next segment is created with O_EXCL, the
// directory is fsynced again, and the new file starts with a segment
// header. The chain owns these files outright; no rotation library
// writes, renames or deletes them (docs/design.md gives the numbers behind
// that choice). A watcher notices a deleted, moved or replaced active file within
// WatchInterval, salvages its durable bytes from the still-open descriptor
// into a rotated segment, and starts a new segment (reason "reopen") with an
// active_file_missing event.
//
// Torn tail rule: only bytes written after the last successful fsync can be
// damaged by a crash. On Open, the writer removes the shortest suffix of the
// newest segment that leaves only intact, linked, newline-terminated lines,
// saves those bytes to <path>.torn-<unixnano>, and records a
// torn_tail_truncated event. The verifier reports a torn last line of the
// last segment as a warning, not as tampering.
//
// # Verification
//
// Verify, VerifyReader and VerifyLog check a log and report the first
// failure (edited, deleted, inserted_or_reordered, truncated,
// checkpoint_mismatch, forged_checkpoint, splice, malformed). Lines are
// hashed in parallel (each from the prev_hash written in it) and linked
// sequentially, which is equivalent to hashing the chain in order.
//
// docs/audit-format.md is the full specification with a worked example.
package chain
