// Package auditsvc plugs the audit broker (package audit) into a server:
// it reads the audit and audit_settings blocks of the configuration, keeps
// each device's HMAC salt, the checkpoint key, the last checkpoints and the
// last verification in the barrier, opens the devices when the server
// unseals and closes them when it seals, and serves the sys/audit routes,
// the audit part of sys/health and the X-Vigil-Audit-Status header.
//
// It receives from the server only what its Host interface declares.
package auditsvc
