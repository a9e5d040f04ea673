// Package audit is Vigil's audit broker: it receives every request and
// response from the core.Dispatcher (core.Auditor), renders them in Vault's
// audit format (audit/format/vault) with sensitive values HMAC'd
// (audit/hmac), and records them on the enabled devices — hash-chained,
// fsync'd files (audit/chain) and stdout — before the request runs and
// before its response is sent. If no device records an entry, the request
// is refused (fail closed).
//
// This package is the leaf of the audit pipeline: it depends on core and on
// audit's own subpackages only (a test in docs holds the rule). Reading the
// configuration, keeping salts, keys and checkpoints in the barrier, the
// sys/audit routes and sys/health are the audit service's
// (audit/auditsvc), which builds a Broker and hands it to the server.
//
// # Devices
//
// Devices are declared in the server configuration
//
//	audit "file" "main" { path = "/var/log/vigil/audit.log" }
//
// or enabled through Vault's sys/audit API (persisted in the barrier and
// reopened on unseal; switched off by audit_settings { allow_api_changes =
// false }). Each device has its own HMAC salt, created on first enable and
// kept in the barrier. File devices write signed checkpoints with the
// cluster's Ed25519 key (kept in the barrier, created on first unseal) and
// store the last one in Raft storage (sys/audit/checkpoints/<node>/<device>).
//
// # Zero-devices policy
//
// Audit is required — requests fail closed with ErrNoDevice when no device
// is enabled — as soon as the configuration declares a device or a device
// was ever enabled through the API (a flag kept in the barrier; disabling
// the last device is refused). A server on which audit was never
// configured serves requests unaudited, as Vault does, but sys/health and
// the X-Vigil-Audit-Status header report audit "critical" with the reason
// "no audit device configured", which compliance checks flag.
//
// # Sealed state
//
// Requests rejected while sealed are kept in a bounded memory buffer and
// written when the devices open at unseal, marked "vigil":{"sealed":true}
// (best effort: a crash while sealed loses them). Nothing is written while
// sealed because the salts and the checkpoint key are in the barrier and
// every checkpoint in a log must be signed.
package audit
