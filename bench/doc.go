// Package bench is Vigil's load harness: it drives any server that speaks
// Vault's HTTP API with a fixed set of scenarios (kv-read, kv-write,
// kv-mixed, transit-encrypt, transit-decrypt, pki-issue, db-creds,
// login-userpass), records latency in an HdrHistogram, and reports
// throughput, p50/p90/p99/p99.9/max, errors by status, the server's CPU
// seconds per 1k requests (from /proc) and — against Vigil — the audit
// pipeline's own figures read from its Prometheus metrics before and after
// each run (entries/s, bytes/s, fsyncs, group-commit batch size, shipper
// lag).
//
// # Arms and rounds
//
// A run compares one or more arms: Vigil servers the harness starts itself
// (one per audit mode: off, file, file+kafka, file+clickhouse), a Vault or
// OpenBao binary it starts the same way (raft storage in a temp dir, init,
// unseal, file audit device on the same disk), or an external server. Every
// arm is started once and stays up; each scenario is set up on every arm,
// then measured round by round, arms in the same order each round
// (A/B/A/B...). Ratios are computed pair by pair — arm X in round i
// against the baseline in round i — because a busy machine drifts and only
// ratios measured side by side mean something.
//
// # Load model
//
// Closed loop (default): N connections, each a worker sending its next
// request when the previous one is answered; latency is the request's own
// round trip. Open loop (Settings.Rate > 0): request k is due at
// start + k/rate; up to N requests are in flight; latency is measured from
// the time the request was due, not when it was sent, so a stalled server
// is charged for the queue it causes (no coordinated omission). A warm-up
// phase runs first and is excluded. HTTP/1.1 keep-alive, one connection
// pool per arm sized to N.
//
// # Tagging
//
// Every request carries the header X-Vigil-Bench-Run naming the run, the
// phase (setup, warmup, measure, metrics, cleanup) and, for measured
// phases, scenario, arm and round. With Settings.AuditTag the Vigil servers
// the harness starts record that header in their audit entries
// (audit_settings request_headers), which lets a test count exactly the
// audit entries of the measured requests.
//
// Nothing in this package asserts a speed: targets are for people reading
// the report; speed targets live in benchmarks, never in tests.
package bench
