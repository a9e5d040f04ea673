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
// # Acknowledgement and the zero-devices policy
//
// An entry is recorded when every durable device — a file device with
// fsync = "always" — has it on disk. Other devices (stdout, files that
// fsync on an interval or never) are written alongside but never
// acknowledge. With audit_settings { require_audit = true } (the default
// outside -dev), while no durable device is enabled every request is
// refused except sealing, health and the sys/audit device configuration.
// Audit is also required — requests fail closed with ErrNoDevice when no
// device is enabled — once the configuration declares a device or a device
// was ever enabled through the API (a flag kept in the barrier; disabling
// the last device is refused).
//
// # Sealed state
//
// While sealed, the devices that were enabled (at start: those declared in
// the configuration) record the requests rejected, at once and durably:
// file devices continue their chain in a segment whose header names no
// checkpoint key, with unsigned checkpoints (the key is in the barrier; the
// first signed checkpoint after unseal covers these lines), and entries
// leave out every field that would need the salt (tokens, accessors, data),
// marked "vigil":{"sealed":true}. A device opens its file for this on its
// first sealed-state entry only.
package audit
